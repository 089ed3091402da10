"""Names from files, read as Prometheus reads ``file_sd_configs`` target files.

Rule: each configured pattern is expanded (a glob in the last part of the path) every
``refresh_interval``; a file whose size, modification time or inode changed is read again
(with :func:`exporter.config.read_stable`: a file caught mid-write is read again until two
readings agree). A file that cannot be read or parsed keeps **its** last good list, and the
failure is counted (``invalid`` or ``unreadable``) and logged: one bad file never empties the
others, nor itself. A file that is gone (no longer matched) takes its names with it, as in
Prometheus. Writing the file elsewhere and renaming it over the old one is the safe way to
change it; ConfigMap volumes already work that way.

A file is a YAML (or JSON) list: names, or file_sd groups ``{targets: [names], labels: {}}``
(the labels are ignored), so a file written for Prometheus' file_sd works as it is.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from exporter.config import ConfigError, FileSource, read_document
from exporter.discovery.kinds import Found, Origin, judge
from exporter.discovery.status import Reason, SourceName, Status

__all__ = ["FileWatcher", "parse_names"]

log = logging.getLogger("exporter")

KIND = "File"


def parse_names(document: object, path: str) -> list[str]:
    """The names of a file's parsed content; ValueError says what is wrong with it."""
    if document is None:
        return []
    if not isinstance(document, list):
        raise ValueError("expected a list of names or of file_sd groups ({targets: [...]})")
    names: list[str] = []
    for index, item in enumerate(document):
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and "targets" in item:
            targets = item["targets"]
            if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
                raise ValueError(f"[{index}].targets: expected a list of names")
            names.extend(targets)
        else:
            raise ValueError(f"[{index}]: expected a name or a file_sd group ({{targets: [...]}})")
    return names


@dataclass(frozen=True, slots=True)
class _Stamp:
    inode: int
    size: int
    mtime_ns: int


class FileWatcher:
    """One ``sources.files`` entry: its files' names, kept current."""

    def __init__(self, config: FileSource, status: Status, changed: Callable[[], None]) -> None:
        self.config = config
        self.status = status
        self._changed = changed
        self._stamps: dict[str, _Stamp] = {}
        self._found: dict[str, list[Found]] = {}
        #: Whether the files were checked once.
        self.refreshed = False

    def found(self) -> Iterable[Found]:
        for items in self._found.values():
            yield from items

    def _paths(self) -> list[str]:
        paths: set[str] = set()
        for pattern in self.config.files:
            if glob.has_magic(os.path.basename(pattern)):
                paths.update(p for p in glob.glob(pattern) if os.path.isfile(p))
            else:
                paths.add(pattern)
        return sorted(paths)

    def refresh(self) -> bool:
        """Check every file once (blocking: run it in a thread); True if a list changed."""
        changed = False
        ok = True
        paths = self._paths()
        for gone in set(self._found) - set(paths):
            del self._found[gone]
            self._stamps.pop(gone, None)
            changed = True
        for path in paths:
            try:
                info = os.stat(path)
            except OSError as exc:
                ok = False
                self._fail(Reason.UNREADABLE, path, exc.strerror or str(exc))
                continue
            stamp = _Stamp(info.st_ino, info.st_size, info.st_mtime_ns)
            if self._stamps.get(path) == stamp:
                continue
            try:
                names = parse_names(read_document(path), path)
            except ConfigError as exc:
                ok = False
                reason = Reason.UNREADABLE if "cannot read" in str(exc) else Reason.INVALID
                self._fail(reason, path, "; ".join(exc.problems))
                continue
            except ValueError as exc:
                ok = False
                self._fail(Reason.INVALID, path, str(exc))
                continue
            self._stamps[path] = stamp
            origin = Origin(SourceName.FILE.value, KIND, "", path)
            found = list({f.name: f for f in (judge(n, origin) for n in names)}.values())
            if found != self._found.get(path):
                self._found[path] = found
                changed = True
        self.status.objects = len(self._found)
        if ok:
            self.status.synced()
        if not self.refreshed:
            self.refreshed = changed = True
        return changed

    def _fail(self, reason: Reason, path: str, text: str) -> None:
        kept = len(self._found.get(path, ()))
        self.status.failed(reason, f"{path}: {text}")
        log.error(
            "domain file not applied; its last good list is kept",
            extra={"fields": {"file": path, "reason": reason.value, "error": text, "kept": kept}},
        )

    async def run(self) -> None:
        while True:
            if await asyncio.to_thread(self.refresh):
                self._changed()
            await asyncio.sleep(self.config.refresh_interval)
