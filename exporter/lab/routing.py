"""The lab's router: documentation-prefix addresses sent to loopback endpoints.

Rule: test infrastructure only, imported by the lab, the tests, the benchmarks and
(for a config file written by ``acme-http01-exporter lab``) ``exporter.compose``.
The host has a single IPv6 loopback address, so each lab host gets an address
from ``2001:db8::/32`` or ``192.0.2.0/24`` that the lab's DNS returns, and this
router sends that address's port 80 and 443 to its own endpoint on ``[::1]`` or
``127.0.0.1``. It implements ``exporter.dial.Router``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["AddressMap"]


@dataclass(frozen=True, slots=True)
class AddressMap:
    #: Address -> {logical port -> (host, port)}. A mapped address without an entry for
    #: a port refuses connections on that port.
    endpoints: Mapping[str, Mapping[int, tuple[str, int]]] = field(default_factory=dict)
    #: Logical port (80, 443) -> the port to dial instead, for unmapped addresses.
    ports: Mapping[int, int] = field(default_factory=dict)

    @property
    def addresses(self) -> frozenset[str]:
        """The mapped addresses (accepted as targets although they are reserved)."""
        return frozenset(self.endpoints)

    def route(self, address: str, port: int) -> tuple[str, int] | None:
        mapped = self.endpoints.get(address)
        if mapped is not None:
            return mapped.get(port)
        return address, self.ports.get(port, port)
