"""HTTP-01 errata 22 and 23: status 101, interim responses and content codings, against the lab.

Each test runs a raw server on loopback that sends exactly the bytes under test and
asserts the verdict as Let's Encrypt gives it (Go's HTTP client under Boulder): the
problem type, our reason, the exact detail text, and the records where they matter.
The source is the "Verified by running Boulder's own code" list at the top of
``letsencrypt-http01.md`` (erratum n = item n); the finer gzip cases follow Go's
``compress/gzip`` reader, which Go's transport puts under a body it asked to be gzipped.
"""

from __future__ import annotations

import asyncio
import gzip
import struct
import zlib

import pytest

from exporter import policy
from exporter.lab import servers as L
from exporter.records import ProblemType, Reason
from tests.integration.lab_validation import KA, PATH, problem, records, site, url, validate
from tests.integration.test_errata import (
    FAILED,
    REDIR,
    RESP,
    failed,
    ok,
    read_request,
    reply,
    summary,
)

NAME = "coding.example.com"
MISMATCH = "The key authorization file from the server did not match this challenge. "


def head(status: bytes, *lines: bytes) -> bytes:
    """A response head: ``HTTP/1.1 <status>``, the header lines, the blank line."""
    return b"HTTP/1.1 " + status + b"\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def canary(*lines: bytes, body: bytes | None = None) -> bytes:
    """A 200 response with a Content-Length, carrying ``body`` (the key authorization)."""
    payload = KA.encode() if body is None else body
    return head(b"200 OK", *lines, b"Content-Length: %d" % len(payload)) + payload


def chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload) if payload else b"0\r\n\r\n"


def stored(payload: bytes, *, final: bool = True) -> bytes:
    """One stored (uncompressed) DEFLATE block: byte-exact whatever zlib is installed."""
    n = len(payload)
    return bytes([1 if final else 0]) + struct.pack("<HH", n, n ^ 0xFFFF) + payload


def member(
    payload: bytes,
    *,
    deflate: bytes | None = None,
    flags: int = 0,
    options: bytes = b"",
    header_crc: int | None = None,
    crc: int | None = None,
    size: int | None = None,
) -> bytes:
    """A gzip member (RFC 1952) of ``payload``: the header (``options`` after its fixed
    part, then its CRC-16 when ``flags`` asks for one), ``deflate`` (a stored block by
    default), the CRC-32 and the size; any check may be given wrong on purpose."""
    header = b"\x1f\x8b\x08" + bytes([flags]) + b"\x00\x00\x00\x00\x00\xff" + options
    if flags & 0x02:
        check = zlib.crc32(header) & 0xFFFF if header_crc is None else header_crc
        header += struct.pack("<H", check)
    data = stored(payload) if deflate is None else deflate
    trailer = struct.pack(
        "<II",
        zlib.crc32(payload) if crc is None else crc,
        len(payload) if size is None else size,
    )
    return header + data + trailer


def body_error(v4: str, text: str) -> tuple[object, ...]:
    return (
        ProblemType.UNAUTHORIZED,
        Reason.BODY_READ_ERROR,
        f"{v4}: Error reading HTTP response body: {text}",
    )


def bad_response(v4: str, name: str = NAME) -> tuple[object, ...]:
    return (
        ProblemType.CONNECTION,
        Reason.PROTOCOL_ERROR,
        f"{v4}: Fetching {url(name)}: Error getting validation data",
    )


# --------------------------------------------------- erratum 22: 101 and interim responses


@pytest.mark.parametrize(
    "sent",
    [
        head(b"101 Switching Protocols"),
        head(b"101 Switching Protocols", b"Upgrade: websocket", b"Connection: Upgrade"),
        head(b"101 Switching Protocols", b"Upgrade: h2c") + KA.encode(),
        head(b"100 Continue") + head(b"101 Switching Protocols"),
    ],
    ids=["bare", "websocket", "bytes-after-it", "after-a-100"],
)
async def test_101_is_the_final_response(lab: L.Lab, sent: bytes) -> None:
    v4 = await site(lab, NAME, L.raw(reply(sent)))
    result = await validate(lab, NAME)
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.BAD_STATUS,
        f"{v4}: Invalid response from {url(NAME)}: 101",
    )
    assert records(result) == [(0, url(NAME), v4, RESP, 101, None)]
    assert summary(result) == failed(0)


