"""What each discovery source says of itself: up, objects, names, last sync, errors.

Rule: one :class:`Status` per (source, kind), created once and kept for the process's
life (a reload that rebuilds a source keeps its counters), written only from the event
loop and read by the scrape as plain values. The error reasons are a closed set
(:class:`Reason`); so are the sources.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Reason", "SourceName", "Status", "StatusBook"]


class SourceName(StrEnum):
    STATIC = "static"
    FILE = "file"
    KUBERNETES = "kubernetes"


class Reason(StrEnum):
    """Why a source's list, watch or read failed."""

    #: No connection to the API server (refused, reset, closed mid-watch).
    UNREACHABLE = "unreachable"
    #: The API server did not answer in time.
    TIMEOUT = "timeout"
    #: 401: the credentials are refused (an expired token, a wrong kubeconfig).
    UNAUTHORIZED = "unauthorized"
    #: 403: RBAC does not allow list/watch of this kind.
    FORBIDDEN = "forbidden"
    #: 404: the API server does not serve this kind (its CRD is not installed).
    NOT_FOUND = "not_found"
    #: 410: the watch's resourceVersion was compacted away; the kind is listed again.
    GONE = "gone"
    #: 5xx or another unexpected answer from the API server.
    SERVER_ERROR = "server_error"
    #: An object or a file that cannot be read as what it should be.
    INVALID = "invalid"
    #: A file that cannot be opened (missing after it was globbed, no permission).
    UNREADABLE = "unreadable"
    #: The client could not be set up (the kubeconfig or service account token).
    CONFIG = "config"


@dataclass
class Status:
    """One source's state (source ``file``, kind ``File``; source ``kubernetes``, a kind)."""

    source: SourceName
    kind: str
    up: bool = False
    #: Objects (files) currently known.
    objects: int = 0
    #: Names it contributes (validated or not).
    names: int = 0
    #: Names seen but not validated, by reason (a wildcard, a DNS-01 solver...).
    skipped: dict[str, int] = field(default_factory=dict)
    #: Unix time of the last moment the source was known to be current (a list, a read,
    #: a watch (re)opened or an event); 0: never.
    last_sync: float = 0.0
    errors: dict[Reason, int] = field(default_factory=dict)
    #: The last error's text, for the landing page and the logs ("" after a success).
    last_error: str = ""
    #: Whether this source is configured now (a status outlives a source that a reload removed
    #: only until the book is pruned).
    active: bool = True

    def synced(self) -> None:
        self.up = True
        self.last_sync = time.time()
        self.last_error = ""

    def failed(self, reason: Reason, text: str) -> None:
        self.up = False
        self.errors[reason] = self.errors.get(reason, 0) + 1
        self.last_error = f"{reason.value}: {text}"


class StatusBook:
    """Every source's :class:`Status`, by (source, kind)."""

    def __init__(self) -> None:
        self._statuses: dict[tuple[SourceName, str], Status] = {}

    def get(self, source: SourceName, kind: str) -> Status:
        key = (source, kind)
        status = self._statuses.get(key)
        if status is None:
            status = self._statuses[key] = Status(source, kind)
        status.active = True
        return status

    def keep_only(self, keys: set[tuple[SourceName, str]]) -> None:
        """Forget the statuses of sources no longer configured (their series leave)."""
        for key in list(self._statuses):
            if key not in keys:
                del self._statuses[key]

    def all(self) -> list[Status]:
        return sorted(self._statuses.values(), key=lambda s: (s.source, s.kind))
