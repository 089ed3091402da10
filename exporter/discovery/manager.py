"""The discovery sources of a running exporter, and the names they find together.

Rule: :class:`Discovery` runs the configured file and Kubernetes sources and tells its
owner when their names changed (coalesced: a burst of watch events is one change, told
within :data:`COALESCE` seconds). A reload reconfigures it: a source whose config is the
same keeps running untouched (its watches are not re-established); a changed one is
replaced, and until the new one has completed its first list, the names the old one found
are kept, so a reload never empties the set while a new watch starts. Merging these names
with the static list, and what is validated, is the owner's (``exporter.service``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from exporter.config import FileSource, KubernetesSource
from exporter.discovery.files import KIND as FILE_KIND
from exporter.discovery.files import FileWatcher
from exporter.discovery.kinds import Found
from exporter.discovery.status import SourceName, StatusBook

if TYPE_CHECKING:
    from lightkube.config.kubeconfig import SingleConfig

    from exporter.discovery.kubernetes import KubernetesWatcher

__all__ = ["COALESCE", "Discovery", "discover_once"]

log = logging.getLogger("exporter")

#: Changes arriving within this many seconds of the first are told as one.
COALESCE = 0.05
#: A replaced Kubernetes source's names are kept at most this long for its successor's
#: first lists (a kind its successor may not list at all, RBAC forbidding it, must not
#: keep them for ever).
CARRY_SECONDS = 300.0


class Discovery:
    def __init__(self, changed: Callable[[], None]) -> None:
        self.book = StatusBook()
        self._changed = changed
        self._files: dict[str, tuple[FileWatcher, asyncio.Task[None]]] = {}
        self._kube: tuple[KubernetesWatcher, asyncio.Task[None]] | None = None
        self._kube_key: tuple[str, object] | None = None
        #: Names of a replaced Kubernetes source, kept until its successor has listed.
        self._carried: list[Found] = []
        self._carried_until = 0.0
        self._pending: asyncio.TimerHandle | None = None

    def _notify(self) -> None:
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.call_later(COALESCE, self._fire)

    def _fire(self) -> None:
        self._pending = None
        self._changed()

    @property
    def active(self) -> bool:
        return bool(self._files or self._kube)

    def configure(
        self,
        files: list[FileSource],
        kubernetes: KubernetesSource | None,
        kubeconfig: SingleConfig | None,
    ) -> None:
        """Run exactly these sources (on the event loop; nothing here blocks)."""
        loop = asyncio.get_running_loop()
        wanted = {entry.model_dump_json(): entry for entry in files}
        for key in list(self._files):
            if key not in wanted:
                _, task = self._files.pop(key)
                task.cancel()
        for key, entry in wanted.items():
            if key not in self._files:
                status = self.book.get(SourceName.FILE, FILE_KIND)
                watcher = FileWatcher(entry, status, self._notify)
                self._files[key] = (watcher, loop.create_task(watcher.run()))
        kube_key = (
            None if kubernetes is None else (kubernetes.model_dump_json(), _single_key(kubeconfig))
        )
        if kube_key != self._kube_key:
            if self._kube is not None:
                old, task = self._kube
                # Until the new source has listed, the old one's names stay.
                self._carried = old.found() if kubernetes is not None else []
                self._carried_until = loop.time() + CARRY_SECONDS
                task.cancel()
                self._kube = None
            self._kube_key = kube_key
            if kubernetes is not None and kubeconfig is not None:
                from exporter.discovery.kubernetes import KubernetesWatcher

                kube = KubernetesWatcher(kubernetes, kubeconfig, self.book, self._notify)
                self._kube = (kube, loop.create_task(kube.run()))
        keys = {(SourceName.FILE, FILE_KIND)} if self._files else set()
        if self._kube is not None:
            keys |= self._kube[0].statuses()
        self.book.keep_only(keys | {(SourceName.STATIC, "")})
        self._notify()

    def settled(self) -> bool:
        """Whether every source has made its first attempt (a read, a list per kind)."""
        return all(w.refreshed for w, _ in self._files.values()) and (
            self._kube is None or self._kube[0].settled()
        )

    def found(self) -> list[Found]:
        """Every name the sources found now (validated or skipped), in source order."""
        out: list[Found] = []
        for watcher, _ in self._files.values():
            out.extend(watcher.found())
        if self._kube is not None:
            kube = self._kube[0]
            out.extend(kube.found())
            if self._carried:
                if kube.listed() or asyncio.get_running_loop().time() > self._carried_until:
                    self._carried = []
                else:
                    out.extend(self._carried)
        return out

    async def stop(self) -> None:
        tasks = [task for _, task in self._files.values()]
        if self._kube is not None:
            tasks.append(self._kube[1])
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._files.clear()
        self._kube = None
        self._kube_key = None


def _single_key(single: SingleConfig | None) -> object:
    """What makes two loaded kubeconfigs the same connection (server, user, namespace)."""
    if single is None:
        return None
    return (repr(single.cluster), repr(single.user), single.namespace)


async def discover_once(
    files: list[FileSource],
    kubernetes: KubernetesSource | None,
    kubeconfig: SingleConfig | None,
    book: StatusBook,
) -> list[Found]:
    """Every source read once (``check``): the files, each Kubernetes kind listed once."""
    found: list[Found] = []
    for entry in files:
        watcher = FileWatcher(entry, book.get(SourceName.FILE, FILE_KIND), lambda: None)
        await asyncio.to_thread(watcher.refresh)
        found.extend(watcher.found())
    if kubernetes is not None and kubeconfig is not None:
        from exporter.discovery.kubernetes import KubernetesWatcher

        kube = KubernetesWatcher(kubernetes, kubeconfig, book, lambda: None)
        await kube.list_once()
        found.extend(kube.found())
    return found
