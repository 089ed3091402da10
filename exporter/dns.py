"""The DNS seam: A and AAAA lookups, as Let's Encrypt's resolver client sees them.

Rule: this is the only module that talks DNS. It answers one family at a time
with the addresses in answer order, or a classified failure; what the answers
mean (fatal or not, which address is dialled) is ``exporter.policy``'s business.

Like Let's Encrypt (``bdns``), every A or AAAA record in the answer section is
taken, whatever its owner name; CNAMEs are followed by the resolver queried.
With ``nameservers`` configured the system resolver configuration
(``/etc/resolv.conf``) is never read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.message
import dns.nameserver
import dns.rcode
import dns.rdatatype
import dns.resolver

from exporter.policy import DnsAnswer, DnsFailure, DnsFailureKind
from exporter.records import Family

__all__ = ["DnspythonResolver", "Resolver"]

_RDTYPE = {Family.IPV4: dns.rdatatype.A, Family.IPV6: dns.rdatatype.AAAA}


class Resolver(Protocol):
    async def lookup(self, host: str, family: Family) -> DnsAnswer: ...


class DnspythonResolver:
    """dnspython's async stub resolver, without a cache (Let's Encrypt sees fresh data)."""

    def __init__(self, nameservers: Sequence[str] | None, port: int, timeout: float) -> None:
        if nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(ns, port=port) for ns in nameservers
            ]
        else:
            resolver = dns.asyncresolver.Resolver(configure=True)
        resolver.cache = None
        resolver.lifetime = timeout
        resolver.timeout = min(timeout, 2.0)
        # Let's Encrypt's resolver sets EDNS0 with a 4096-byte buffer.
        resolver.use_edns(0, 0, 4096)
        self._resolver = resolver

    async def lookup(self, host: str, family: Family) -> DnsAnswer:
        rdtype = _RDTYPE[family]
        try:
            answer = await self._resolver.resolve(
                host, rdtype, search=False, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            return DnsAnswer(family, failure=DnsFailure(DnsFailureKind.RCODE, "NXDOMAIN"))
        except dns.resolver.NoNameservers as exc:
            return DnsAnswer(family, failure=_no_nameservers(exc))
        except dns.exception.Timeout:
            return DnsAnswer(family, failure=DnsFailure(DnsFailureKind.TIMEOUT))
        except (OSError, EOFError):
            return DnsAnswer(family, failure=DnsFailure(DnsFailureKind.NETWORK))
        except (dns.exception.DNSException, ValueError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            return DnsAnswer(family, failure=DnsFailure(DnsFailureKind.SERVER))
        if answer.response is None:  # pragma: no cover - dnspython always sets it
            return DnsAnswer(family)
        addresses: list[str] = []
        for rrset in answer.response.answer:
            if rrset.rdtype == rdtype:
                addresses.extend(rdata.address for rdata in rrset)
        return DnsAnswer(family, tuple(addresses))


def _no_nameservers(exc: dns.resolver.NoNameservers) -> DnsFailure:
    """Every server failed: report the rcode the (last) server answered with."""
    errors = exc.kwargs.get("errors") or []
    for error in reversed(errors):
        response = error[4] if len(error) > 4 else None
        if isinstance(response, dns.message.Message):
            return DnsFailure(DnsFailureKind.RCODE, dns.rcode.to_text(response.rcode()))
        if isinstance(response, str) and response.isupper():
            return DnsFailure(DnsFailureKind.RCODE, response)
    return DnsFailure(DnsFailureKind.SERVER)
