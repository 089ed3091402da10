"""A reload is one transaction: built whole or refused whole, never applied mid-write.

Each case is a value that used to pass validation and fail later (while being applied,
or in the scheduler), a YAML shape that used to crash the parser, or a file caught while
an editor rewrites it. After each refusal the running config is what it was, byte for
byte, and validations go on.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import SETTLE_SECONDS
from tests.integration.procs import (
    ExporterProcess,
    LabProcess,
    run_cli,
    validations,
    value,
    wait_for,
    write_config,
)

NAMES = ["healthy.example.com", "wrong-aaaa.example.com", "ipv4-only.example.com"]


def _good(lab: LabProcess, **overrides: Any) -> dict[str, Any]:
    domains = [d for d in lab.document["domains"] if d["name"] in NAMES]
    document = lab.config(interval="1s", jitter="0s", domains=domains)
    document.update(overrides)
    return document


def _nested(depth: int) -> str:
    return "domains: " + "[" * depth + "]" * depth + "\n"


def _indented(depth: int) -> str:
    return "domains:\n" + "".join(f"{'  ' * level}- \n" for level in range(1, depth)) + "\n"


def _aliases() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        below = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([below] * 10)}]")
    return "\n".join(lines) + "\ndomains: *a8\n"


INF, NAN = float("inf"), float("nan")
NOT_FINITE = "invalid duration {}: must be a finite number of seconds"


def _setting(
    case: str, key: str, value: Any, problem: str, where: str = ""
) -> tuple[str, Any, str]:
    """A case of :data:`BAD`: the good document with ``key`` set to ``value``; the refusal
    names ``where`` (``key`` unless given) and ``problem``."""
    return (case, lambda d: {**d, key: value}, f"{where or key}: {problem}")


# (id, how the file is made from the good document, the problem line the refusal names)
BAD: list[tuple[str, Any, str]] = [
    (
        "ca-file-missing",
        lambda d: {**d, "certificates": {"ca_file": "/nonexistent/ca.pem"}},
        "certificates.ca_file: cannot load '/nonexistent/ca.pem' as a CA bundle: "
        "No such file or directory",
    ),
    _setting("interval-inf", "interval", INF, NOT_FINITE.format("inf")),
    _setting("interval-nan", "interval", NAN, NOT_FINITE.format("nan")),
    _setting("interval-1e300", "interval", 1e300, "1e+300s is out of range: use 1s to 7d"),
    _setting("jitter-inf", "jitter", INF, NOT_FINITE.format("inf")),
    _setting("jitter-1e300", "jitter", 1e300, "1e+300s is out of range: use 0 to 7d"),
    _setting(
        "validation-timeout-nan",
        "timeouts",
        {"validation": NAN},
        NOT_FINITE.format("nan"),
        where="timeouts.validation",
    ),
    (
        # libyaml's own limit on flow nesting (1,000) speaks first here.
        "nested-3000",
        lambda d: _nested(3000),
        "line 1 column 1009: invalid YAML: exceeded maximum nesting depth",
    ),
    (
        "nested-100-blocks",
        lambda d: _indented(100),
        "line 65 column 129: nested more than 64 levels deep: refused",
    ),
    (
        "alias-amplification",
        lambda d: _aliases(),
        "(top level): aliases expand to more than 10,000 nodes: refused "
        "(write the values out instead of aliasing them)",
    ),
]


def _write(path: Path, made: Any) -> None:
    if isinstance(made, str):
        path.write_text(made)
    else:
        write_config(path, made)


@pytest.mark.parametrize(("make", "problem"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_check_and_start_refuse_what_a_reload_would(
    lab_process: LabProcess, tmp_path: Path, make: Any, problem: str
) -> None:
    path = tmp_path / "c.yml"
    _write(path, make(_good(lab_process)))
    expected = f"{path}: {problem}"
    checked = run_cli("--config.file", str(path), "--config.check")
    assert (checked.returncode, checked.stdout, checked.stderr.strip()) == (1, "", expected)
    started = run_cli("--config.file", str(path), "--log.format", "json", timeout=30)
    assert started.returncode == 1
    assert "Traceback" not in started.stderr
    assert problem in started.stderr


def test_each_refused_reload_leaves_the_running_config_as_it_was(
    lab_process: LabProcess, tmp_path: Path
) -> None:
    path = write_config(tmp_path / "c.yml", _good(lab_process))
    good_text = path.read_text()
    exporter = ExporterProcess("--config.file", str(path))
    try:
        exporter.wait_ready(20)
        status, running, _ = exporter.request("/config")
        assert status == 200
        for name, make, problem in BAD:
            _write(path, make(_good(lab_process)))
            status, message, _ = exporter.request("/-/reload", "POST")
            assert (status, message.strip()) == (500, f"{path}: {problem}"), name
            assert exporter.request("/config")[1] == running, name
            _, samples = exporter.scrape()
            assert value(samples, "acme_http01_config_last_reload_successful") == 0, name
            assert value(samples, "acme_http01_domains") == len(NAMES), name
        failures = value(exporter.scrape()[1], "acme_http01_config_reloads_total", result="failure")
        assert failures == len(BAD)
        # Validations went on under the old config, every domain with a real verdict.
        before = validations(exporter, "healthy.example.com")
        assert before > 0
        wait_for(
            lambda: validations(exporter, "healthy.example.com") >= before + 2,
            20,
            "validations stopped after the refused reloads",
            exporter,
        )
        _, samples = exporter.scrape()
        assert value(samples, "acme_http01_validation_success", domain="healthy.example.com") == 1
        internal = [k for k in samples if ("reason", "internal") in k[1]]
        assert internal == []
        path.write_text(good_text)
        assert exporter.request("/-/reload", "POST")[0] == 200
        assert value(exporter.scrape()[1], "acme_http01_config_last_reload_successful") == 1
    finally:
        assert exporter.stop() == 0


#: A file's time comes from the kernel's coarse clock, up to a tick (at most 10 ms) before
#: the change: a pause counts as shorter than SETTLE_SECONDS only by more than this.
MTIME_GRAIN = 0.02


def _rewrite_in_small_writes(path: str, texts: list[str], control: Connection) -> None:
    """As an editor without atomic rename writes: truncate, then 256 bytes at a time (2 ms
    apart), then a pause; alternating between ``texts`` until ``control`` says stop. Then
    sends each rewrite as (start, end, longest gap) in ``time.monotonic()`` seconds, the
    clock every process shares. A gap runs from one change of the file (the truncation,
    a write) to the next, timed from before the first to after the second: never less
    than it was."""
    rewrites: list[tuple[float, float, float]] = []
    while True:
        data = texts[len(rewrites) % len(texts)].encode()
        begun = last = time.monotonic()
        longest = 0.0
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        try:
            for start in range(0, len(data), 256):
                before = time.monotonic()
                os.write(fd, data[start : start + 256])
                longest = max(longest, time.monotonic() - last)
                last = before
                time.sleep(0.002)
        finally:
            os.close(fd)
        rewrites.append((begun, time.monotonic(), longest))
        if control.poll(0.05 + 0.25 * (len(rewrites) % 3) / 2):
            break
    control.send(rewrites)


def test_a_file_caught_mid_write_is_never_applied(lab_process: LabProcess, tmp_path: Path) -> None:
    """Two good configs, 40 and 60 domains (each file about 3 kB: a dozen writes), are
    rewritten in place, by another process, while reloads run: no reload during a rewrite
    that never paused for SETTLE_SECONDS applies a partial config.

    A writer that does pause that long can be caught (the README says so), and a busy
    machine can pause any process that long: a rewrite with such a gap is inconclusive,
    and a partial config applied while one was under way is counted, not failed."""
    lab_names = [d["name"] for d in lab_process.document["domains"]]
    small = [*lab_names, *(f"extra{i}.example.com" for i in range(40 - len(lab_names)))]
    large = [*lab_names, *(f"extra{i}.example.com" for i in range(60 - len(lab_names)))]
    texts = [
        yaml.safe_dump(lab_process.config(interval="1h", domains=names), sort_keys=False)
        for names in (small, large)
    ]
    path = tmp_path / "c.yml"
    path.write_text(texts[0])
    exporter = ExporterProcess("--config.file", str(path))
    control, far = multiprocessing.Pipe()
    writer = multiprocessing.get_context("spawn").Process(
        target=_rewrite_in_small_writes, args=(str(path), texts, far), daemon=True
    )
    reloads: list[tuple[float, float, float | None]] = []  # start, end, domains applied
    rewrites: list[tuple[float, float, float]] = []
    try:
        writer.start()
        far.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            started = time.monotonic()
            status, _, _ = exporter.request("/-/reload", "POST")
            ended = time.monotonic()
            domains = None
            if status == 200:
                domains = value(exporter.scrape()[1], "acme_http01_domains")
                assert domains is not None
            reloads.append((started, ended, domains))
        control.send("stop")
        assert control.poll(10), "the writer did not answer"
        rewrites = control.recv()
        writer.join(10)
        assert writer.exitcode == 0
    finally:
        if writer.is_alive():
            writer.kill()
            writer.join(10)
        control.close()
        assert exporter.stop() == 0

    settle = SETTLE_SECONDS - MTIME_GRAIN
    conclusive = [r for r in rewrites if r[2] < settle]
    applied = [n for _, _, n in reloads if n is not None]

    def during(start: float, end: float) -> list[tuple[float, float, float]]:
        return [r for r in rewrites if r[0] <= end and r[1] >= start]

    # A reload reads the file between its request and its answer; a partial file is there
    # only while a rewrite is under way.
    partial = [r for r in reloads if r[2] is not None and r[2] not in (len(small), len(large))]
    excused = [r for r in partial if any(w[2] >= settle for w in during(r[0], r[1]))]
    caught = [r for r in reloads if any(w in conclusive for w in during(r[0], r[1]))]
    print(
        f"rewrites {len(rewrites)} ({len(conclusive)} conclusive, longest gap "
        f"{max((r[2] for r in rewrites), default=0):.3f} s), reloads {len(reloads)} "
        f"({len(applied)} applied, {len(reloads) - len(applied)} refused, {len(caught)} during "
        "a conclusive rewrite), "
        f"partial applied {len(partial)} ({len(excused)} during an inconclusive rewrite)"
    )
    assert len(applied) >= 10  # reloads did happen during the rewrites
    assert len(conclusive) >= 20 and len(caught) >= 5
    assert [r for r in partial if r not in excused] == []
    assert {len(small), len(large)} <= set(applied)


def test_a_burst_of_sighups_is_one_reload_or_a_few(lab_process: LabProcess, tmp_path: Path) -> None:
    """100 SIGHUPs 5 ms apart, each delivered, against a config that takes a while to
    build (20,000 domains): one reload runs, one waits, and every signal meanwhile joins
    the waiting one. Each used to queue a reload of its own."""
    domains = [*NAMES, *(f"d{i}.example.com" for i in range(20_000))]
    path = write_config(
        tmp_path / "c.yml", _good(lab_process, interval="1h", jitter="1h", domains=domains)
    )
    exporter = ExporterProcess("--config.file", str(path))
    key = ("acme_http01_config_reloads_total", frozenset({("result", "success")}))
    try:
        for _ in range(100):
            exporter.proc.send_signal(signal.SIGHUP)
            time.sleep(0.005)

        def settled() -> bool:
            first = exporter.scrape()[1].get(key)
            time.sleep(1.0)
            return exporter.scrape()[1].get(key) == first

        wait_for(settled, 60, "reloads did not settle", exporter)
        reloads = exporter.scrape()[1].get(key)
        assert reloads is not None
        print(f"100 SIGHUPs, {reloads:g} reloads")
        assert 1 <= reloads <= 20, reloads
        assert exporter.proc.poll() is None
    finally:
        assert exporter.stop() == 0


def test_auto_reload_applies_a_changed_file_once(lab_process: LabProcess, tmp_path: Path) -> None:
    """--config.auto-reload-interval: a new content is reloaded once; a refused content is
    not tried again until it changes; an unchanged file is never reloaded."""
    path = write_config(tmp_path / "c.yml", _good(lab_process, interval="1h"))
    exporter = ExporterProcess("--config.file", str(path), "--config.auto-reload-interval", "200ms")

    def reloads(result: str) -> float:
        found = value(exporter.scrape()[1], "acme_http01_config_reloads_total", result=result)
        return found or 0.0

    try:
        time.sleep(1)
        assert (reloads("success"), reloads("failure")) == (0, 0)
        write_config(path, _good(lab_process, interval="2h"))
        wait_for(lambda: reloads("success") == 1, 10, "the change was not applied", exporter)
        assert value(exporter.scrape()[1], "acme_http01_validation_interval_seconds") == 7200
        path.write_text("interval: fast\n")
        wait_for(lambda: reloads("failure") == 1, 10, "the bad file was not tried", exporter)
        time.sleep(1)
        assert (reloads("success"), reloads("failure")) == (1, 1)
        assert value(exporter.scrape()[1], "acme_http01_validation_interval_seconds") == 7200
    finally:
        assert exporter.stop() == 0