async def test_101_to_a_server_that_keeps_the_connection_open(lab: L.Lab) -> None:
    # The switched connection is never read: the verdict does not wait for it to close.
    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(head(b"101 Switching Protocols", b"Upgrade: websocket"))
        await writer.drain()
        await asyncio.sleep(5)

    v4 = await site(lab, NAME, L.raw(run))
    result = await validate(lab, NAME, budget=10.0)
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.BAD_STATUS,
        f"{v4}: Invalid response from {url(NAME)}: 101",
    )
    assert result.duration_seconds < 4.0  # not the 5 s the server holds it, nor the budget


@pytest.mark.parametrize(
    "interim",
    [
        head(b"100 Continue"),
        head(b"103 Early Hints", b"Link: </style.css>; rel=preload; as=style"),
        head(b"102 Processing") + head(b"100 Continue") + head(b"103 Early Hints"),
        b"".join(head(b"103 Early Hints", b"Link: </%d.css>; rel=preload" % i) for i in range(8)),
    ],
    ids=["100", "103-early-hints", "three-kinds", "eight-in-a-row"],
)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_interim_responses_before_the_answer_are_skipped(
    lab: L.Lab, interim: bytes, framing: str
) -> None:
    if framing == "chunked":
        answer = head(b"200 OK", b"Transfer-Encoding: chunked") + chunked(KA.encode())
    else:
        answer = canary()
    v4 = await site(lab, NAME, L.raw(reply(interim + answer)))
    result = await validate(lab, NAME)
    assert summary(result) == ok(), result.problem
    assert records(result) == [(0, url(NAME), v4, RESP, 200, None)]


async def test_interim_response_before_a_redirect_and_before_a_404(lab: L.Lab) -> None:
    other = await site(lab, "other.example.com", L.status(404))
    location = b"Location: http://other.example.com" + PATH.encode()
    sent = head(b"103 Early Hints") + head(b"302 Found", location, b"Content-Length: 0")
    v4 = await site(lab, NAME, L.raw(reply(sent)))
    result = await validate(lab, NAME)
    assert records(result) == [
        (0, url(NAME), v4, REDIR, 302, None),
        (1, url("other.example.com"), other, RESP, 404, None),
    ]
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.BAD_STATUS,
        f"{other}: Invalid response from {url('other.example.com')}: 404",
    )
    assert summary(result) == failed(1, redirects=1)


# ------------------------------------------------- erratum 23: what is asked for, and sent


