"""Hostile and broken servers: each costs at most its own bounded time and memory.

Every case runs a real server on loopback that misbehaves in one way, next to a healthy
domain validated at the same time, and asserts: the verdict and reason Let's Encrypt
would give, the time taken (at the one timer the case is about, or long before any
timer), the CPU spent, bounded memory, and that the healthy domain was not slowed down.
Times are allowed the lateness this process saw meanwhile; CPU time is not, it does not
grow on a busy machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import resource
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from exporter.compose import build_resolver, build_router, build_settings, build_validator
from exporter.dial import Dialer
from exporter.http01 import Validator
from exporter.lab import servers as L
from exporter.records import ProblemType, Reason, ValidationResult
from tests.integration.lab_validation import KA, TOKEN, site, validator
from tests.timing import loop_lateness, thread_lateness

BUDGET = 1.5  # the validation deadline of the cases that end at it
SLACK = 0.75  # what ending there may add: the verdict, the healthy domain's answer
#: The timers of every other case, each ruled out by ending long before it: a case that
#: waited for a dial, a TLS handshake, a DNS query or the validation's deadline would take
#: 10 s at least.
PATIENT: dict[str, float] = {"dial": 10.0, "tls": 10.0, "resolver_timeout": 10.0, "budget": 20.0}
EARLY = 5.0  # seconds: half the shortest of those timers
#: Seconds of CPU this process may spend on a case, both validations and the lab's
#: servers included (a few hundredths normally; decoding a bomb, reading a body or headers
#: without limit, or a parser that rescans what it has, cost far more on any machine).
CPU = 0.5

Raw = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclasses.dataclass(frozen=True)
class Run:
    """One case's validation, next to a healthy domain's."""

    result: ValidationResult
    elapsed: float  # seconds, until both had their verdict
    cpu: float  # seconds of this process's CPU meanwhile
    #: how late this process was scheduled meanwhile: the worst lateness of a thread's
    #: 10 ms sleeps. A busy machine delays it; Python work on the event loop does not
    #: (the thread takes the GIL at the next switch interval), but one long call holding
    #: the GIL does (copying a gigabyte): what that hides here, the CPU bound catches.
    lag: float

    def ended_early(self) -> None:
        """It waited for no timer (each is 10 s at least) and burnt no CPU."""
        assert self.elapsed < EARLY, self
        assert self.cpu < CPU, self

    def ended_at(self, deadline: float) -> None:
        """It ended at ``deadline``, no sooner and no later than the slack and the
        machine's lateness allow, and burnt no CPU meanwhile."""
        assert deadline - 0.1 < self.elapsed < deadline + SLACK + self.lag, self
        assert self.cpu < CPU, self


async def judge(lab: L.Lab, name: str, **settings: Any) -> Run:
    """Validate ``name`` next to a healthy domain, with the :data:`PATIENT` timers unless
    ``settings`` say otherwise; the healthy domain must pass, and as fast as alone."""
    healthy = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("healthy.example.net", a=[healthy])
    v = validator(lab, **{**PATIENT, **settings})

    async def timed_healthy() -> ValidationResult:
        await asyncio.sleep(0.2)  # while the hostile one is in flight
        return await v.validate("healthy.example.net", token=TOKEN, key_authorization=KA)

    gc.collect()  # what earlier tests left is not collected within the measure
    with thread_lateness() as lag:
        started, cpu = time.monotonic(), time.process_time()
        result, good = await asyncio.gather(
            v.validate(name, token=TOKEN, key_authorization=KA), timed_healthy()
        )
        run = Run(result, time.monotonic() - started, time.process_time() - cpu, lag())
    assert good.success and good.duration_seconds < 0.5 + run.lag, (good, run)
    return run


def reason(result: ValidationResult) -> tuple[ProblemType, Reason] | None:
    return None if result.problem is None else (result.problem.type, result.problem.reason)


# ----------------------------------------------------------------- raw behaviours

