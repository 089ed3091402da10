"""The DNS seam against the lab's real authoritative server (UDP and TCP)."""

from __future__ import annotations

import time

from exporter.dns import DnspythonResolver
from exporter.lab import servers as L
from exporter.policy import DnsAnswer, DnsFailure, DnsFailureKind
from exporter.records import Family


def resolver(lab: L.Lab, timeout: float = 1.0) -> DnspythonResolver:
    return DnspythonResolver([lab.dns.host], lab.dns.port, timeout=timeout)


async def test_answers_in_order(lab: L.Lab) -> None:
    lab.zone.add("x.example.com", a=["192.0.2.2", "192.0.2.1"], aaaa=["2001:db8::9"])
    r = resolver(lab)
    assert await r.lookup("x.example.com", Family.IPV4) == DnsAnswer(
        Family.IPV4, ("192.0.2.2", "192.0.2.1")
    )
    assert await r.lookup("x.example.com", Family.IPV6) == DnsAnswer(Family.IPV6, ("2001:db8::9",))


async def test_nodata_is_an_empty_answer(lab: L.Lab) -> None:
    lab.zone.add("v4.example.com", a=["192.0.2.1"])
    assert await resolver(lab).lookup("v4.example.com", Family.IPV6) == DnsAnswer(Family.IPV6)


async def test_nxdomain(lab: L.Lab) -> None:
    assert await resolver(lab).lookup("nope.example.com", Family.IPV4) == DnsAnswer(
        Family.IPV4, failure=DnsFailure(DnsFailureKind.RCODE, "NXDOMAIN")
    )


async def test_servfail(lab: L.Lab) -> None:
    lab.zone.add("sf.example.com", a=["192.0.2.1"], servfail={"A"})
    assert await resolver(lab).lookup("sf.example.com", Family.IPV4) == DnsAnswer(
        Family.IPV4, failure=DnsFailure(DnsFailureKind.RCODE, "SERVFAIL")
    )


async def test_no_answer_times_out(lab: L.Lab) -> None:
    lab.zone.add("drop.example.com", a=["192.0.2.1"], drop={"A"})
    started = time.monotonic()
    answer = await resolver(lab, timeout=1.0).lookup("drop.example.com", Family.IPV4)
    assert answer == DnsAnswer(Family.IPV4, failure=DnsFailure(DnsFailureKind.TIMEOUT))
    assert 0.9 <= time.monotonic() - started < 3.5  # the timeout, once


async def test_cname_chain_is_followed(lab: L.Lab) -> None:
    lab.zone.add("a.example.com", cname="b.example.net")
    lab.zone.add("b.example.net", cname="c.example.org")
    lab.zone.add("c.example.org", a=["192.0.2.7"])
    assert await resolver(lab).lookup("a.example.com", Family.IPV4) == DnsAnswer(
        Family.IPV4, ("192.0.2.7",)
    )


async def test_resolver_gone_is_a_timeout_or_network_error(lab: L.Lab) -> None:
    port = lab.dns.port
    await lab.dns.stop()
    answer = await DnspythonResolver(["127.0.0.1"], port, timeout=0.5).lookup(
        "x.example.com", Family.IPV4
    )
    assert answer.failure is not None
    assert answer.failure.kind in (DnsFailureKind.TIMEOUT, DnsFailureKind.NETWORK)
