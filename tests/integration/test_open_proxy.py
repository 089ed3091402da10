"""Not an open proxy: reserved addresses are never contacted, whatever DNS or a redirect says."""

from __future__ import annotations

from exporter.lab import servers as L
from exporter.lab.routing import AddressMap
from exporter.policy import AddressPolicy
from exporter.records import ProblemType, Reason
from tests.integration.lab_validation import KA, TOKEN, validator


async def trap(lab: L.Lab) -> tuple[L.WebServer, dict[str, dict[int, tuple[str, int]]]]:
    """A server that counts requests, routed from private and metadata addresses."""
    server = L.WebServer(L.serve(), "127.0.0.1")
    await server.start()
    endpoint = {80: ("127.0.0.1", server.port), 443: ("127.0.0.1", server.port)}
    return server, {a: endpoint for a in ("10.0.0.1", "169.254.169.254", "192.168.1.1")}


async def test_dns_pointing_at_private_and_metadata_addresses_is_never_contacted(
    lab: L.Lab,
) -> None:
    server, routes = await trap(lab)
    try:
        lab.zone.add(
            "internal.example.com", a=["10.0.0.1", "169.254.169.254"], aaaa=["fe80::1", "::1"]
        )
        checker = validator(
            lab, dial=1.0, addresses=AddressPolicy(), routes=AddressMap(endpoints=routes)
        )
        result = await checker.validate("internal.example.com", token=TOKEN, key_authorization=KA)
    finally:
        await server.stop()
    assert result.problem is not None
    assert (result.problem.type, result.problem.reason, result.problem.detail) == (
        ProblemType.DNS,
        Reason.DNS_NO_ADDRESSES,
        "no valid A records found for internal.example.com; "
        "no valid AAAA records found for internal.example.com",
    )
    assert result.records == ()
    assert server.requests == 0


async def test_redirects_to_reserved_literals_are_never_followed(lab: L.Lab) -> None:
    server, routes = await trap(lab)
    try:
        public = await lab.host(
            4, L.redirect("http://169.254.169.254/latest/meta-data/"), L.serve()
        )
        lab.zone.add("redir.example.com", a=[public])
        routes = {**routes, **lab.routes.endpoints}
        checker = validator(
            lab,
            dial=1.0,
            addresses=AddressPolicy(lab_addresses=frozenset({public})),
            routes=AddressMap(endpoints=routes),
        )
        result = await checker.validate("redir.example.com", token=TOKEN, key_authorization=KA)
    finally:
        await server.stop()
    assert result.problem is not None
    assert result.problem.reason is Reason.REDIRECT_RESERVED_IP
    assert result.problem.detail == (
        f"{public}: Fetching http://169.254.169.254/latest/meta-data/: Invalid host in "
        "redirect target: IP address is in a reserved address block: [RFC3927]: Link Local"
    )
    assert server.requests == 0
