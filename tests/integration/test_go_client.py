"""Go's client as Let's Encrypt runs it, end to end through the lab: the ClientHello's
groups and signature algorithms (the remainder of erratum 15) and a reset while the body
is read. (An alert that arrives encrypted after a TLS 1.3 handshake, a client certificate
required, is ``test_errata``'s ``test_certificate_required_arrives_after_a_tls13_handshake``.)

Each verdict is the one a Go 1.26 client gives Boulder for the same server; each case
fails with the local OpenSSL's defaults (it offers X448 and Ed448, which Go does not).
"""

from __future__ import annotations

import asyncio
import ssl

from exporter.lab import servers as L
from exporter.lab.tls import lab_ssl_context
from exporter.records import Outcome, ProblemType, Reason
from tests.integration.lab_validation import KA, problem, records, site, url, validate
from tests.integration.test_errata import (
    https_hop,
    read_request,
    reset,
    tls_alert_problem,
    tls_site,
)


def x448_only() -> ssl.SSLContext:
    ctx = lab_ssl_context()
    ctx.set_ecdh_curve("X448")
    return ctx


async def test_a_server_with_only_x448_fails_the_handshake(lab: L.Lab) -> None:
    v4 = await https_hop(lab, "x448.example.com", L.raw(tls_site(x448_only())))
    result = await validate(lab, "x448.example.com")
    assert problem(result) == tls_alert_problem(v4, "x448.example.com", "handshake failure")


async def test_a_server_with_only_an_ed448_certificate_fails_the_handshake(lab: L.Lab) -> None:
    v4 = await https_hop(lab, "ed448.example.com", L.raw(tls_site(lab_ssl_context("ed448"))))
    result = await validate(lab, "ed448.example.com")
    assert problem(result) == tls_alert_problem(v4, "ed448.example.com", "handshake failure")


async def test_a_p384_only_server_with_an_rsa_certificate_passes(lab: L.Lab) -> None:
    ctx = lab_ssl_context("rsa")
    ctx.set_ecdh_curve("secp384r1")  # P-384: Go offers it, after X25519 and P-256
    await https_hop(lab, "p384.example.com", L.raw(tls_site(ctx)))
    result = await validate(lab, "p384.example.com")
    assert result.success, result.problem


async def test_a_reset_mid_body_names_our_port_as_go_does(lab: L.Lab) -> None:
    ports: list[int] = []

    async def part_then_reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ports.append(writer.get_extra_info("peername")[1])  # the exporter's own port
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + KA.encode()[:10])
        await reset(writer)

    v4 = await site(lab, "reset.example.com", L.raw(part_then_reset))
    result = await validate(lab, "reset.example.com")
    assert len(ports) == 1
    # Go names the address it dialled (the lab routes it to loopback) and our end.
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.BODY_READ_ERROR,
        f"{v4}: Error reading HTTP response body: read tcp 127.0.0.1:{ports[0]}->{v4}:80: "
        "read: connection reset by peer",
    )
    assert records(result) == [
        (0, url("reset.example.com"), v4, Outcome.RESPONSE, None, Reason.BODY_READ_ERROR)
    ]
