"""The fetch seam over a fake dial seam: what goes on the wire, and how a far end that
answers, closes, resets or hangs is classified, with no server.

``tests.fakes.FakeDialer`` hands the fetcher one end of a loopback connection and plays a
script on the other; these tests use only the fetcher's public interface
(``Fetcher.fetch(url, address, progress)``), so that they hold for any connection code
behind it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from exporter import policy
from exporter.dial import DialFailure
from exporter.fetch import BodyError, Failed, Fetcher, Progress, Response
from exporter.policy import Phase
from exporter.records import Reason
from tests.fakes import Dialled, FakeDialer, Peer
from tests.integration.lab_validation import KA, PATH, url

NAME = "www.example.com"
U = url(NAME)
V4, V6 = "192.0.2.4", "2001:db8::6"
DIAL_TIMEOUT = 0.75
OK = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(KA), KA.encode())


def fetcher(dialer: FakeDialer) -> Fetcher:
    return Fetcher(dialer, dial_timeout=DIAL_TIMEOUT, tls_timeout=1.0, user_agent=policy.USER_AGENT)


async def fetch(table: dict[tuple[str, int], Peer | DialFailure], address: str = V4) -> Any:
    """Fetch ``U`` via ``address``: (the response or the exception, the phase it ended
    in, the dials made)."""
    progress = Progress()
    async with FakeDialer(table) as dialer:
        try:
            outcome: Response | Exception = await fetcher(dialer).fetch(U, address, progress)
        except (Failed, BodyError) as exc:
            outcome = exc
    return outcome, progress.phase, dialer.dials


async def test_the_request_on_the_wire_is_gos() -> None:
    response, phase, dials = await fetch({(V4, 80): Peer(OK)})
    assert response == Response(200, None, KA.encode())
    assert phase is Phase.BODY
    assert [(d.address, d.port, d.timeout) for d in dials] == [(V4, 80, DIAL_TIMEOUT)]
    head = bytes(dials[0].received).decode()
    lines = head.split("\r\n")
    assert lines[0] == f"GET {PATH} HTTP/1.1"
    assert lines[1] == f"Host: {NAME}"  # Go writes Host first
    assert f"User-Agent: {policy.USER_AGENT}" in lines
    assert "Accept-Encoding: gzip" in lines
    assert head.endswith("\r\n\r\n")


async def test_an_ipv6_address_is_dialled_as_given() -> None:
    response, _, dials = await fetch({(V6, 80): Peer(OK)}, address=V6)
    assert isinstance(response, Response) and response.status == 200
    assert [(d.address, d.port) for d in dials] == [(V6, 80)]


async def test_a_redirect_is_returned_with_its_location_and_no_body() -> None:
    head = b"HTTP/1.1 301 Moved Permanently\r\nLocation: /next\r\nContent-Length: 3\r\n\r\nabc"
    response, _, _ = await fetch({(V4, 80): Peer(head)})
    assert response == Response(301, "/next", b"")


@pytest.mark.parametrize(
    "reason", [Reason.CONNECT_TIMEOUT, Reason.CONNECTION_REFUSED, Reason.NETWORK_UNREACHABLE]
)
async def test_a_dial_failure_keeps_its_reason_and_ends_in_the_dial_phase(reason: Reason) -> None:
    failed, phase, dials = await fetch({(V4, 80): DialFailure(reason, f"dial {V4}:80: x")})
    assert isinstance(failed, Failed)
    assert failed.reason is reason
    assert phase is Phase.DIAL  # a deadline now would be "Timeout after connect", no fallback
    assert [d.received for d in dials] == [bytearray()]


async def test_a_reset_before_any_byte_is_connection_reset() -> None:
    failed, _, _ = await fetch({(V4, 80): Peer(end="reset")})
    assert isinstance(failed, Failed) and failed.reason is Reason.CONNECTION_RESET


@pytest.mark.parametrize(
    "sent",
    [b"HTTP/1.1 200 OK\r\nContent-Len", b"HTTP/1.1 200 OK\r\n"],
    ids=["mid-header-line", "after-status-line"],
)
async def test_a_reset_after_part_of_the_head_is_a_broken_response(sent: bytes) -> None:
    # Erratum 13: once a byte of the response has arrived, Go reports no reset.
    failed, _, _ = await fetch({(V4, 80): Peer(sent, end="reset")})
    assert isinstance(failed, Failed) and failed.reason is Reason.PROTOCOL_ERROR


async def test_a_close_before_the_response_is_a_protocol_error() -> None:
    failed, _, _ = await fetch({(V4, 80): Peer(end="close")})
    assert isinstance(failed, Failed) and failed.reason is Reason.PROTOCOL_ERROR


async def test_a_body_cut_short_is_a_body_error() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"
    error, phase, _ = await fetch({(V4, 80): Peer(head, end="close")})
    assert isinstance(error, BodyError) and error.text == "unexpected EOF"
    assert phase is Phase.BODY


@pytest.mark.parametrize(
    ("sent", "phase"),
    [(b"", Phase.WAIT), (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", Phase.BODY)],
    ids=["no-head", "body-half-sent"],
)
async def test_a_peer_that_hangs_leaves_the_phase_for_the_deadline(
    sent: bytes, phase: Phase
) -> None:
    # Once the peer has the whole request and the fetch is in ``phase``, the fetch stays
    # there, running, until a deadline 0.1 s later cancels it. The deadline starts only
    # then: a stall of this process cannot end the fetch before it gets there.
    progress = Progress()
    async with FakeDialer({(V4, 80): Peer(sent, end="hang")}) as dialer:

        def there() -> bool:
            asked = bool(dialer.dials) and b"\r\n\r\n" in dialer.dials[0].received
            return asked and progress.phase is phase

        fetching = asyncio.create_task(fetcher(dialer).fetch(U, V4, progress))
        loop = asyncio.get_running_loop()
        cap = loop.time() + 5
        while not (there() or fetching.done()) and loop.time() < cap:
            await asyncio.sleep(0.005)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(fetching, 0.1)
    assert progress.phase is phase


async def test_a_dial_the_table_does_not_have_fails_the_test() -> None:
    dialer = FakeDialer({})
    with pytest.raises(AssertionError, match=r"no entry for 192\.0\.2\.4:80"):
        await dialer.dial(V4, 80, 1.0)
    with pytest.raises(AssertionError, match="dials the table does not have"):
        async with dialer:
            pass
    assert dialer.dials == [Dialled(V4, 80, 1.0)]
