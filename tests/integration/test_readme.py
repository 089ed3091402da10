"""The README tells the truth: each sample in it is checked against what the program does.

The samples are read from the README itself (by section), the real command is run or the
real exporter scraped, and the two compared, with only what legitimately varies (a
validation's duration, today's date) normalised. A README edit that drifts from the program,
or a program change the README does not follow, fails here.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import Config, parse, render
from tests.conftest import ROOT
from tests.integration.procs import ExporterProcess, run_cli, wait_for, write_config

README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of the section headed ``title`` (any level), up to the next heading of the
    same or a higher level; lines inside code fences are never headings."""
    lines = README.splitlines()
    fenced, start, level = False, None, 0
    for number, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
            continue
        heading = re.match(r"(#+) (.*)", line)
        if fenced or heading is None:
            continue
        depth = len(heading.group(1))
        if start is not None and depth <= level:
            return "\n".join(lines[start:number])
        if start is None and heading.group(2) == title:
            start, level = number + 1, depth
    assert start is not None, f"no section {title!r} in the README"
    return "\n".join(lines[start:])


def blocks(text: str) -> list[str]:
    """The fenced code blocks of ``text``, without their fences."""
    return re.findall(r"^```[a-z]*\n(.*?)^```$", text, re.M | re.S)


def table(text: str) -> list[list[str]]:
    """The rows of every Markdown table in ``text`` (header and rule rows left out)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or re.match(r"\|\s*-", line):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows.append(cells)
    return [row for row in rows if row[0] not in ("metric", "field", "parameter", "endpoint")]


def normalised(text: str) -> str:
    """What varies between two runs of the same command: durations and dates."""
    text = re.sub(r"\b\d+\.\d\ds\b", "<seconds>", text)
    text = re.sub(r"\d{4}-\d\d-\d\d \((in \d+ days|\d+ days ago)\)", "<date>", text)
    return text


# --- commands and their output -----------------------------------------------------------


def _check_samples() -> list[str]:
    found = [b for b in blocks(section("`check`: a one-shot diagnosis")) if b.startswith("$ ")]
    assert len(found) >= 2, "the check section lost its samples"
    return found


@pytest.mark.parametrize("sample", _check_samples(), ids=lambda s: s.splitlines()[0])
def test_check_samples_are_what_check_prints(sample: str) -> None:
    command, *expected = sample.rstrip("\n").splitlines()
    argv = shlex.split(command.removeprefix("$ "))
    assert argv[0] == "acme-http01-exporter"
    proc = run_cli(*argv[1:], timeout=120)
    # A terminal shows the warning on stderr first (it is printed before validating).
    printed = (proc.stderr + proc.stdout).rstrip("\n").splitlines()
    assert normalised("\n".join(printed)) == normalised("\n".join(expected))


def flags(text: str) -> dict[str, tuple[str, ...]]:
    """Each ``--flag`` in a synopsis, with its choices when it lists them (``a|b``)."""
    return {
        match.group(1): tuple(match.group(2).split("|")) if match.group(2) else ()
        for match in re.finditer(r"(--[a-z][\w.-]*)(?: ([a-z-]+(?:\|[a-z-]+)+))?", text)
    }


def help_flags(*command: str) -> dict[str, tuple[str, ...]]:
    """Each option of ``--help`` (but ``--help`` itself), with its choices."""
    proc = run_cli(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    options = proc.stdout.split("options:", 1)[1]
    return {
        match.group(1): tuple(match.group(2).split(",")) if match.group(2) else ()
        for match in re.finditer(r"^  (--[a-z][\w.-]*)(?: \{([^}]*)\})?", options, re.M)
        if match.group(1) != "--help"
    }


def test_the_exporter_synopsis_is_its_help() -> None:
    synopsis = next(
        b for b in blocks(section("The exporter")) if b.startswith("acme-http01-exporter ")
    )
    assert flags(synopsis) == help_flags()


def test_the_check_synopsis_is_its_help() -> None:
    synopsis = next(
        b
        for b in blocks(section("`check`: a one-shot diagnosis"))
        if b.startswith("acme-http01-exporter check ")
    )
    assert flags(synopsis) == help_flags("check")


def test_check_json_keys_are_the_ones_listed() -> None:
    paragraph = section("`check`: a one-shot diagnosis").split("`--json` prints", 1)[1]
    paragraph = paragraph.split("\n\n", 1)[0].split("with the keys", 1)[1]
    listed = [key for key in re.findall(r"`([a-z0-9_]+)`", paragraph) if key != "null"]
    proc = run_cli("check", "--demo", "--json", "healthy.example.com", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    document = json.loads(proc.stdout)
    assert sorted(listed) == sorted(document) and len(set(listed)) == len(listed)
    # What a result contains: each field of the table is in the document.
    for row in table(section("What a result contains").split("\n### ", 1)[0]):
        path = row[0].strip("`").split(".")
        assert path[0] in document, row
        if path[0] == "problem":
            assert path[1] in ("type", "reason", "detail"), row


# --- the config's defaults ----------------------------------------------------------------


def keys(data: object, prefix: str = "") -> set[str]:
    """Every key path of a mapping (``certificates.interval``), lists and values left out."""
    if not isinstance(data, dict):
        return set()
    found = set()
    for key, value in data.items():
        path = f"{prefix}{key}"
        found.add(path)
        if key != "address_map":  # its keys are addresses, the example's own
            found |= keys(value, path + ".")
    return found


def test_the_config_defaults_block_is_the_defaults() -> None:
    block = yaml.safe_load(blocks(section("Configuration"))[0])
    parse(block, "README")  # the block, example domains included, is a valid config
    defaults = {key: value for key, value in block.items() if key != "domains"}
    real = Config().model_dump(mode="json")
    del real["domains"]
    assert keys(defaults) == keys(real)  # every key shown, none that does not exist
    # Each value is the default in force (durations as written, jitter its effective value).
    assert render(parse(defaults, "README")) == render(Config())


# --- the landing page and the metrics: a real scrape of the demo --------------------------


@pytest.fixture(scope="module")
def demo_with_web_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterProcess]:
    """The demo, with a web config file (its own metrics exist only then), once every
    showcase domain has a result and a certificate reading."""
    web = write_config(
        Path(tmp_path_factory.mktemp("web")) / "web.yml",
        {"http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}}},
    )
    exporter = ExporterProcess("--demo", "--web.config.file", str(web))
    try:
        exporter.wait_ready(40)
        wait_for(
            lambda: "acme_http01_certificate_not_after_timestamp_seconds{" in exporter.scrape()[0],
            30,
            "no certificate read",
            exporter,
        )
        yield exporter
    finally:
        assert exporter.stop() == 0


def readme_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    """Each metric of the Metrics tables: its type and its labels."""
    listed = {}
    for row in table(section("Metrics")):
        names, kind, labels = row[0], row[1], row[2]
        label_set = frozenset(label.strip() for label in labels.split(",") if label.strip())
        for name in re.findall(r"`([a-z0-9_]+)`", names):
            listed[name] = (kind, label_set)
    return listed


def test_every_metric_listed_is_served_and_every_one_served_is_listed(
    demo_with_web_config: ExporterProcess,
) -> None:
    text, _ = demo_with_web_config.scrape()
    served: dict[str, tuple[str, frozenset[str]]] = {}
    sampled: set[str] = set()
    for family in text_string_to_metric_families(text):
        name = family.name + "_total" if family.type == "counter" else family.name
        labels = {label for s in family.samples for label in s.labels if label != "le"}
        served[name] = (family.type, frozenset(labels))
        if family.samples:
            sampled.add(name)
    listed = readme_metrics()
    assert set(listed) == set(served)
    for name, (kind, labels) in listed.items():
        assert served[name][0] == kind, name
        if name in sampled:
            assert served[name][1] == labels, name
        if "domain" in labels:  # the demo has a domain for every per-domain series
            assert name in sampled, name


def test_the_landing_page_filters_are_the_documented_ones(
    demo_with_web_config: ExporterProcess,
) -> None:
    rows = {row[0].strip("`"): row for row in table(section("The landing page"))}
    documented = re.findall(r"`([a-z]+)`", re.sub(r"\([^)]*\)", "", rows["state"][2]))
    status, text, _ = demo_with_web_config.request("/?state=nonsense")
    assert status == 400
    served = text.split("one of ", 1)[1].rsplit(", not ", 1)[0].split(", ")
    assert sorted(documented) == sorted(served)
    low, high = (int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", rows["size"][2])[:2])
    for size, status in ((low, 200), (high, 200), (low - 1, 400), (high + 1, 400)):
        assert demo_with_web_config.request(f"/?size={size}")[0] == status, size
