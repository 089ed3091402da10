"""The lab's Unbound sends no query from a port below the ephemeral range.

Below that range is where ``exporter.lab.ports`` picks the ports of child processes
(Unbound itself, Prometheus, etcd, the kube-apiserver); Unbound's random source ports
(by default anywhere above 1024 that IANA has not assigned) would otherwise take one
now and then between the pick and the child's bind.
"""

from __future__ import annotations

import dns.asyncquery
import dns.message
import dns.rcode

from exporter.lab.dnssec import Hierarchy
from exporter.lab.ports import ephemeral_range
from exporter.lab.unbound import Unbound
from tests.integration.test_unbound import (
    _unbound_installed,  # noqa: F401  (autouse: skip without unbound, fail under CI)
)


async def test_unbound_queries_from_no_port_below_the_ephemeral_range() -> None:
    low, _ = ephemeral_range()
    hierarchy = Hierarchy()
    hierarchy.zone("com.")
    # Unsigned: no NSEC for Unbound to synthesise the next NXDOMAIN from.
    hierarchy.zone("ports.com.", signed=False).a("www", "192.0.2.1")
    async with hierarchy, Unbound(hierarchy) as unbound:
        for n in range(40):  # a new name each: each one is a query to ports.com.'s server
            query = dns.message.make_query(f"n{n}.ports.com.", "A")
            host, port = unbound.address
            response = await dns.asyncquery.udp(query, host, port=port, timeout=5)
            assert response.rcode() == dns.rcode.NXDOMAIN
        ports = hierarchy.source_ports
    assert len(ports) >= 40
    below = sorted(port for port in ports if port < low)
    assert below == [], f"source ports below {low}: {below}"
