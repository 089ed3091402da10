"""A real Unbound, as Let's Encrypt runs it, resolving and validating the lab's signed hierarchy.

Rule: test infrastructure. The rendered ``unbound.conf`` has no upstream but the lab's
loopback servers: one stub zone per lab zone (the root's stub replaces the root hints),
the lab root's KSK as the only trust anchor, no forwarding, outgoing queries sent from
127.0.0.1 over IPv4 only (a packet from 127.0.0.1 cannot leave the host). Unbound runs
in the foreground (``unbound -d``) as the current user in a temporary directory, with a
bounded cache, no remote control, ``ede: yes`` and ``val-log-level: 2`` (the validator's
reason becomes the EXTRA-TEXT of an Extended DNS Error, RFC 8914). :meth:`Unbound.stop`
(or leaving ``async with``) ends it; so does the death of the process that started it
(Linux), so no Unbound outlives a test run.

Without the ``unbound`` binary (Debian package ``unbound``) :func:`find_unbound` raises
:class:`UnboundNotFound`; the tests skip on it, or fail under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.message

from exporter.lab.dnssec import Hierarchy
from exporter.lab.ports import ephemeral_range, free_port

__all__ = ["Unbound", "UnboundNotFound", "find_unbound", "render_config"]

#: Unbound answers these itself (RFC 6761, 6762, 7686, 8375) unless told ``nodefault``.
_DEFAULT_LOCAL_ZONES = ("localhost.", "test.", "invalid.", "onion.", "home.arpa.")


class UnboundNotFound(RuntimeError):
    """The ``unbound`` binary is not installed."""


def find_unbound() -> str:
    """The path of the ``unbound`` binary (``$UNBOUND``, ``PATH``, then ``/usr/sbin``)."""
    candidates = [os.environ.get("UNBOUND", ""), shutil.which("unbound") or ""]
    candidates += ["/usr/sbin/unbound", "/usr/local/sbin/unbound"]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise UnboundNotFound(
        "the unbound binary is not installed (Debian: apt-get install unbound; "
        "scripts/test.sh installs it when run as root)"
    )


def render_config(
    *,
    directory: Path,
    port: int,
    trust_anchor: str,
    stubs: dict[str, tuple[str, int]],
    listen: str = "127.0.0.1",
    verbosity: int = 1,
    extra: Sequence[str] = (),
) -> str:
    """An ``unbound.conf`` that resolves only through ``stubs`` (zone -> (address, port))."""
    if "." not in stubs:
        raise ValueError("the root needs a stub (it replaces the root hints)")
    nodefault = sorted(
        {
            default
            for zone in stubs
            for default in _DEFAULT_LOCAL_ZONES
            if zone == default or zone.endswith("." + default)
        }
    )
    run = directory.resolve()
    server = [
        f"verbosity: {verbosity}",
        f"interface: {listen}",
        f"port: {port}",
        "do-daemonize: no",
        'username: ""',
        'chroot: ""',
        f'directory: "{run}"',
        f'pidfile: "{run}/unbound.pid"',
        'logfile: ""',
        "use-syslog: no",
        "log-time-ascii: yes",
        "log-servfail: yes",
        "num-threads: 1",
        "so-reuseport: no",
        "access-control: 127.0.0.0/8 allow",
        # Only the lab: IPv4 from 127.0.0.1, to loopback servers; no forwarder, no root
        # hints (the "." stub is the root hint; both together and Unbound drops the stub).
        "do-ip6: no",
        "outgoing-interface: 127.0.0.1",
        "do-not-query-localhost: no",
        f'trust-anchor: "{trust_anchor}"',
        "trust-anchor-signaling: no",
        "root-key-sentinel: no",
        'module-config: "validator iterator"',
        "ede: yes",
        "val-log-level: 2",
        # A bounded cache.
        "msg-cache-size: 4m",
        "rrset-cache-size: 8m",
        "key-cache-size: 4m",
        "neg-cache-size: 1m",
        "infra-cache-numhosts: 1000",
        "outgoing-range: 256",
        # No outgoing query from below the ephemeral range: the ports there are where
        # exporter.lab.ports picks ports for child processes, and a query's random source
        # port must not take one between the pick and the child's bind.
        f"outgoing-port-avoid: 0-{ephemeral_range()[0] - 1}",
        "num-queries-per-thread: 128",
        *[f'local-zone: "{zone}" nodefault' for zone in nodefault],
        *extra,
    ]
    lines = ["server:", *[f"    {line}" for line in server]]
    for zone, (address, stub_port) in sorted(stubs.items(), key=lambda item: item[0]):
        lines += ["stub-zone:", f'    name: "{zone}"', f"    stub-addr: {address}@{stub_port}"]
    lines += ["remote-control:", "    control-enable: no", ""]
    return "\n".join(lines)


def _libc_prctl() -> Callable[..., int] | None:
    """``prctl(2)``, looked up in the parent (a child must not call dlopen after fork)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return function