HEAD_200 = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"


async def drain(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)


def trickle(head: bytes, byte: bytes) -> Raw:
    """Read the request, send ``head``, then ``byte`` every 0.1 s, without end."""

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await drain(reader)
        writer.write(head)
        while True:
            writer.write(byte)
            await writer.drain()
            await asyncio.sleep(0.1)

    return run


def endless_headers() -> Raw:
    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await drain(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(100_000):  # bounded: 100 MB at most, the client gives up long before
            writer.write(b"X-Pad: " + b"a" * 1000 + b"\r\n")
            await writer.drain()

    return run


def huge_body(chunked: bool) -> Raw:
    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await drain(reader)
        chunk = b"z" * 65536
        if chunked:
            writer.write(HEAD_200 + b"Transfer-Encoding: chunked\r\n\r\n")
            piece = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
        else:
            writer.write(HEAD_200 + b"Content-Length: 1000000000\r\n\r\n")
            piece = chunk
        for _ in range(16_000):  # up to 1 GB, or until the client closes
            writer.write(piece)
            await writer.drain()

    return run


def reply(data: bytes, then: str = "close") -> Raw:
    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await drain(reader)
        writer.write(data)
        await writer.drain()
        if then == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif then == "hang":
            await asyncio.sleep(3600)

    return run


def garbage_then_hang() -> Raw:
    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(bytes(range(256)) * 4)
        await writer.drain()
        await asyncio.sleep(3600)

    return run


def stall() -> Raw:
    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    return run


# ------------------------------------------------------------------------- cases


async def test_trickling_headers_stop_at_the_deadline(lab: L.Lab) -> None:
    address = await site(
        lab, "slow.example.com", L.raw(trickle(b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a"))
    )
    run = await judge(lab, "slow.example.com", budget=BUDGET)
    result = run.result
    assert reason(result) == (ProblemType.CONNECTION, Reason.READ_TIMEOUT)
    assert result.problem is not None and result.problem.detail == (
        f"{address}: Fetching http://slow.example.com/.well-known/acme-challenge/{TOKEN}: "
        "Timeout after connect (your server may be slow or overloaded)"
    )
    run.ended_at(BUDGET)


async def test_trickling_body_stops_at_the_deadline(lab: L.Lab) -> None:
    address = await site(
        lab, "slowbody.example.com", L.raw(trickle(HEAD_200 + b"Content-Length: 100\r\n\r\n", b"x"))
    )
    run = await judge(lab, "slowbody.example.com", budget=BUDGET)
    result = run.result
    assert reason(result) == (ProblemType.UNAUTHORIZED, Reason.BODY_READ_ERROR)
    assert result.problem is not None and result.problem.detail == (
        f"{address}: Error reading HTTP response body: context deadline exceeded"
    )
    run.ended_at(BUDGET)


async def test_endless_headers_are_cut_off(lab: L.Lab) -> None:
    before = max_rss_mib()
    await site(lab, "headers.example.com", L.raw(endless_headers()))
    run = await judge(lab, "headers.example.com")
    result = run.result
    assert reason(result) == (ProblemType.CONNECTION, Reason.PROTOCOL_ERROR)
    assert result.problem is not None
    assert result.problem.detail.endswith("Error getting validation data")
    run.ended_early()
    assert max_rss_mib() - before < 50


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length-1GB", "endless-chunked"])
async def test_huge_bodies_are_read_128_bytes_at_most(lab: L.Lab, chunked: bool) -> None:
    before = max_rss_mib()
    address = await site(lab, "huge.example.com", L.raw(huge_body(chunked)))
    run = await judge(lab, "huge.example.com")
    result = run.result
    assert reason(result) == (ProblemType.UNAUTHORIZED, Reason.BODY_TOO_LARGE)
    assert result.problem is not None and result.problem.detail == (
        f"{address}: Invalid response from http://huge.example.com/.well-known/acme-challenge/"
        f'{TOKEN}: "' + "z" * 128 + '"'
    )
    run.ended_early()
    assert max_rss_mib() - before < 50


async def test_gzip_bomb_is_decoded_128_bytes_at_most(lab: L.Lab) -> None:
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    zeros = b"\0" * 1_000_000
    bomb = b"".join(packer.compress(zeros) for _ in range(200)) + packer.flush()  # 200 MB -> 200 kB
    header = HEAD_200 + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    before = max_rss_mib()
    await site(lab, "bomb.example.com", L.raw(reply(header + bomb)))
    run = await judge(lab, "bomb.example.com")
    result = run.result
    assert reason(result) == (ProblemType.UNAUTHORIZED, Reason.BODY_TOO_LARGE)
    assert max_rss_mib() - before < 50
    run.ended_early()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"HTTP/1.1 abc OK\r\n\r\n", (ProblemType.CONNECTION, Reason.PROTOCOL_ERROR)),
        (b"hello, this is HTTP/0.9\n", (ProblemType.CONNECTION, Reason.PROTOCOL_ERROR)),
        (
            b"HTTP/1.1 301 Moved Permanently\r\nContent-Length: 0\r\n\r\n",
            (ProblemType.UNAUTHORIZED, Reason.BAD_STATUS),
        ),
        (
            b"\x00\x00\x12\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64",
            (ProblemType.CONNECTION, Reason.HTTP2_OVER_HTTP),
        ),
        (b"", (ProblemType.CONNECTION, Reason.PROTOCOL_ERROR)),
    ],
    ids=["bad-status-line", "http-0.9", "301-without-location", "http2-preface", "empty"],
)
async def test_malformed_responses(lab: L.Lab, data: bytes, expected: tuple[Any, Any]) -> None:
    address = await site(lab, "malformed.example.com", L.raw(reply(data)))
    run = await judge(lab, "malformed.example.com")
    result = run.result
    assert reason(result) == expected
    url = f"http://malformed.example.com/.well-known/acme-challenge/{TOKEN}"
    message = {
        Reason.PROTOCOL_ERROR: f"Fetching {url}: Error getting validation data",
        Reason.HTTP2_OVER_HTTP: f"Fetching {url}: Server is speaking HTTP/2 over HTTP",
        Reason.BAD_STATUS: f"Invalid response from {url}: 301",
    }[expected[1]]
    assert result.problem is not None and result.problem.detail == f"{address}: {message}"
    run.ended_early()


