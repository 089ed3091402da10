"""Go's response framing and gzip reader (``exporter.gocompat``), without a network.

The scenario suite (``tests/integration/test_errata_http.py``) runs these through the
fetch seam against the lab; here the pure parts are held to Go's answers directly: the
gzip cases below were answered by Go 1.26's ``compress/gzip`` (``gzip.NewReader``, then
``io.ReadAll`` of an ``io.LimitedReader`` of 128 bytes, as net/http's transport and
Boulder read a body), and every case must come out the same whether the body arrives
at once or a few bytes at a time.
"""

from __future__ import annotations

import gzip
import random
import struct
import zlib

import pytest

from exporter import gocompat
from exporter.gocompat import Framing, GzipBody, ResponseHeadError

LIMIT = 128


def read_gzip(
    body: bytes, *, pieces: int = 0, error: str | None = None
) -> tuple[bytes, str | None]:
    """Drive a GzipBody as the fetch seam does: feed when it asks, ``pieces`` bytes at a
    time (all at once when 0), then end the body (with ``error``, if given)."""
    reader = GzipBody()
    step = reader.read_all(LIMIT)
    at = 0
    try:
        step.send(None)
        while True:
            if at < len(body):
                size = pieces or len(body)
                reader.feed(body[at : at + size])
                at += size
            else:
                reader.end(error)
            step.send(None)
    except StopIteration as done:
        result: tuple[bytes, str | None] = done.value
        return result


def member(payload: bytes) -> bytes:
    """A gzip member of ``payload`` in one stored block: byte-exact with any zlib."""
    n = len(payload)
    data = b"\x01" + struct.pack("<HH", n, n ^ 0xFFFF) + payload
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + data + struct.pack("<II", zlib.crc32(payload), n)


# Answered by Go 1.26 (see the module docstring): corrupt streams, with the error Go gave.
GO_ERRORS = [
    ("1f8b0800000000000403010500faff9f241789cf5a1ae2b1a7000000", "gzip: invalid checksum"),
    ("1f8b0800000000000003d6002e66776ec101000000", "flate: corrupt input before offset 1"),
    ("1f8b080000000000000303da4000000000000000", "flate: corrupt input before offset 3"),
    ("1f8b0800000000000403b302ea3f360e14013da300", "flate: corrupt input before offset 4"),
    ("1f8b0800000000000003db0cb2bb0d6a8001000000", "flate: corrupt input before offset 4"),
    (
        "1f8b080000000000000371c649a26c7736027079da437b99e8822882",
        "flate: corrupt input before offset 5",
    ),
    (
        "1f8b0800000000000003cb494c1f4d4ecc4b2caad4cb1928260093b57c1084000074",
        "flate: corrupt input before offset 6",
    ),
    (
        "1f8b0800000000000203348c52685dd0449746b52efb1aae8e576f8dcd43",
        "flate: corrupt input before offset 6",
    ),
    (
        "1f8b08000000000000038519f9a32f4330d0cbb939c22a0e5808b9ccb723ca33a207bd29e279a5f5fc52ce42e6",
        "flate: corrupt input before offset 7",
    ),
    (
        "1f8b0800000000000003cb494cd2ba4ecc4b2caad4cb1928260093b57c1084000000",
        "flate: corrupt input before offset 8",
    ),
    (
        "1f8b0800000000000003cb494cd24d4ecc4b2caad4e2198d260093b57c1095000000",
        "flate: corrupt input before offset 15",
    ),
    (
        "1f8b0800000000000003cb494cd24dbecc4b2caad4cb80658e324799c394090078985d8de9030000",
        "flate: corrupt input before offset 15",
    ),
    (
        "1f8b0800000000000003cb494cd24d4ecc4b2caad4d91928260093b57c1084000000",
        "flate: corrupt input before offset 18",
    ),
    (
        "1f8b08000000000000034b4c4c4a8480242023094880309090160241883c4c14a208a102ca81a800e9862a46"
        "a2c16642fe845a04b107a81800f2ffadce7f000000",
        "flate: corrupt input before offset 20",
    ),
    (
        "1f8b08000000000000033d8bc111003008836685d81ce869527d7051892a204eb05b62ee180c3b1beb7cf51a"
        "d5897e5fea5c7bf100cc6ce0b87f000000",
        "flate: corrupt input before offset 28",
    ),
    (
        "1f8b0800000000000003cb494cd24d4ecc4b2caad403007ba4bab60b0000009ddfbbd9b2449d6115f964f198"
        "a458a1db57e3",
        "gzip: invalid header",
    ),
    (
        "1f8b0800000000000003cb494cd24d4ecc4b2caad4cb2181090096fe65f4370000001f8b08000000000002034d"
        "8c010e004004c3debafeff11177ac22c3125",
        "unexpected EOF",
    ),
]

