"""The certificate a domain serves on 443, read as a browser would, against the lab."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from exporter.certs import CertificateReader, renewal_due
from exporter.dial import Dialer
from exporter.dns import DnspythonResolver
from exporter.lab import servers as L
from exporter.lab.tls import lab_certificate, lab_ssl_context
from exporter.policy import AddressPolicy

DAY = 86400.0


def reader(
    lab: L.Lab, *, ca_file: str | None = None, remaining: float = 1 / 3
) -> CertificateReader:
    return CertificateReader(
        DnspythonResolver([lab.dns.host], lab.dns.port, timeout=1.0),
        Dialer(lab.routes),
        AddressPolicy(lab_addresses=frozenset(lab.routes.endpoints)),
        dial_timeout=0.5,
        tls_timeout=2.0,
        renewal_remaining=remaining,
        ca_file=ca_file,
    )


def test_renewal_due_is_when_a_third_of_the_lifetime_is_left() -> None:
    assert renewal_due(0.0, 90 * DAY, 1 / 3) == pytest.approx(60 * DAY)
    assert renewal_due(1000.0, 1000.0 + 45 * DAY, 1 / 3) == pytest.approx(1000.0 + 30 * DAY)
    assert renewal_due(0.0, 100.0, 0.5) == 50.0


async def test_reads_the_leaf_and_its_dates(lab: L.Lab) -> None:
    tls = lab_ssl_context(validity=(-58 * DAY, 32 * DAY))
    v4 = await lab.host(4, L.serve(), L.serve(), tls=tls)
    lab.zone.add("dates.example.com", a=[v4])
    before = time.time()
    check = await reader(lab).read("dates.example.com")
    assert check.error is None and check.certificate is not None
    cert = check.certificate
    assert cert.address == v4
    assert cert.not_before == pytest.approx(before - 58 * DAY, abs=120)
    assert cert.not_after == pytest.approx(before + 32 * DAY, abs=120)
    assert cert.renewal_due == pytest.approx(cert.not_after - 30 * DAY, abs=1)
    assert cert.issuer == cert.subject == "CN=acme-http01-exporter lab"
    # Self-signed: reported, never required.
    assert cert.chain_valid is False
    assert cert.chain_error == "self-signed certificate"


async def test_a_trusted_chain_verifies(lab: L.Lab, tmp_path: Path) -> None:
    v4 = await lab.host(4, L.serve(), L.serve())
    lab.zone.add("trusted.example.com", a=[v4])
    ca = tmp_path / "ca.pem"
    ca.write_bytes(lab_certificate()[0])
    check = await reader(lab, ca_file=str(ca)).read("trusted.example.com")
    assert check.certificate is not None
    assert (check.certificate.chain_valid, check.certificate.chain_error) == (True, None)
    # The same trust, another name than the certificate's: the hostname check fails.
    lab.zone.add("other.example.net", a=[v4])
    check = await reader(lab, ca_file=str(ca)).read("other.example.net")
    assert check.certificate is not None and check.certificate.chain_valid is False
    assert "Hostname mismatch" in (check.certificate.chain_error or "")


async def test_the_first_aaaa_first_then_the_first_a(lab: L.Lab) -> None:
    v6 = await lab.host(6, L.serve(), L.serve(), tls=lab_ssl_context(validity=(-2 * DAY, 10 * DAY)))
    v4 = await lab.host(4, L.serve(), L.serve(), tls=lab_ssl_context(validity=(-3 * DAY, 20 * DAY)))
    lab.zone.add("both.example.com", a=[v4], aaaa=[v6])
    check = await reader(lab).read("both.example.com")
    assert check.certificate is not None and check.certificate.address == v6
    # IPv6 refuses on 443: a browser moves on to IPv4.
    dead6 = await lab.host(6, L.serve(), "refused")
    lab.zone.add("v6-dead.example.com", a=[v4], aaaa=[dead6])
    check = await reader(lab).read("v6-dead.example.com")
    assert check.certificate is not None and check.certificate.address == v4


async def test_plain_http_only_has_no_certificate(lab: L.Lab) -> None:
    v4 = await lab.host(4, L.serve(), "refused")
    lab.zone.add("plain.example.com", a=[v4])
    check = await reader(lab).read("plain.example.com")
    assert check.certificate is None
    assert check.error == f"{v4}: Connection refused"


async def test_plain_http_on_443_is_no_certificate(lab: L.Lab) -> None:
    v4 = await lab.host(4, L.serve(), L.plain(L.serve()))
    lab.zone.add("plain443.example.com", a=[v4])
    check = await reader(lab).read("plain443.example.com")
    assert check.certificate is None
    assert check.error is not None and check.error.startswith(f"{v4}: TLS handshake failed: ")


async def test_a_name_without_addresses_has_no_certificate(lab: L.Lab) -> None:
    check = await reader(lab).read("missing.example.com")
    assert check.certificate is None
    assert check.error is not None and check.error.startswith("DNS problem: NXDOMAIN looking up A")


async def test_reserved_addresses_are_never_contacted(lab: L.Lab) -> None:
    lab.zone.add("private.example.com", a=["10.0.0.1"])
    check = await reader(lab).read("private.example.com")
    assert (check.certificate, check.error) == (
        None,
        "no valid A records found for private.example.com; "
        "no valid AAAA records found for private.example.com",
    )