async def test_reset_mid_headers(lab: L.Lab) -> None:
    await site(lab, "reset.example.com", L.raw(reply(b"HTTP/1.1 200 OK\r\nX-A", "reset")))
    run = await judge(lab, "reset.example.com")
    result = run.result
    # Part of the head had arrived: Go's client reports a broken response, not the reset.
    assert reason(result) == (ProblemType.CONNECTION, Reason.PROTOCOL_ERROR)
    assert result.problem is not None
    assert result.problem.detail.endswith(": Error getting validation data")
    run.ended_early()


async def test_reset_mid_body(lab: L.Lab) -> None:
    address = await site(
        lab,
        "resetbody.example.com",
        L.raw(reply(HEAD_200 + b"Content-Length: 100\r\n\r\nabc", "reset")),
    )
    run = await judge(lab, "resetbody.example.com")
    result = run.result
    assert reason(result) == (ProblemType.UNAUTHORIZED, Reason.BODY_READ_ERROR)
    assert result.problem is not None
    assert result.problem.detail.startswith(f"{address}: Error reading HTTP response body: ")
    run.ended_early()


async def test_tls_server_sending_garbage(lab: L.Lab) -> None:
    await site(
        lab, "garbage.example.com", L.redirect("https://{host}{path}"), L.raw(garbage_then_hang())
    )
    run = await judge(lab, "garbage.example.com")
    result = run.result
    assert reason(result) == (ProblemType.CONNECTION, Reason.TLS_ERROR)
    assert result.failed_hop == 1
    run.ended_early()