# Answered by Go 1.26 without an error: the body is what Python's own gzip decodes, cut
# at 128 bytes (a second member included, an empty stream an empty body; the last one
# decodes to more than 128 bytes with a wrong CRC-32, which Go never reaches).
GO_BODIES = [
    "1f8b0800000000000403cb494cd24d4ecc4b2caad403007ba4bab60b000000",
    "1f8b080000000000040303000000000000000000",
    "1f8b0800000000000403010500faff6161626161e02deaec05000000",
    "1f8b0800000000000403cb494cd24d4ecc4b2caad4cba13d1300433fbd226e000000",
    "1f8b0800000000000403cb494cd24d4ecc4b2caad403007ba4bab60b0000001f8b080000000000000"
    "39b75d86f873000e04ccaeb05000000",
    "1f8b0800000000000003cb494cd24d4e2f4b2caad4cb1928260079b57c109d000000",
]


@pytest.mark.parametrize("pieces", [0, 1, 7])
@pytest.mark.parametrize(("data", "text"), GO_ERRORS)
def test_corrupt_streams_fail_as_go_fails(data: str, text: str, pieces: int) -> None:
    assert read_gzip(bytes.fromhex(data), pieces=pieces)[1] == text


@pytest.mark.parametrize("pieces", [0, 1, 7])
@pytest.mark.parametrize("data", GO_BODIES)
def test_valid_streams_decode_as_go_decodes(data: str, pieces: int) -> None:
    raw = bytes.fromhex(data)
    try:
        expected = gzip.decompress(raw)[:LIMIT]
    except gzip.BadGzipFile:  # only past the first 128 bytes (asserted here)
        expected = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw[10:])[:LIMIT]
        assert len(expected) == LIMIT
    assert read_gzip(raw, pieces=pieces) == (expected, None)


def test_random_streams_read_the_same_however_they_arrive() -> None:
    # The reader is resumable: where it stops to wait must never change what it reads.
    rng = random.Random(22)
    for _ in range(300):
        payload = bytes(rng.choice(b"ab") for _ in range(rng.choice([0, 54, 127, 128, 300])))
        data = bytearray(gzip.compress(payload, compresslevel=rng.randint(0, 9), mtime=0))
        if rng.random() < 0.5:
            data[rng.randrange(10, len(data))] ^= 1 << rng.randrange(8)
        if rng.random() < 0.3:
            del data[rng.randrange(len(data)) :]
        whole = read_gzip(bytes(data))
        assert read_gzip(bytes(data), pieces=1) == whole
        assert read_gzip(bytes(data), pieces=rng.randint(2, 40)) == whole


def test_a_body_error_is_met_only_where_the_reader_needs_more() -> None:
    short = member(b"lab-canary")
    # After a member, Go's reader looks for another: the body's error is met there.
    assert read_gzip(short, error="invalid byte in chunk length") == (
        b"lab-canary",
        "invalid byte in chunk length",
    )
    assert read_gzip(short[:20], error="unexpected EOF")[1] == "unexpected EOF"
    # Past 128 decoded bytes nothing more is read: the error is never met.
    assert read_gzip(member(b"a" * 200), error="invalid byte in chunk length") == (
        b"a" * LIMIT,
        None,
    )
    # No byte at all: an empty body (gzip.NewReader's io.EOF), or the body's error.
    assert read_gzip(b"") == (b"", None)
    assert read_gzip(b"", error="unexpected EOF") == (b"", "unexpected EOF")


