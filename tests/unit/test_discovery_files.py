"""The files source: Prometheus file_sd semantics on real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from exporter.config import ConfigError, FileSource, parse
from exporter.discovery.files import FileWatcher, parse_names
from exporter.discovery.status import Reason, SourceName, Status


def watcher(*patterns: str) -> tuple[FileWatcher, Status, list[int]]:
    status = Status(SourceName.FILE, "File")
    calls: list[int] = []
    return (
        FileWatcher(FileSource(files=list(patterns)), status, lambda: calls.append(1)),
        status,
        calls,
    )


def names(w: FileWatcher) -> dict[str, str | None]:
    return {f.name: f.skipped for f in w.found()}


def test_a_list_of_names_and_file_sd_groups_and_json(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("- Shop.Example.COM.\n- '*.example.com'\n- api.example.com\n")
    groups = [{"targets": ["b.example.net", "api.example.com"], "labels": {"team": "x"}}]
    (tmp_path / "b.json").write_text(json.dumps(groups))
    w, status, _ = watcher(str(tmp_path / "*.yaml"), str(tmp_path / "*.json"))
    assert w.refresh()
    assert names(w) == {
        "shop.example.com": None,
        "*.example.com": "wildcard",
        "api.example.com": None,
        "b.example.net": None,
    }
    origins = {f.origin.name for f in w.found()}
    assert origins == {str(tmp_path / "a.yaml"), str(tmp_path / "b.json")}
    assert status.up and status.objects == 2 and status.last_sync > 0


def test_a_new_file_is_picked_up_and_a_removed_one_takes_its_names(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("[a.example.com]")
    w, status, _ = watcher(str(tmp_path / "*.yml"))
    w.refresh()
    assert set(names(w)) == {"a.example.com"}
    (tmp_path / "b.yml").write_text("[b.example.com]")
    assert w.refresh()
    assert set(names(w)) == {"a.example.com", "b.example.com"}
    (tmp_path / "a.yml").unlink()
    assert w.refresh()
    assert set(names(w)) == {"b.example.com"}
    assert status.objects == 1
    assert not w.refresh()  # nothing changed: nothing to tell


@pytest.mark.parametrize(
    "content",
    [
        "- a.example.com\n- [unclosed\n",  # half written
        "a.example.com: 1\n",  # not a list
        "- {name: a.example.com}\n",  # neither a name nor a group
        "- {targets: a.example.com}\n",  # targets not a list
        "",  # truncated to nothing
    ],
)
def test_a_bad_file_keeps_its_last_good_list(tmp_path: Path, content: str) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("- good.example.com\n")
    w, status, _ = watcher(str(path))
    w.refresh()
    path.write_text(content)
    os.utime(path, ns=(1, 1))  # a change the stat sees, whatever the clock's resolution
    assert not w.refresh()
    assert set(names(w)) == {"good.example.com"}
    assert not status.up
    assert status.errors == {Reason.INVALID: 1}
    assert str(path) in status.last_error
    path.write_text("- good.example.com\n- new.example.com\n")
    assert w.refresh()
    assert set(names(w)) == {"good.example.com", "new.example.com"}
    assert status.up and status.last_error == ""


def test_one_bad_file_never_empties_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("[a.example.com]")
    (tmp_path / "b.yaml").write_text("not: [a list")
    w, status, _ = watcher(str(tmp_path / "*.yaml"))
    w.refresh()
    assert set(names(w)) == {"a.example.com"}
    assert not status.up and status.errors[Reason.INVALID] == 1


def test_a_missing_literal_path_is_unreadable(tmp_path: Path) -> None:
    w, status, _ = watcher(str(tmp_path / "absent.yaml"))
    w.refresh()
    assert list(w.found()) == []
    assert status.errors == {Reason.UNREADABLE: 1}
    assert "absent.yaml" in status.last_error


def test_parse_names_refuses_what_is_not_a_list() -> None:
    assert parse_names(None, "f") == []
    assert parse_names(["a", {"targets": ["b"]}], "f") == ["a", "b"]
    with pytest.raises(ValueError, match=r"\[1\]"):
        parse_names(["a", 3], "f")


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (
            {"sources": {"files": [{"files": []}]}},
            "sources.files[0].files: List should have at least 1 item",
        ),
        ({"sources": {"files": [{"files": ["/etc/*/x.yaml"]}]}}, "only be in the last part"),
        ({"sources": {"files": [{"files": ["/x"], "refresh_interval": "0s"}]}}, "refresh_interval"),
        ({"sources": {"kubernetes": {"namespaces": ["Bad_NS"]}}}, "not a namespace name"),
        ({"sources": {"kubernetes": {"namespaces": ["a", "a"]}}}, "listed twice"),
        ({"sources": {"kubernetes": {"ingress": {"label_selector": "a=b\nc"}}}}, "one line"),
        ({"sources": {"kubernetes": {"pods": {}}}}, "sources.kubernetes.pods: unknown key"),
        ({"domains": ["a.example"], "sources": {"static": ["b.example"]}}, "set one of them"),
    ],
)
def test_bad_source_configs_name_the_key(document: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(document, "c.yml")
    assert problem in str(caught.value)


def test_sources_static_is_the_domains_list() -> None:
    config = parse({"sources": {"static": ["A.example", {"name": "b.example"}]}})
    assert [d.name for d in config.domains] == ["a.example", "b.example"]
