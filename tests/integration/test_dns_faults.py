"""DNS faults against the lab's real DNS server: verdicts as Let's Encrypt gives them, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator

from exporter.lab import servers as L
from exporter.records import ProblemType, Reason, ValidationResult
from tests.integration import lab_validation
from tests.integration.lab_validation import problem


async def validate(
    lab: L.Lab, name: str, resolver_timeout: float = 5.0
) -> tuple[ValidationResult, float]:
    """A validation and its wall time. The resolver's timeout is long unless a test is
    about it: an answer that comes "at once" is told from one that waited by seconds,
    not by a margin a busy machine eats."""
    started = time.monotonic()
    result = await lab_validation.validate(
        lab, name, dial=1.0, budget=15.0, resolver_timeout=resolver_timeout
    )
    return result, time.monotonic() - started


@contextlib.asynccontextmanager
async def hold(host: str, port: int) -> AsyncIterator[None]:
    """``port`` bound for UDP and TCP, neither served, until the block ends (the stopped
    server's sockets close on the loop's next turns: the bind waits for them)."""
    with contextlib.ExitStack() as stack:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            sock = stack.enter_context(socket.socket(socket.AF_INET, kind))
            for _ in range(200):
                try:
                    sock.bind((host, port))
                    break
                except OSError:
                    await asyncio.sleep(0.01)
            else:
                raise OSError(f"{host}:{port} was not let go by the stopped server")
        yield


async def test_refused(lab: L.Lab) -> None:
    lab.zone.add("refused.example.com", rcode={"A": "REFUSED", "AAAA": "REFUSED"})
    result, elapsed = await validate(lab, "refused.example.com")
    assert problem(result) == (
        ProblemType.DNS,
        Reason.DNS_ERROR,
        "DNS problem: REFUSED looking up A for refused.example.com; "
        "DNS problem: REFUSED looking up AAAA for refused.example.com",
    )
    assert elapsed < 2.5  # no wait for the 5 s resolver timeout


async def test_timeouts_are_bounded_by_the_resolver_timeout(lab: L.Lab) -> None:
    lab.zone.add("silent.example.com", a=["192.0.2.1"], drop={"A", "AAAA"})
    result, elapsed = await validate(lab, "silent.example.com", resolver_timeout=2.0)
    assert problem(result) == (
        ProblemType.DNS,
        Reason.DNS_TIMEOUT,
        "DNS problem: query timed out looking up A for silent.example.com; "
        "DNS problem: query timed out looking up AAAA for silent.example.com",
    )
    assert 1.9 <= elapsed < 3.5  # A and AAAA are asked in parallel: one wait of 2 s, not two


async def test_aaaa_timeout_alone_is_ignored(lab: L.Lab) -> None:
    address = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("halfsilent.example.com", a=[address], drop={"AAAA"})
    result, _ = await validate(lab, "halfsilent.example.com", resolver_timeout=1.0)
    assert result.success and result.records[0].address_used == address


async def test_truncated_udp_answer_is_retried_over_tcp(lab: L.Lab) -> None:
    address = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("tc.example.com", a=[address], truncate=True)
    result, _ = await validate(lab, "tc.example.com")
    assert result.success, result.problem
    assert lab.dns.tcp_queries >= 1


async def test_huge_answer_goes_over_tcp_and_the_first_address_is_used(lab: L.Lab) -> None:
    address = await lab.host(4, L.serve(), L.serve())
    others = [f"198.51.100.{i}" for i in range(1, 250)] + [f"203.0.113.{i}" for i in range(1, 250)]
    lab.zone.add("big.example.com", a=[address, *others])
    result, _ = await validate(lab, "big.example.com")
    assert result.success, result.problem
    assert result.records[0].address_used == address
    assert lab.dns.tcp_queries >= 1


async def test_cname_loop_fails_as_dns_and_quickly(lab: L.Lab) -> None:
    lab.zone.add("loop-a.example.com", cname="loop-b.example.com")
    lab.zone.add("loop-b.example.com", cname="loop-a.example.com")
    result, elapsed = await validate(lab, "loop-a.example.com")
    assert result.problem is not None and result.problem.type is ProblemType.DNS
    assert result.records == ()
    assert elapsed < 2.5  # no wait for the 5 s resolver timeout


async def test_long_cname_chain(lab: L.Lab) -> None:
    address = await lab.host(4, L.serve(), L.serve())
    for i in range(8):
        lab.zone.add(f"c{i}.example.com", cname=f"c{i + 1}.example.com")
    lab.zone.add("c8.example.com", a=[address])
    result, _ = await validate(lab, "c0.example.com")
    assert result.success, result.problem
    for i in range(40):
        lab.zone.add(f"d{i}.example.com", cname=f"d{i + 1}.example.com")
    lab.zone.add("d40.example.com", a=[address])
    result, elapsed = await validate(lab, "d0.example.com")
    # The lab server follows 16 links, as recursive resolvers bound chains too.
    assert result.problem is not None and result.problem.type is ProblemType.DNS
    assert elapsed < 2.5  # no wait for the 5 s resolver timeout


async def test_records_for_other_names_are_taken_like_lets_encrypt(lab: L.Lab) -> None:
    # Let's Encrypt takes every A record of the answer section, whatever its owner name.
    address = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("odd.example.com", extra=[("elsewhere.example.net", "A", address)])
    result, _ = await validate(lab, "odd.example.com")
    assert result.success, result.problem
    assert result.records[0].address_used == address


async def test_resolver_goes_away_and_comes_back(lab: L.Lab) -> None:
    address = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("flaky.example.com", a=[address])
    port = lab.dns.port
    await lab.dns.stop()
    # The port stays ours while the server is away (a UDP socket that never reads, a TCP
    # socket that does not listen): an ephemeral port let go could be taken meanwhile.
    async with hold(lab.dns.host, port):
        result, elapsed = await validate(lab, "flaky.example.com", resolver_timeout=1.0)
    assert result.problem is not None and result.problem.type is ProblemType.DNS
    assert result.problem.reason in (Reason.DNS_TIMEOUT, Reason.DNS_ERROR)
    assert elapsed < 4.0  # the resolver's 1 s timeout bounds it, not the 15 s budget
    await lab.dns.start(port)
    result, _ = await validate(lab, "flaky.example.com")
    assert result.success, result.problem