async def test_every_request_asks_for_gzip_as_gos_transport_does(lab: L.Lab) -> None:
    # Go's transport adds Accept-Encoding: gzip (and Connection: close, keep-alives being
    # off) after the request's own headers, on every request of the chain.
    seen: list[bytes] = []

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        seen.append(request)
        if request.startswith(b"GET /next "):
            writer.write(canary())
        else:
            writer.write(head(b"301 Moved Permanently", b"Location: /next", b"Content-Length: 0"))
        await writer.drain()

    await site(lab, NAME, L.raw(run))
    result = await validate(lab, NAME)
    assert summary(result) == ok(redirects=1), result.problem
    common = (
        f"Host: {NAME}\r\nUser-Agent: {policy.USER_AGENT}\r\nAccept: */*\r\n"
        "Accept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    ).encode()
    assert seen == [
        b"GET " + PATH.encode() + b" HTTP/1.1\r\n" + common,
        b"GET /next HTTP/1.1\r\n" + common,
    ]


@pytest.mark.parametrize(
    "sent",
    [
        canary(b"Content-Encoding: gzip", body=gzip.compress(KA.encode())),
        head(b"200 OK", b"Content-Encoding: gzip", b"Connection: close")
        + gzip.compress(KA.encode() + b"\n"),
        canary(b"Content-Encoding: GZip", body=member(KA.encode())),
        head(b"200 OK", b"Content-Encoding: gzip", b"Transfer-Encoding: chunked")
        + chunked(member(KA.encode())),
        canary(b"Content-Encoding: gzip", body=member(KA[:20].encode()) + member(KA[20:].encode())),
        canary(b"Content-Encoding: gzip", b"Content-Encoding: br", body=member(KA.encode())),
        canary(
            b"Content-Encoding: gzip",
            body=member(
                KA.encode(),
                flags=0x02 | 0x04 | 0x08 | 0x10,  # header CRC, extra field, name, comment
                options=b"\x03\x00abc" + b"canary.txt\x00" + b"a comment\x00",
            ),
        ),
        canary(
            b"Content-Encoding: gzip",
            body=member(KA.encode(), deflate=stored(b"", final=False) + stored(KA.encode())),
        ),
    ],
    ids=[
        "content-length",
        "close-delimited",
        "mixed-case-coding",
        "chunked",
        "two-members",
        "first-of-two-codings",
        "header-options",
        "empty-block-first",
    ],
)
async def test_gzip_body_nobody_asked_for_is_decoded(lab: L.Lab, sent: bytes) -> None:
    await site(lab, NAME, L.raw(reply(sent)))
    result = await validate(lab, NAME)
    assert summary(result) == ok(), result.problem


async def test_gzip_coding_on_a_body_that_is_not_gzip(lab: L.Lab) -> None:
    v4 = await site(lab, NAME, L.raw(reply(canary(b"Content-Encoding: gzip"))))
    result = await validate(lab, NAME)
    assert problem(result) == body_error(v4, "gzip: invalid header")
    assert records(result) == [(0, url(NAME), v4, RESP, None, Reason.BODY_READ_ERROR)]
    assert summary(result) == failed(0)


GOOD = member(KA.encode())
DEFLATE = stored(KA.encode())


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"lab-can", "unexpected EOF"),  # shorter than a gzip header
        (GOOD[:25], "unexpected EOF"),  # cut inside the stored block
        (GOOD[:-8], "unexpected EOF"),  # no trailer
        (GOOD[:-3], "unexpected EOF"),  # half a trailer
        (member(KA.encode(), crc=0), "gzip: invalid checksum"),
        (member(KA.encode(), size=len(KA) + 1), "gzip: invalid checksum"),
        (GOOD + b"trailing garbage", "gzip: invalid header"),  # read as a second member
        (GOOD + b"\x00" * 4, "unexpected EOF"),  # less than a second header
        (GOOD + GOOD[:12], "unexpected EOF"),  # a second member, cut short
        (member(KA.encode(), flags=0x02, header_crc=0), "gzip: invalid header"),
        (member(KA.encode(), flags=0x08, options=b"n" * 600 + b"\x00"), "gzip: invalid header"),
        (b"\x1f\x8b\x09" + GOOD[3:], "gzip: invalid header"),  # not deflate
        (member(KA.encode(), deflate=b"\x07" + DEFLATE), "flate: corrupt input before offset 1"),
        (
            member(KA.encode(), deflate=DEFLATE[:3] + b"\x00\x00" + DEFLATE[5:]),
            "flate: corrupt input before offset 5",
        ),
        (
            # a fixed-Huffman block whose first code is a match with nothing before it
            member(KA.encode(), deflate=b"\x03\x02"),
            "flate: corrupt input before offset 2",
        ),
    ],
    ids=[
        "short-plain-body",
        "cut-in-the-data",
        "no-trailer",
        "half-a-trailer",
        "wrong-crc",
        "wrong-size",
        "trailing-garbage",
        "trailing-zeros",
        "second-member-cut",
        "wrong-header-crc",
        "name-too-long",
        "not-deflate",
        "reserved-block-type",
        "stored-length-check",
        "distance-too-far-back",
    ],
)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_gzip_errors_in_gos_words(lab: L.Lab, body: bytes, text: str, framing: str) -> None:
    if framing == "chunked":
        sent = head(b"200 OK", b"Content-Encoding: gzip", b"Transfer-Encoding: chunked")
        sent += chunked(body)
    else:
        sent = canary(b"Content-Encoding: gzip", body=body)
    v4 = await site(lab, NAME, L.raw(reply(sent)))
    result = await validate(lab, NAME)
    assert problem(result) == body_error(v4, text)


