"""``Family.of``: the one place that tells an IPv6 address from an IPv4 one."""

from __future__ import annotations

import pytest

from exporter.records import Family


@pytest.mark.parametrize(
    ("address", "family"),
    [
        ("192.0.2.1", Family.IPV4),
        ("127.0.0.1", Family.IPV4),
        ("0.0.0.0", Family.IPV4),
        ("2001:db8::1", Family.IPV6),
        ("::1", Family.IPV6),
        ("::", Family.IPV6),
        ("fe80::1%eth0", Family.IPV6),  # a scoped address, as a bound socket may report it
        ("::ffff:192.0.2.1", Family.IPV6),  # IPv4-mapped: dialled as IPv6
        ("ff02::1", Family.IPV6),  # multicast is an address like any other
    ],
)
def test_an_ip_literal_has_its_family(address: str, family: Family) -> None:
    assert Family.of(address) is family


@pytest.mark.parametrize(
    "text",
    ["", "example.com", "[::1]", "192.0.2.1:80", "[2001:db8::1]:443", "2001:db8::1/64", "1.2.3"],
)
def test_anything_but_an_ip_literal_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        Family.of(text)