async def test_tls_handshake_stalled_past_the_deadline(lab: L.Lab) -> None:
    await site(lab, "stall.example.com", L.redirect("https://{host}{path}"), L.raw(stall()))
    run = await judge(lab, "stall.example.com", budget=BUDGET)
    result = run.result
    assert reason(result) == (ProblemType.CONNECTION, Reason.READ_TIMEOUT)
    run.ended_at(BUDGET)


async def test_tls_handshake_timeout(lab: L.Lab) -> None:
    await site(lab, "stall.example.com", L.redirect("https://{host}{path}"), L.raw(stall()))
    run = await judge(lab, "stall.example.com", tls=1.0)
    result = run.result
    assert reason(result) == (ProblemType.CONNECTION, Reason.TLS_HANDSHAKE_TIMEOUT)
    assert result.problem is not None and result.problem.detail.endswith(
        "Timeout after connect (your server may be slow or overloaded)"
    )
    run.ended_at(1.0)  # the handshake's timeout, not the validation's deadline


# ----------------------------------------------------------------------- Location


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/" + "a" * 5000, (ProblemType.CONNECTION, Reason.REDIRECT_PATH_TOO_LONG)),
        ("/x" + "?q=" + "b" * 60_000, None),  # long query: allowed; /x then serves
        ("//other.example.net/x", None),
        ("http://bücher.de/x", (ProblemType.DNS, Reason.DNS_NXDOMAIN)),
        ("/with space/x", None),
        ("http://exa mple.com/x", (ProblemType.CONNECTION, Reason.BAD_REDIRECT_LOCATION)),
    ],
    ids=["path-5000", "query-60k", "protocol-relative", "idn", "space-in-path", "space-in-host"],
)
async def test_hostile_locations(lab: L.Lab, location: str, expected: Any) -> None:
    other = await lab.host(4, L.body(KA.encode()), L.serve())
    lab.zone.add("other.example.net", a=[other])

    def handler(request: L.Request) -> L.Reply:
        if request.path.startswith("/.well-known/"):
            return L.Reply(302, b"", (("Location", location),))
        return L.Reply(200, KA.encode())

    await site(lab, "loc.example.com", handler)
    run = await judge(lab, "loc.example.com")
    result = run.result
    assert reason(result) == expected, result.problem
    run.ended_early()


async def test_redirect_chain_changing_scheme_and_host_on_every_hop(lab: L.Lab) -> None:
    hops = 8

    def handler(request: L.Request) -> L.Reply:
        step = int(request.host.split(".")[0].removeprefix("h") or 0)
        if step >= hops:
            return L.Reply(200, KA.encode())
        scheme = "https" if step % 2 == 0 else "http"
        return L.Reply(301, b"", (("Location", f"{scheme}://h{step + 1}.example.org/x"),))

    address = await lab.host(4, handler, handler)
    lab.zone.add("h0.example.org", a=[address])
    for i in range(1, hops + 1):
        lab.zone.add(f"h{i}.example.org", a=[address])
    run = await judge(lab, "h0.example.org")
    result = run.result
    assert result.success, result.problem
    assert result.redirects == hops
    assert [r.hostname for r in result.records] == [f"h{i}.example.org" for i in range(hops + 1)]
    assert [r.url.split(":")[0] for r in result.records[1:]] == [
        "https" if i % 2 else "http" for i in range(1, hops + 1)
    ]
    run.ended_early()


# ------------------------------------------------------------------- fleet of slow


