"""The certificate seam: the leaf certificate a domain serves on 443, read as a browser would.

Rule: this is the only module that reads certificates. It resolves the domain
through the ``Resolver`` seam, takes the first AAAA and then the first A address
(reserved addresses refused, as for a validation), dials each through the
``Dialer`` seam and does a TLS handshake with the domain as SNI until one
succeeds. The chain is verified against the trust store (hostname included) but
never required: an invalid chain is reported, and the leaf is read anyway. The
answer is one :class:`~exporter.records.CertificateCheck`: the certificate, or
why there is none. A reading the exporter could not make for want of its own
resources (``exporter.resources``) is neither: it raises
:class:`~exporter.resources.ExporterResourceError` (from the seams below, or from a
handshake that failed with ``EMFILE``, ``ENOBUFS``, ...).

When a certificate should be renewed is a standard ACME client's rule, not Let's
Encrypt's: when a fraction of its lifetime is left (one third, the common
default), :func:`renewal_due`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time

from cryptography import x509

from exporter import names, policy
from exporter.dial import Dialer, DialFailure
from exporter.dns import Resolver
from exporter.policy import AddressPolicy, Resolution
from exporter.records import Certificate, CertificateCheck, Family, Problem
from exporter.resources import check_own

__all__ = ["CertificateReader", "renewal_due"]

_HTTPS_PORT = 443
#: Why a name Let's Encrypt will not issue for has no certificate reading.
NOT_READ = "not read: Let's Encrypt will not issue for this name"


def renewal_due(not_before: float, not_after: float, remaining: float) -> float:
    """When a client that renews with ``remaining`` of the lifetime left renews."""
    return not_after - (not_after - not_before) * remaining


class _NoHandshake(Exception):
    """No TLS session with this address (a dial or handshake failure)."""


class CertificateReader:
    """Reads domains' certificates; one instance serves many readings."""

    def __init__(
        self,
        resolver: Resolver,
        dialer: Dialer,
        addresses: AddressPolicy,
        *,
        dial_timeout: float,
        tls_timeout: float,
        renewal_remaining: float,
        ca_file: str | None = None,
    ) -> None:
        self.resolver = resolver
        self.dialer = dialer
        self.addresses = addresses
        self.dial_timeout = dial_timeout
        self.tls_timeout = tls_timeout
        self.renewal_remaining = renewal_remaining
        self._verify = ssl.create_default_context(cafile=ca_file)
        self._verify.minimum_version = ssl.TLSVersion.TLSv1_2
        self._any = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._any.check_hostname = False
        self._any.verify_mode = ssl.CERT_NONE

    async def read(self, domain: str) -> CertificateCheck:
        """The certificate ``domain`` serves on 443, or why none could be read. A name
        Let's Encrypt will not issue for (``exporter.names.refusal``) is not read: no
        lookup, no connection."""
        if names.refusal(domain) is not None:
            return CertificateCheck(domain, None, NOT_READ, time.time())
        a, aaaa = await asyncio.gather(
            self.resolver.lookup(domain, Family.IPV4), self.resolver.lookup(domain, Family.IPV6)
        )
        resolved = policy.resolve_verdict(domain, a, aaaa, self.addresses)
        if isinstance(resolved, Problem):
            return CertificateCheck(domain, None, resolved.detail, time.time())
        return await self._read(domain, resolved)

    async def _read(self, domain: str, resolved: Resolution) -> CertificateCheck:
        errors: list[str] = []
        for address in resolved.candidates:
            try:
                der, chain_error = await self._handshakes(domain, address)
            except _NoHandshake as exc:
                errors.append(f"{address}: {exc}")
                continue
            try:
                certificate = self._certificate(address, der, chain_error)
            except ValueError as exc:
                errors.append(f"{address}: unreadable certificate: {exc}")
                continue
            return CertificateCheck(domain, certificate, None, time.time())
        return CertificateCheck(domain, None, "; ".join(errors), time.time())

    async def _handshakes(self, domain: str, address: str) -> tuple[bytes, str | None]:
        """The leaf (DER) and the chain's verification error (``None``: it verifies)."""
        try:
            return await self._handshake(domain, address, self._verify), None
        except ssl.SSLCertVerificationError as exc:
            chain_error = exc.verify_message or str(exc)
        return await self._handshake(domain, address, self._any), chain_error

    async def _handshake(self, domain: str, address: str, context: ssl.SSLContext) -> bytes:
        try:
            sock = await self.dialer.dial(address, _HTTPS_PORT, self.dial_timeout)
        except DialFailure as exc:
            raise _NoHandshake(policy.transport_message(exc.reason)) from None
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.tls_timeout):
                _, writer = await asyncio.open_connection(
                    sock=sock,
                    ssl=context,
                    server_hostname=domain,
                    ssl_handshake_timeout=self.tls_timeout,
                )
            ssl_object = writer.get_extra_info("ssl_object")
            der = None if ssl_object is None else ssl_object.getpeercert(binary_form=True)
            if not der:
                raise _NoHandshake("no certificate in the TLS handshake")
            return bytes(der)
        except ssl.SSLCertVerificationError:
            raise
        except TimeoutError:
            raise _NoHandshake("TLS handshake timed out") from None
        except (OSError, ssl.SSLError, EOFError) as exc:
            check_own(exc)
            raise _NoHandshake(f"TLS handshake failed: {exc}") from None
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            else:
                sock.close()

    def _certificate(self, address: str, der: bytes, chain_error: str | None) -> Certificate:
        leaf = x509.load_der_x509_certificate(der)
        not_before = leaf.not_valid_before_utc.timestamp()
        not_after = leaf.not_valid_after_utc.timestamp()
        return Certificate(
            address=address,
            not_before=not_before,
            not_after=not_after,
            issuer=leaf.issuer.rfc4514_string(),
            subject=leaf.subject.rfc4514_string(),
            chain_valid=chain_error is None,
            chain_error=chain_error,
            renewal_due=renewal_due(not_before, not_after, self.renewal_remaining),
        )
