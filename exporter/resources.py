"""The exporter's own resources: file descriptors, socket buffers, memory.

Rule: a failure for want of one of the exporter's own resources (``EMFILE``: this process
is out of descriptors; ``ENFILE``: the system is; ``ENOBUFS``, ``ENOMEM``: no buffer or
memory for a socket) says nothing about the domain being validated. The I/O seams raise
:class:`ExporterResourceError` for it instead of classifying it as the domain's problem
(a ``dns_error``, a ``connect_error``); the service counts it as the exporter's own
(``acme_http01_exporter_errors_total{reason}``) and keeps the domain's last result.

At start, :func:`raise_nofile_limit` lifts the soft ``RLIMIT_NOFILE`` to the hard limit,
as Go's runtime does for every Go program since 1.19: the default soft limit of 1,024 is
a relic of ``select()``, which nothing here uses.
"""

from __future__ import annotations

import errno
import sys
from enum import StrEnum

__all__ = [
    "OWN_ERRNOS",
    "ExporterResourceError",
    "ResourceReason",
    "check_own",
    "raise_nofile_limit",
]


class ResourceReason(StrEnum):
    """The ``reason`` label of ``acme_http01_exporter_errors_total``. Closed set."""

    DESCRIPTORS = "descriptors"  # EMFILE, ENFILE
    BUFFERS = "buffers"  # ENOBUFS
    MEMORY = "memory"  # ENOMEM


#: errno -> reason, for the errors that are the exporter's own, never the domain's.
OWN_ERRNOS: dict[int, ResourceReason] = {
    errno.EMFILE: ResourceReason.DESCRIPTORS,
    errno.ENFILE: ResourceReason.DESCRIPTORS,
    errno.ENOBUFS: ResourceReason.BUFFERS,
    errno.ENOMEM: ResourceReason.MEMORY,
}


class ExporterResourceError(Exception):
    """The exporter ran out of one of its own resources; no verdict about any domain."""

    def __init__(self, reason: ResourceReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value}: {detail}")


def check_own(exc: BaseException) -> None:
    """Raise :class:`ExporterResourceError` if ``exc`` is an OSError of the exporter's own."""
    if isinstance(exc, OSError) and exc.errno in OWN_ERRNOS:
        raise ExporterResourceError(
            OWN_ERRNOS[exc.errno], exc.strerror or errno.errorcode.get(exc.errno, "")
        ) from exc


def raise_nofile_limit() -> tuple[int, int] | None:
    """Lift the soft ``RLIMIT_NOFILE`` to the hard limit; ``(old, new)``, or None where
    there are no such limits (Windows) or they cannot be changed."""
    if sys.platform == "win32":  # pragma: no cover
        return None
    import resource

    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            # Linux refuses an infinite soft limit for descriptors; macOS caps it too.
            return None
        if soft != resource.RLIM_INFINITY and soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return soft, hard
        return soft, soft
    except (OSError, ValueError):
        return None