def test_ten_thousand_domains_on_one_slow_server(tmp_path: Any) -> None:
    """The lab runs in its own process, as the servers would be elsewhere in real life."""
    import signal
    import subprocess
    import sys

    from exporter.config import parse
    from tests.conftest import ROOT, subprocess_env
    from tests.integration.procs import wait_for

    count = 10_000
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.slow_fleet",
            "--domains",
            str(count),
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for((tmp_path / "ready").exists, 60, "the slow fleet did not start")
        import yaml

        document = yaml.safe_load((tmp_path / "lab.yml").read_text())
        document["timeouts"] = {"dial": "1s", "validation": "2s"}
        document["resolver"]["timeout"] = "30s"  # far longer than the deadline: it must cut them
        document["caa"] = {"enabled": False}  # this case is about the fetch's deadline
        config = parse(document)
        results, healthy_latency, elapsed, growth, lag = asyncio.run(_fleet(config, count))
    finally:
        lab.send_signal(signal.SIGTERM)
        lab.wait(30)
    print(
        f"\n10,000 slow domains: {elapsed:.1f} s, healthy latency {healthy_latency:.2f} s, "
        f"RSS growth {growth:.0f} MiB"
    )
    # Mostly "Timeout after connect"; a few connects or lookups time out too when 2,000
    # arrive at once at one server and one resolver (a full accept queue drops SYNs, and
    # the retry comes after the 1 s dial timeout), as they would for real.
    reasons = [reason(r) for r in results]
    assert set(reasons) <= {
        (ProblemType.CONNECTION, Reason.READ_TIMEOUT),
        (ProblemType.CONNECTION, Reason.VALIDATION_TIMEOUT),
        (ProblemType.CONNECTION, Reason.CONNECT_TIMEOUT),
        (ProblemType.DNS, Reason.DNS_TIMEOUT),
    }
    assert reasons.count((ProblemType.CONNECTION, Reason.READ_TIMEOUT)) > 0
    print("outcomes:", {str(r[1]): reasons.count(r) for r in set(reasons) if r})
    # The deadline holds: no validation outlasts it by more than the slack plus twice the
    # event loop's own worst lateness meanwhile (a timer cannot fire on a loop busy
    # elsewhere, and the verdict takes further turns of that loop after it; on a 2-core
    # machine shared with other work that lateness reached 2 s). A deadline not applied (to
    # the lookups, say: their own timeout is 30 s) fails this at any lag seen.
    longest = max(r.duration_seconds for r in results)
    print(f"longest validation {longest:.2f} s, event loop lateness {lag:.2f} s")
    assert longest < 2.0 + SLACK + 2 * lag
    # How long the fleet takes and how fast the healthy domain answers measure the machine
    # (printed above; bench.run measures healthy latency beside slow domains, in one
    # sitting, against a run without them); that the healthy domain passes at all while
    # the fleet runs is the behaviour, checked in _fleet.
    assert growth < 400


async def _fleet(
    config: Any, count: int
) -> tuple[list[ValidationResult], float, float, float, float]:
    """(results, healthy latency, elapsed, RSS growth, the loop's worst lateness)."""
    v = build_validator(config)
    semaphore = asyncio.Semaphore(1000)
    before = max_rss_mib()
    async with loop_lateness(0.05) as lateness:

        async def one(name: str) -> ValidationResult:
            async with semaphore:
                return await v.validate(name, token=TOKEN, key_authorization=KA)

        started = time.monotonic()
        fleet = asyncio.gather(*(one(f"slow{i}.example.com") for i in range(count)))
        await asyncio.sleep(3.0)  # the fleet is in full swing
        # A healthy domain, validated with the production deadline while one core is busy
        # starting 10,000 validations: it must still pass, not be starved.
        patient = Validator(
            dataclasses.replace(build_settings(config), validation_timeout=20.0),
            build_resolver(config),
            Dialer(build_router(config)),
        )
        probe_started = time.monotonic()
        good = await patient.validate("healthy.example.net", token=TOKEN, key_authorization=KA)
        healthy_latency = time.monotonic() - probe_started
        assert good.success, good.problem
        results = await fleet
        elapsed = time.monotonic() - started
        return results, healthy_latency, elapsed, max_rss_mib() - before, lateness()