_PRCTL = _libc_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Linux: the child gets SIGKILL when the thread that started it dies."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


#: Starts tried, each on a new port, when the port was taken between pick and bind.
_BIND_ATTEMPTS = 3


class _PortTaken(Exception):
    """Unbound could not bind its port: another process took it after the pick."""


class Unbound:
    """``unbound -d`` for a started :class:`~exporter.lab.dnssec.Hierarchy`.

    ``async with Unbound(hierarchy) as unbound:`` then query ``unbound.address``.
    ``directory`` (kept) holds ``unbound.conf`` and ``unbound.log``; without one a
    temporary directory is used and removed on stop.
    """

    def __init__(
        self,
        hierarchy: Hierarchy,
        *,
        directory: Path | None = None,
        verbosity: int = 1,
        extra: Sequence[str] = (),
    ) -> None:
        self.hierarchy = hierarchy
        self.binary = find_unbound()
        self.host = "127.0.0.1"
        self.port = 0
        self.verbosity = verbosity
        self.extra = tuple(extra)
        self._directory = directory
        self._temporary: str | None = None
        self.process: asyncio.subprocess.Process | None = None
        #: Seconds from exec until it answered its first query.
        self.start_seconds = 0.0

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def directory(self) -> Path:
        if self._directory is None:
            raise RuntimeError("Unbound is not started")
        return self._directory

    @property
    def config_path(self) -> Path:
        return self.directory / "unbound.conf"

    @property
    def log_path(self) -> Path:
        return self.directory / "unbound.log"

    def log(self) -> str:
        """What Unbound logged so far (stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def config(self) -> str:
        return render_config(
            directory=self.directory,
            port=self.port,
            trust_anchor=self.hierarchy.trust_anchor,
            stubs=self.hierarchy.stubs,
            listen=self.host,
            verbosity=self.verbosity,
            extra=self.extra,
        )

    async def start(self, timeout: float = 10.0) -> None:
        """Start Unbound and wait until it answers (its own ``localhost.``: no lab query)."""
        if self.process is not None:
            return
        if self._directory is None:
            self._temporary = tempfile.mkdtemp(prefix="lab-unbound-")
            self._directory = Path(self._temporary)
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            for attempt in range(1, _BIND_ATTEMPTS + 1):
                try:
                    await self._start_once(timeout)
                    return
                except _PortTaken:
                    if attempt == _BIND_ATTEMPTS:
                        raise RuntimeError(
                            f"unbound found its port taken {attempt} times "
                            f"(last {self.host}:{self.port}):\n{self.log()}"
                        ) from None
        except BaseException:
            await self.stop()
            raise

    async def _start_once(self, timeout: float) -> None:
        """One start on a newly picked port; the process is ended again if it fails."""
        self.port = free_port(self.host)
        self.config_path.write_text(self.config())
        started = time.perf_counter()
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                self.binary,
                "-d",
                "-c",
                str(self.config_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent if _PRCTL is not None else None,
            )
        try:
            await self._wait_ready(started + timeout)
        except BaseException:
            await self._end_process()
            raise
        self.start_seconds = time.perf_counter() - started

    async def _wait_ready(self, deadline: float) -> None:
        assert self.process is not None
        probe = dns.message.make_query("localhost.", "A")
        while True:
            if self.process.returncode is not None:
                if "could not open ports" in self.log():
                    raise _PortTaken
                raise RuntimeError(
                    f"unbound exited with status {self.process.returncode}:\n{self.log()}"
                )
            try:  # TCP: refused at once until Unbound listens (UDP would just time out)
                await dns.asyncquery.tcp(probe, self.host, port=self.port, timeout=0.5)
                await dns.asyncquery.udp(probe, self.host, port=self.port, timeout=0.5)
                return
            except (OSError, EOFError, dns.exception.DNSException):
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"unbound did not answer in time:\n{self.log()}") from None
                await asyncio.sleep(0.005)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; always reaped. Removes a temporary directory."""
        await self._end_process()
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None
            self._directory = None

    async def _end_process(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    async def __aenter__(self) -> Unbound:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
