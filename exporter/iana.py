"""IANA special-purpose address registries, as Let's Encrypt filters them.

Rule: pure data and one lookup function; no I/O. Every block listed in the IPv4
and IPv6 special-purpose address registries counts as reserved, whatever its
"globally reachable" column says, and nothing else (Boulder ``iana/ip.go``
``IsReservedAddr``). The most specific block wins, so ``0.0.0.0`` is
"This host on this network", not "This network". The RFC and name columns are
kept verbatim because they appear in Let's Encrypt's error text:
``IP address is in a reserved address block: [RFC1918]: Private-Use``.

Multicast (``224.0.0.0/4``, ``ff00::/8``) is in neither registry and is not
reserved: Boulder dropped its hard-coded multicast rows in commit 12d5d1ce
(PR #8456, 2025-10). A multicast address is kept and dialled, and the kernel
refuses a TCP connect to it (ENETUNREACH): ``Network unreachable``.
"""

from __future__ import annotations

import ipaddress
from functools import cache

__all__ = ["reserved_block"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# (block, RFC column, name column), in registry order.
_REGISTRY: tuple[tuple[str, str, str], ...] = (
    # https://www.iana.org/assignments/iana-ipv4-special-registry/
    ("0.0.0.0/8", "[RFC791], Section 3.2", '"This network"'),
    ("0.0.0.0/32", "[RFC1122], Section 3.2.1.3", '"This host on this network"'),
    ("10.0.0.0/8", "[RFC1918]", "Private-Use"),
    ("100.64.0.0/10", "[RFC6598]", "Shared Address Space"),
    ("127.0.0.0/8", "[RFC1122], Section 3.2.1.3", "Loopback"),
    ("169.254.0.0/16", "[RFC3927]", "Link Local"),
    ("172.16.0.0/12", "[RFC1918]", "Private-Use"),
    ("192.0.0.0/24", "[RFC6890], Section 2.1", "IETF Protocol Assignments"),
    ("192.0.0.0/29", "[RFC7335]", "IPv4 Service Continuity Prefix"),
    ("192.0.0.8/32", "[RFC7600]", "IPv4 dummy address"),
    ("192.0.0.9/32", "[RFC7723]", "Port Control Protocol Anycast"),
    ("192.0.0.10/32", "[RFC8155]", "Traversal Using Relays around NAT Anycast"),
    ("192.0.0.170/32", "[RFC8880][RFC7050], Section 2.2", "NAT64/DNS64 Discovery"),
    ("192.0.0.171/32", "[RFC8880][RFC7050], Section 2.2", "NAT64/DNS64 Discovery"),
    ("192.0.2.0/24", "[RFC5737]", "Documentation (TEST-NET-1)"),
    ("192.31.196.0/24", "[RFC7535]", "AS112-v4"),
    ("192.52.193.0/24", "[RFC7450]", "AMT"),
    ("192.88.99.0/24", "[RFC7526]", "Deprecated (6to4 Relay Anycast)"),
    ("192.168.0.0/16", "[RFC1918]", "Private-Use"),
    ("192.175.48.0/24", "[RFC7534]", "Direct Delegation AS112 Service"),
    ("198.18.0.0/15", "[RFC2544]", "Benchmarking"),
    ("198.51.100.0/24", "[RFC5737]", "Documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "[RFC5737]", "Documentation (TEST-NET-3)"),
    ("240.0.0.0/4", "[RFC1112], Section 4", "Reserved"),
    ("255.255.255.255/32", "[RFC8190] [RFC919], Section 7", "Limited Broadcast"),
    # https://www.iana.org/assignments/iana-ipv6-special-registry/
    ("::1/128", "[RFC4291]", "Loopback Address"),
    ("::/128", "[RFC4291]", "Unspecified Address"),
    ("::ffff:0:0/96", "[RFC4291]", "IPv4-mapped Address"),
    ("64:ff9b::/96", "[RFC6052]", "IPv4-IPv6 Translat."),
    ("64:ff9b:1::/48", "[RFC8215]", "IPv4-IPv6 Translat."),
    ("100::/64", "[RFC6666]", "Discard-Only Address Block"),
    ("100:0:0:1::/64", "[RFC9780]", "Dummy IPv6 Prefix"),
    ("2001::/23", "[RFC2928]", "IETF Protocol Assignments"),
    ("2001::/32", "[RFC4380] [RFC8190]", "TEREDO"),
    ("2001:1::1/128", "[RFC7723]", "Port Control Protocol Anycast"),
    ("2001:1::2/128", "[RFC8155]", "Traversal Using Relays around NAT Anycast"),
    ("2001:1::3/128", "[RFC-ietf-dnssd-srp-25]", "DNS-SD Service Registration Protocol Anycast"),
    ("2001:2::/48", "[RFC5180][RFC Errata 1752]", "Benchmarking"),
    ("2001:3::/32", "[RFC7450]", "AMT"),
    ("2001:4:112::/48", "[RFC7535]", "AS112-v6"),
    ("2001:10::/28", "[RFC4843]", "Deprecated (previously ORCHID)"),
    ("2001:20::/28", "[RFC7343]", "ORCHIDv2"),
    ("2001:30::/28", "[RFC9374]", "Drone Remote ID Protocol Entity Tags (DETs) Prefix"),
    ("2001:db8::/32", "[RFC3849]", "Documentation"),
    ("2002::/16", "[RFC3056]", "6to4"),
    ("2620:4f:8000::/48", "[RFC7534]", "Direct Delegation AS112 Service"),
    ("3fff::/20", "[RFC9637]", "Documentation"),
    ("5f00::/16", "[RFC9602]", "Segment Routing (SRv6) SIDs"),
    ("fc00::/7", "[RFC4193] [RFC8190]", "Unique-Local"),
    ("fe80::/10", "[RFC4291]", "Link-Local Unicast"),
)

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def _blocks() -> tuple[tuple[_Network, str, str], ...]:
    parsed = [(ipaddress.ip_network(b), rfc, name) for b, rfc, name in _REGISTRY]
    # Most specific first; ``sorted`` is stable, so registry order breaks ties.
    return tuple(sorted(parsed, key=lambda item: -item[0].prefixlen))


def reserved_block(address: IPAddress) -> str | None:
    """``"<RFC>: <name>"`` of the most specific reserved block holding ``address``."""
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    for network, rfc, name in _blocks():
        if network.version == address.version and address in network:
            return f"{rfc}: {name}"
    return None
