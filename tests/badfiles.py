"""The bad-file harness of the config file and the web config file.

A folder holds ``invalid-*.yml`` files and a table says, for each, the exact problems
loading it gives (``<key>: <reason>`` lines, each shown after the file's path). One call
makes the three tests a loader owes its table; a test module binds them to its own names::

    test_bad_config, test_every_invalid_file_is_in_the_table, test_unreadable_file = (
        bad_file_tests(load, DATA, BAD)
    )
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from exporter.config import ConfigError


def refusal(load: Callable[[Path], object], path: Path) -> ConfigError:
    """The ConfigError loading ``path`` raises (a file that loads fails the test)."""
    try:
        load(path)
    except ConfigError as exc:
        return exc
    raise AssertionError(f"{path} loaded: it should have been refused")


def assert_refused(load: Callable[[Path], object], path: Path, problems: Sequence[str]) -> None:
    """Loading ``path`` is refused with exactly these problems, each after the path."""
    caught = refusal(load, path)
    assert caught.problems == list(problems), f"{caught.problems!r} != {list(problems)!r}"
    expected = "\n".join(f"{path}: {p}" for p in problems)
    assert str(caught) == expected, f"{str(caught)!r} != {expected!r}"


def bad_file_tests(
    load: Callable[[Path], object], directory: Path, table: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], None], Callable[[], None], Callable[[Path], None]]:
    """Three tests for ``load``: each file of ``table`` (in ``directory``) is refused with
    its problems; every ``invalid-*.yml`` in ``directory`` is in ``table``; a missing file
    is refused with the reason the system gives."""

    @pytest.mark.parametrize("name", sorted(table), ids=lambda n: n.removesuffix(".yml"))
    def each_bad_file(name: str) -> None:
        assert_refused(load, directory / name, table[name])

    def every_invalid_file_is_in_the_table() -> None:
        files = {p.name for p in directory.glob("invalid-*.yml")}
        assert files == set(table), f"not in the table: {sorted(files - set(table))}; " + (
            f"no such file: {sorted(set(table) - files)}"
        )

    def unreadable_file(tmp_path: Path) -> None:
        assert_refused(
            load, tmp_path / "nope.yml", ["cannot read the file: No such file or directory"]
        )

    return each_bad_file, every_invalid_file_is_in_the_table, unreadable_file