async def test_gzip_error_after_128_bytes_is_never_seen(lab: L.Lab) -> None:
    # Let's Encrypt reads 128 bytes of the decoded body: a wrong checksum after 200 is
    # not read; the body is too large.
    v4 = await site(
        lab, NAME, L.raw(reply(canary(b"Content-Encoding: gzip", body=member(b"a" * 200, crc=0))))
    )
    result = await validate(lab, NAME)
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.BODY_TOO_LARGE,
        f"{v4}: Invalid response from {url(NAME)}: " + '"' + "a" * 128 + '"',
    )


async def test_gzip_of_nothing_is_an_empty_body(lab: L.Lab) -> None:
    await site(lab, NAME, L.raw(reply(canary(b"Content-Encoding: gzip", body=member(b"")))))
    result = await validate(lab, NAME)
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.KEY_AUTHORIZATION_MISMATCH,
        MISMATCH + f'Expected "{KA}" (got "")',
    )


async def test_deflate_coding_is_not_decoded(lab: L.Lab) -> None:
    # Go asks for gzip only and decodes nothing else: the zlib stream is the body.
    body = b"\x78\x01" + DEFLATE + struct.pack(">I", zlib.adler32(KA.encode()))
    await site(lab, NAME, L.raw(reply(canary(b"Content-Encoding: deflate", body=body))))
    result = await validate(lab, NAME)
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.KEY_AUTHORIZATION_MISMATCH,
        MISMATCH + f'Expected "{KA}" (got "x\\x01\\x016\\x00\\xc9\\xff{KA}\\x1c\\xb8\\x13w")',
    )


@pytest.mark.parametrize("coding", [b"deflate", b"x-gzip", b"br", b"gzip, identity", b"identity"])
async def test_codings_go_does_not_decode_leave_the_body_alone(lab: L.Lab, coding: bytes) -> None:
    await site(lab, NAME, L.raw(reply(canary(b"Content-Encoding: " + coding))))
    result = await validate(lab, NAME)
    assert summary(result) == ok(), result.problem


# ------------------------------------------------------- erratum 23: Location and framing


async def test_first_of_two_locations_is_followed(lab: L.Lab) -> None:
    first = await site(lab, "first.example.com", L.serve())
    await site(lab, "second.example.com", L.status(404))
    sent = head(
        b"302 Found",
        b"Location: http://first.example.com" + PATH.encode(),
        b"Location: http://second.example.com" + PATH.encode(),
        b"Content-Length: 0",
    )
    v4 = await site(lab, NAME, L.raw(reply(sent)))
    result = await validate(lab, NAME)
    assert summary(result) == ok(redirects=1), result.problem
    assert records(result) == [
        (0, url(NAME), v4, REDIR, 302, None),
        (1, url("first.example.com"), first, RESP, 200, None),
    ]