def test_exactly_128_bytes_still_checks_the_trailer_and_the_next_header() -> None:
    # The read that returns the 128th byte also ends the member (Go's inflater hands out
    # the last block with io.EOF): the checksum and what follows are read in that call.
    full = member(b"a" * LIMIT)
    assert read_gzip(full) == (b"a" * LIMIT, None)
    assert read_gzip(full[:-8] + b"\x00" * 8)[1] == "gzip: invalid checksum"
    assert read_gzip(full + b"not a gzip member")[1] == "gzip: invalid header"
    assert read_gzip(full + member(b"more")) == (b"a" * LIMIT, None)


# ---------------------------------------------------------------------- framing


@pytest.mark.parametrize(
    ("version", "status", "encodings", "lengths", "framing"),
    [
        ((1, 1), 200, [], [], Framing()),
        ((1, 1), 200, [], [b"54"], Framing(length=54)),
        ((1, 1), 200, [], [b" 54", b"54 "], Framing(length=54)),
        ((1, 1), 200, [b"Chunked"], [b"5"], Framing(chunked=True)),
        ((1, 0), 200, [b"chunked"], [], Framing()),
        ((1, 0), 200, [b"identity", b"gzip"], [b"7"], Framing(length=7)),
        ((1, 1), 204, [b"chunked"], [b"54"], Framing()),
        ((1, 1), 101, [], [b"0"], Framing()),
        ((1, 1), 200, [], [b"9223372036854775807"], Framing(length=2**63 - 1)),
    ],
)
def test_framing_go_accepts(
    version: tuple[int, int],
    status: int,
    encodings: list[bytes],
    lengths: list[bytes],
    framing: Framing,
) -> None:
    assert gocompat.response_framing(version, status, encodings, lengths) == framing


@pytest.mark.parametrize(
    ("status", "encodings", "lengths"),
    [
        (200, [b"identity"], []),
        (200, [b"chunked", b"chunked"], []),
        (200, [b"chunked"], [b"x"]),
        (200, [b"chunked"], [b"5", b"6"]),
        (200, [], [b""]),
        (200, [], [b"+5"]),
        (200, [], [b"5, 5"]),
        (200, [], [b"9223372036854775808"]),
        (204, [], [b"none"]),
        (103, [b"gzip"], []),
    ],
)
def test_framing_go_refuses(status: int, encodings: list[bytes], lengths: list[bytes]) -> None:
    with pytest.raises(ResponseHeadError):
        gocompat.response_framing((1, 1), status, encodings, lengths)


def test_a_head_without_framing_lines_is_left_alone() -> None:
    head = b"HTTP/1.1 302 Found\r\nLocation: /x\r\nX-Content-Length: no\r\n\r\n"
    assert gocompat.response_head(head) == (head, True, False)
    assert gocompat.response_head(b"HTTP/1.1 103 Early Hints\n\n") == (
        b"HTTP/1.1 103 Early Hints\n\n",
        False,
        False,
    )
    assert gocompat.response_head(b"HTTP/1.1 101 Switching\r\n\r\n")[1] is True
    spdy = b"SPDY/3 200 OK\r\n\r\n"
    assert gocompat.response_head(spdy) == (spdy, True, False)


def test_a_head_gets_one_framing_line_as_go_decided() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n"
        b"transfer-encoding: CHUNKED\r\nContent-Length:  5\r\n\r\n"
    )
    # Chunked: no framing line is left (the body is read until the connection closes,
    # through Go's chunked reader), and the head says so.
    assert gocompat.response_head(head) == (b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", True, True)
    old = b"HTTP/1.0 200 OK\nTransfer-Encoding: chunked\nContent-Length: 0054\n\n"
    assert gocompat.response_head(old) == (
        b"HTTP/1.0 200 OK\r\nContent-Length: 54\r\n\r\n",
        True,
        False,
    )
    folded = b"HTTP/1.1 200 OK\r\nContent-Length:\r\n 54\r\nA: b\r\n\r\n"
    assert gocompat.response_head(folded) == (
        b"HTTP/1.1 200 OK\r\nA: b\r\nContent-Length: 54\r\n\r\n",
        True,
        False,
    )
    with pytest.raises(ResponseHeadError):
        gocompat.response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n")