@pytest.mark.parametrize(
    "lines",
    [
        (b"Content-Length: abc",),
        (b"Content-Length: -54",),
        (b"Content-Length: 0x36",),
        (b"Content-Length: ",),
        (b"Content-Length: 54", b"Content-Length: 55"),
        (b"Content-Length: 54, 54",),
        (b"Content-Length: 9223372036854775808",),
        (b"Transfer-Encoding: identity",),
        (b"Transfer-Encoding: gzip, chunked",),
        (b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"),
        (b"Content-Length: chunked", b"Transfer-Encoding: chunked"),
        (b"Content-Length: 5", b"Content-Length: 6", b"Transfer-Encoding: chunked"),
    ],
    ids=[
        "length-not-a-number",
        "length-negative",
        "length-in-hex",
        "length-empty",
        "two-lengths",
        "length-list",
        "length-over-2-63",
        "identity",
        "gzip-then-chunked",
        "two-transfer-encodings",
        "chunked-and-a-bad-length",
        "chunked-and-two-lengths",
    ],
)
async def test_framing_go_refuses_is_a_broken_response(
    lab: L.Lab, lines: tuple[bytes, ...]
) -> None:
    sent = head(b"200 OK", *lines, b"Connection: close") + KA.encode()
    v4 = await site(lab, NAME, L.raw(reply(sent)))
    result = await validate(lab, NAME)
    assert problem(result) == bad_response(v4)
    assert records(result) == [(0, url(NAME), v4, FAILED, None, Reason.PROTOCOL_ERROR)]
    assert summary(result) == failed(0)


@pytest.mark.parametrize(
    "lines",
    [
        (b"Content-Length: 5", b"Transfer-Encoding: chunked"),
        (b"Transfer-Encoding: chunked", b"Content-Length: 1000"),
        (b"Content-Length: 5", b"Content-Length: 5", b"Transfer-Encoding: CHUNKED"),
    ],
    ids=["shorter-length", "longer-length-after", "same-length-twice"],
)
async def test_chunked_wins_over_a_content_length(lab: L.Lab, lines: tuple[bytes, ...]) -> None:
    # Go checks the Content-Length (see the refusals above), then reads chunks.
    sent = head(b"200 OK", *lines) + chunked(KA.encode())
    await site(lab, NAME, L.raw(reply(sent)))
    result = await validate(lab, NAME)
    assert summary(result) == ok(), result.problem


@pytest.mark.parametrize(
    "lines",
    [
        (b"Content-Length: 54", b"Content-Length: 54"),
        (b"Content-Length: 54 ", b"Content-Length:54"),
        (b"Content-Length: 0054",),
    ],
    ids=["same-length-twice", "same-length-spaced", "leading-zeros"],
)
async def test_content_lengths_go_accepts(lab: L.Lab, lines: tuple[bytes, ...]) -> None:
    await site(lab, NAME, L.raw(reply(head(b"200 OK", *lines) + KA.encode())))
    result = await validate(lab, NAME)
    assert summary(result) == ok(), result.problem


@pytest.mark.parametrize("line", [b"Transfer-Encoding: chunked", b"Transfer-Encoding: identity"])
async def test_http_1_0_ignores_transfer_encoding(lab: L.Lab, line: bytes) -> None:
    # The body is read until the connection closes, as it is, not as chunks.
    sent = b"HTTP/1.0 200 OK\r\n" + line + b"\r\n\r\n" + KA.encode()
    await site(lab, NAME, L.raw(reply(sent)))
    result = await validate(lab, NAME)
    assert summary(result) == ok(), result.problem


@pytest.mark.parametrize("status", [b"204 No Content", b"304 Not Modified", b"100 Continue"])
async def test_content_length_is_checked_even_where_there_is_no_body(
    lab: L.Lab, status: bytes
) -> None:
    sent = head(status, b"Content-Length: none") + canary()
    v4 = await site(lab, NAME, L.raw(reply(sent)))
    result = await validate(lab, NAME)
    assert problem(result) == bad_response(v4)


@pytest.mark.parametrize("status", [b"204 No Content", b"304 Not Modified"])
async def test_status_without_a_body_ignores_its_framing(lab: L.Lab, status: bytes) -> None:
    sent = head(status, b"Content-Length: 54", b"Transfer-Encoding: chunked")
    v4 = await site(lab, NAME, L.raw(reply(sent)))
    result = await validate(lab, NAME)
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.BAD_STATUS,
        f"{v4}: Invalid response from {url(NAME)}: {int(status[:3])}",
    )


async def test_framing_go_refuses_on_an_interim_response(lab: L.Lab) -> None:
    sent = head(b"103 Early Hints", b"Transfer-Encoding: identity") + canary()
    v4 = await site(lab, NAME, L.raw(reply(sent)))
    result = await validate(lab, NAME)
    assert problem(result) == bad_response(v4)


@pytest.mark.parametrize(
    "sent",
    [
        canary(body=b""),
        head(b"200 OK", b"Connection: close"),
        head(b"200 OK", b"Transfer-Encoding: chunked") + chunked(b""),
        canary(b"Content-Encoding: gzip", body=b""),
    ],
    ids=["content-length-0", "close-delimited", "chunked", "gzip-coded"],
)
async def test_empty_200_is_a_mismatch_quoting_nothing(lab: L.Lab, sent: bytes) -> None:
    await site(lab, NAME, L.raw(reply(sent)))
    result = await validate(lab, NAME)
    assert problem(result) == (
        ProblemType.UNAUTHORIZED,
        Reason.KEY_AUTHORIZATION_MISMATCH,
        MISMATCH + f'Expected "{KA}" (got "")',
    )
    assert summary(result) == failed(0)
