"""The DNS seam's one reader (``exporter.dnswire``) and the resolver built on it.

The reader is held against dnspython's parser: an answer dnspython reads is read with the
same records, rcode and Extended DNS Error (CAA tags that are not alphanumeric and
EXTRA-TEXTs that are not UTF-8 excepted: kept, as Let's Encrypt keeps them); an answer it
refuses is refused. The resolver is then driven against a loopback server that answers
with crafted messages: what each reading becomes for a lookup, a CAA lookup and the probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from exporter import dnswire
from exporter.caa import CaaRecord
from exporter.dns import DnspythonResolver
from exporter.dnswire import Malformed, Record, Reply, Unsendable
from exporter.policy import DnsAnswer, DnsFailure, DnsFailureKind
from exporter.records import Family

NAMES = {"CNAME", "NS", "SOA", "PTR", "DNAME", "MX"}  # rdata with names: compared by type only


def _query(name: str, rdtype: str) -> bytes:
    return dnswire.query(name, dns.rdatatype.from_text(rdtype))


def _answer(
    name: str = "h.example.com",
    rdtype: str = "A",
    *,
    answer: tuple[tuple[str, str, list[str]], ...] = (),
    authority: tuple[tuple[str, str, list[str]], ...] = (),
    edns: bool = True,
    rcode: int = 0,
    ede: list[dns.edns.EDEOption] | None = None,
) -> bytes:
    response = dns.message.make_response(dns.message.from_wire(_query(name, rdtype)))
    if not edns:
        response.use_edns(False)
    elif ede:
        response.use_edns(0, 0, 1232, options=list(ede))
    response.set_rcode(rcode)
    for owner, kind, values in answer:
        response.answer.append(dns.rrset.from_text_list(owner, 60, "IN", kind, values))
    for owner, kind, values in authority:
        response.authority.append(dns.rrset.from_text_list(owner, 60, "IN", kind, values))
    return bytes(response.to_wire())


def _edit(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value) :]


def _message(
    *records: bytes, counts: tuple[int, int, int] | None = None, flags: int = 0x8180
) -> bytes:
    """An answer to ``h.example.com``/A (question uncompressed at offset 12) with ``records``
    in the answer section, or as ``counts`` says."""
    ancount, nscount, arcount = counts or (len(records), 0, 0)
    header = struct.pack("!6H", 0, flags, 1, ancount, nscount, arcount)
    return header + b"\x01h\x07example\x03com\x00\x00\x01\x00\x01" + b"".join(records)


def _rr(owner: bytes, rdtype: int, rdata: bytes, rdclass: int = 1, ttl: int = 60) -> bytes:
    return owner + struct.pack("!HHIH", rdtype, rdclass, ttl, len(rdata)) + rdata


def _opt(*options: tuple[int, bytes], ext_rcode: int = 0) -> bytes:
    rdata = b"".join(struct.pack("!HH", code, len(data)) + data for code, data in options)
    return _rr(b"\x00", dnswire.OPT, rdata, rdclass=1232, ttl=ext_rcode << 24)


HERE = b"\xc0\x0c"  # a pointer to the question's name
#: Two A records in this order (dnspython shuffles an rrset's records as it writes them).
TWO_A = _message(*(_rr(HERE, 1, bytes([192, 0, 2, i])) for i in (1, 2)))


def _as_dnspython(data: bytes) -> tuple[int, int, list[tuple[int, bytes]], tuple[int, str] | None]:
    message = dns.message.from_wire(data)
    answers = [(int(rrset.rdtype), rd.to_wire()) for rrset in message.answer for rd in rrset]
    errors = message.extended_errors()
    ede = (int(errors[0].code), errors[0].text or "") if errors else None
    return int(message.flags), message.rcode(), answers, ede


def _as_read(data: bytes) -> tuple[int, int, list[tuple[int, bytes]], tuple[int, str] | None]:
    reply = dnswire.read(data)
    return reply.flags, reply.rcode, [(r.rdtype, r.rdata) for r in reply.answers], reply.ede


# ----------------------------------------------------------------------------- the query


@pytest.mark.parametrize("name", ["h.example.com", "H.Example.COM.", "com", "."])
@pytest.mark.parametrize("flags", [0, dnswire.AD])
def test_the_query_is_dnspythons_with_id_zero(name: str, flags: int) -> None:
    query = dns.message.make_query(name, "AAAA", use_edns=0, payload=4096, id=0)
    query.flags |= flags
    assert dnswire.query(name, dnswire.AAAA, flags) == query.to_wire()


def test_names_go_in_utf8_as_they_are() -> None:
    wire = dnswire.query("bücher.example", dnswire.A)
    assert wire[12:29] == b"\x07b\xc3\xbccher\x07example\x00"
    assert b"xn--" not in wire


@pytest.mark.parametrize(
    "name",
    [
        "a" * 64 + ".example.com",
        "a..example.com",
        ".example.com",
        ".".join(["a" * 63] * 3 + ["a" * 62]),  # 256 bytes on the wire
    ],
)
def test_a_name_no_query_can_carry(name: str) -> None:
    with pytest.raises(Unsendable):
        dnswire.query(name, dnswire.A)
    with pytest.raises(dns.exception.DNSException):
        dns.message.make_query(name, "A")


def test_the_longest_name_is_sent() -> None:
    name = ".".join(["a" * 63] * 3 + ["a" * 61])  # 255 bytes on the wire
    assert (
        dnswire.query(name, dnswire.A)
        == dns.message.make_query(name, "A", use_edns=0, payload=4096, id=0).to_wire()
    )


# --------------------------------------------------------------- what dnspython reads too

SOA = ("example.com.", "SOA", ["ns.example.com. host.example.com. 1 2 3 4 5"])
READ = {
    "a": _answer(answer=(("h.example.com.", "A", ["192.0.2.1", "192.0.2.2"]),)),
    "aaaa": _answer(
        rdtype="AAAA", answer=(("h.example.com.", "AAAA", ["2001:db8::1", "::ffff:192.0.2.1"]),)
    ),
    "cname chain": _answer(
        answer=(
            ("h.example.com.", "CNAME", ["w.example.net."]),
            ("w.example.net.", "A", ["192.0.2.7"]),
        )
    ),
    "other owner": _answer(answer=(("elsewhere.example.net.", "A", ["192.0.2.8"]),)),
    "nodata with soa": _answer(rdtype="AAAA", authority=(SOA,)),
    "ns in authority": _answer(authority=(("example.com.", "NS", ["ns.example.com."]),)),
    "mx in authority": _answer(authority=(("example.com.", "MX", ["10 mx.example.com."]),)),
    "txt in answer": _answer(answer=(("h.example.com.", "TXT", ['"x"']),)),
    "no edns": _answer(edns=False, answer=(("h.example.com.", "A", ["192.0.2.9"]),)),
    "other question": _answer("x.example.com"),
    "caa": _answer(
        "example.com",
        "CAA",
        answer=(("example.com.", "CAA", ['0 issue "letsencrypt.org"', '128 tbs "x"']),),
    ),
    "servfail": _answer(rcode=dns.rcode.SERVFAIL),
    "nxdomain with soa": _answer(rcode=dns.rcode.NXDOMAIN, authority=(SOA,)),
    "extended rcode": _message(_opt(ext_rcode=1), counts=(0, 0, 1)),  # BADVERS/BADSIG: 16
    "refused with ede": _answer(
        rcode=dns.rcode.REFUSED, ede=[dns.edns.EDEOption(dns.edns.EDECode.PROHIBITED)]
    ),
    "first of two edes": _answer(
        rcode=dns.rcode.SERVFAIL,
        ede=[
            dns.edns.EDEOption(dns.edns.EDECode.DNSSEC_BOGUS, "validation failure"),
            dns.edns.EDEOption(dns.edns.EDECode.NETWORK_ERROR, "second"),
        ],
    ),
    "ede after another option": _message(
        _opt((10, bytes(8)), (15, b"\x00\x07bogus\x00")), counts=(0, 0, 1), flags=0x8182
    ),
    "ede on noerror": _answer(ede=[dns.edns.EDEOption(dns.edns.EDECode.STALE_ANSWER, "x")]),
    "truncated, well formed": _edit(
        _answer(answer=(("h.example.com.", "A", ["192.0.2.1"]),)), 2, b"\x83"
    ),
    "compressed twice": _message(
        _rr(HERE, dnswire.CNAME, b"\x01w" + HERE),
        _rr(b"\x01w" + HERE, dnswire.A, b"\xc0\x00\x02\x07"),
        _rr(b"\xc0\x2b", dnswire.A, b"\xc0\x00\x02\x08"),  # to "w.h.example.com", 2 jumps
    ),
}


@pytest.mark.parametrize("case", sorted(READ))
def test_an_answer_is_read_as_dnspython_reads_it(case: str) -> None:
    flags, rcode, answers, ede = _as_dnspython(READ[case])
    got = _as_read(READ[case])
    assert got[:2] == (flags, rcode)
    assert got[3] == ede
    names = {dns.rdatatype.from_text(t) for t in NAMES}
    assert [t for t, _ in got[2]] == [t for t, _ in answers]
    assert [a for a in got[2] if a[0] not in names] == [a for a in answers if a[0] not in names]


def test_the_answer_section_is_kept_in_wire_order() -> None:
    # dnspython gathers an rrset's records; Let's Encrypt's library, like the reader,
    # keeps the order they came in.
    a = [_rr(HERE, dnswire.A, bytes([192, 0, 2, i])) for i in (1, 2)]
    data = _message(a[0], _rr(HERE, dnswire.CNAME, HERE), a[1])
    assert [r.rdtype for r in dnswire.read(data).answers] == [1, 5, 1]


def test_the_reply_keeps_what_the_resolver_needs() -> None:
    data = READ["first of two edes"]
    assert dnswire.read(data) == Reply(
        dns.flags.QR | dns.flags.RD | 2, 2, (), (6, "validation failure")
    )
    assert dnswire.read(TWO_A).answers == (
        Record(dnswire.A, b"\xc0\x00\x02\x01"),
        Record(dnswire.A, b"\xc0\x00\x02\x02"),
    )


# ------------------------------------------------------------ where the reader is lenient


@pytest.mark.parametrize("tag", [b"is-sue", b"", b"tag\x00nul", b"\xff\xfe", b"\xc3\xa9"])
def test_a_caa_tag_dnspython_refuses_is_kept(tag: bytes) -> None:
    rdata = bytes([128, len(tag)]) + tag + b'"value'
    data = _message(_rr(HERE, dnswire.CAA, rdata))
    with pytest.raises(dns.exception.DNSException):
        dns.message.from_wire(data)
    assert dnswire.read(data).answers == (Record(dnswire.CAA, rdata),)


@pytest.mark.parametrize(
    ("text", "read"),
    [
        (b"bogus\x00", "bogus"),  # one final NUL dropped, as dnspython drops it
        (b"a\xe2\x82b", "a\udce2\udc82b"),  # kept for exporter.policy.valid_utf8
        (b"", ""),
    ],
)
def test_the_extra_text_is_kept_as_sent(text: bytes, read: str) -> None:
    data = _message(_opt((15, b"\x00\x06" + text)), counts=(0, 0, 1), flags=0x8182)
    assert dnswire.read(data).ede == (6, read)


def test_the_opcode_is_not_looked_at() -> None:
    # dnspython reads an UPDATE's sections as zone, prerequisites and updates, and refuses
    # this one; Let's Encrypt's library reads every answer the same way, as the reader does.
    data = _edit(READ["a"], 2, b"\xa9")  # QR, opcode 5, RD
    with pytest.raises(dns.exception.DNSException):
        dns.message.from_wire(data)
    assert dnswire.read(data).answers == dnswire.read(READ["a"]).answers


# -------------------------------------------------------- what both refuse, and how


A_RR = _rr(HERE, dnswire.A, b"\xc0\x00\x02\x01")
MALFORMED: dict[str, bytes] = {
    "short header": b"\x00" * 11,
    "trailing junk": _message(A_RR) + b"\x00",
    "a record past the end": _message(A_RR)[:-1],
    "a missing record": _message(A_RR, counts=(2, 0, 0)),
    "a forward pointer": _message(_rr(b"\xc0\x30", dnswire.A, b"\xc0\x00\x02\x01")),
    "a pointer to itself": _message(_rr(b"\xc0\x1f", dnswire.A, b"\xc0\x00\x02\x01")),
    "a pointer loop": _message(
        _rr(b"\x01w\xc0\x1f", dnswire.A, b"\xc0\x00\x02\x01"),  # at 31: w, then back to 31
    ),
    "a loop through two pointers": _message(
        _rr(HERE, 65280, b"\x01w\xc0\x2f"),  # opaque rdata at 43: w, then to 47
        _rr(b"\xc0\x2b", dnswire.A, bytes(4)),  # at 47: to 43
    ),
    "a pointer past the previous jump": _message(
        _rr(HERE, 65280, b"\x01w\xc0\x2f"),  # opaque rdata at 43: w, then to 47
        _rr(b"\x01x" + HERE, dnswire.A, bytes(4)),  # at 47: x.h.example.com
        _rr(b"\xc0\x2b", dnswire.A, bytes(4)),  # at 65: to 43, which points up to 47
    ),
    "a pointer past the end": _message(b"\xc0", counts=(1, 0, 0)),
    "a label type 0x40": _message(_rr(b"\x41" + b"a" * 65 + b"\x00", dnswire.A, b"\x01" * 4)),
    "a name over 255 bytes": _message(
        _rr(b"".join(b"\x3f" + bytes([c]) * 63 for c in b"abcd") + HERE, dnswire.A, bytes(4))
    ),
    "an a record of 5 bytes": _message(_rr(HERE, dnswire.A, b"\xc0\x00\x02\x01\x00")),
    "an aaaa record of 4 bytes": _message(_rr(HERE, dnswire.AAAA, b"\xc0\x00\x02\x01")),
    "a cname longer than its name": _message(_rr(HERE, dnswire.CNAME, HERE + b"\x00")),
    "a cname past its rdata": _message(_rr(HERE, dnswire.CNAME, b"\x01w"), A_RR),
    "a soa one byte short": _message(
        _rr(HERE, dnswire.SOA, HERE + HERE + bytes(19)), counts=(0, 1, 0)
    ),
    "a caa of one byte": _message(_rr(HERE, dnswire.CAA, b"\x00")),
    "a caa tag past its rdata": _message(_rr(HERE, dnswire.CAA, b"\x00\x05iss"), A_RR),
    "an opt in the answer section": _message(_opt()),
    "two opt records": _message(_opt(), _opt(), counts=(0, 0, 2)),
    "an opt not owned by the root": _message(
        _rr(HERE, dnswire.OPT, b"", rdclass=1232), counts=(0, 0, 1)
    ),
    "an ede of one byte": _message(_opt((15, b"\x00")), counts=(0, 0, 1)),
    "an option past its record": _edit(
        _message(_opt((15, b"\x00\x06")), counts=(0, 0, 1)), -4, b"\x00\x03"
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_answer_is_refused_by_both(case: str) -> None:
    data = MALFORMED[case]
    with pytest.raises(dns.exception.DNSException):
        dns.message.from_wire(data)
    with pytest.raises(Malformed):
        dnswire.read(data)


@pytest.mark.parametrize("case", ["cname chain", "nodata with soa", "first of two edes", "caa"])
def test_every_cut_of_an_answer_is_refused(case: str) -> None:
    data = READ[case]
    for end in range(len(data)):
        with pytest.raises(Malformed):
            dnswire.read(data[:end])


# ------------------------------------------------------------------ the resolver on top

Answerer = Callable[[bytes], bytes | None]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, answer: Answerer, asked: list[bytes]) -> None:
        self.answer, self.asked = answer, asked

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        self.asked.append(data)
        reply = self.answer(data)
        if reply is not None:
            self.transport.sendto(data[:2] + reply[2:], addr)


@contextlib.asynccontextmanager
async def _server(
    udp: Answerer, tcp: Answerer | None = None
) -> AsyncIterator[tuple[DnspythonResolver, list[bytes]]]:
    """A resolver asking a loopback server that answers with ``udp`` (and ``tcp``)."""
    asked: list[bytes] = []
    loop = asyncio.get_running_loop()

    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        data = await reader.readexactly(length)
        reply = (tcp or udp)(data)
        assert reply is not None
        writer.write(struct.pack("!H", len(reply)) + data[:2] + reply[2:])
        await writer.drain()
        writer.close()

    for _attempt in range(20):  # a TCP port whose UDP twin is free
        server = await asyncio.start_server(stream, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(udp, asked), local_addr=("127.0.0.1", port)
            )
            break
        except OSError:
            server.close()
            await server.wait_closed()
    else:
        raise AssertionError("no port free for both UDP and TCP")
    try:
        yield DnspythonResolver(["127.0.0.1"], port, timeout=2.0), asked
    finally:
        transport.close()
        server.close()
        await server.wait_closed()


def _fixed(data: bytes) -> Answerer:
    return lambda _query: data


async def test_addresses_in_answer_order_whatever_their_owner() -> None:
    async with _server(_fixed(READ["cname chain"])) as (resolver, asked):
        assert await resolver.lookup("h.example.com", Family.IPV4) == DnsAnswer(
            Family.IPV4, ("192.0.2.7",)
        )
    assert asked[0][2:] == dnswire.query("h.example.com", dnswire.A)[2:]
    aaaa = [bytes.fromhex("20010db8" + "00" * 11 + "01"), bytes(10) + b"\xff\xff\xc0\x00\x02\x01"]
    data = _message(*(_rr(HERE, dnswire.AAAA, rd) for rd in aaaa))
    async with _server(_fixed(data)) as (resolver, _):
        assert await resolver.lookup("h.example.com", Family.IPV6) == DnsAnswer(
            Family.IPV6, ("2001:db8::1", "::ffff:192.0.2.1")
        )


async def test_an_rcode_fails_with_its_name_and_first_ede() -> None:
    async with _server(_fixed(READ["first of two edes"])) as (resolver, _):
        assert await resolver.lookup("h.example.com", Family.IPV4) == DnsAnswer(
            Family.IPV4,
            failure=DnsFailure(DnsFailureKind.RCODE, "SERVFAIL", (6, "validation failure")),
        )
        caa = await resolver.lookup_caa("example.com")
        assert caa.failure == DnsFailure(
            DnsFailureKind.RCODE, "SERVFAIL", (6, "validation failure")
        )


@pytest.mark.parametrize("case", ["a pointer loop", "trailing junk", "an a record of 5 bytes"])
async def test_a_malformed_answer_is_a_server_failure(case: str) -> None:
    async with _server(_fixed(MALFORMED[case])) as (resolver, _):
        answer = await resolver.lookup("h.example.com", Family.IPV4)
        assert answer.failure == DnsFailure(DnsFailureKind.SERVER)
        assert (await resolver.lookup_caa("example.com")).failure == answer.failure
        assert await resolver.validating() is None


async def test_a_name_that_cannot_be_sent_is_a_server_failure_and_no_query() -> None:
    async with _server(_fixed(READ["a"])) as (resolver, asked):
        answer = await resolver.lookup("a" * 64 + ".example.com", Family.IPV4)
        assert answer.failure == DnsFailure(DnsFailureKind.SERVER)
        assert await resolver.validating("a..example") is None
    assert asked == []


async def test_odd_caa_tags_are_kept() -> None:
    rdata = [b'\x80\x06is-sue"x', b"\x00\x05issueletsencrypt.org", b"\x00\x00"]
    data = _message(*(_rr(HERE, dnswire.CAA, rd) for rd in rdata), _rr(HERE, dnswire.A, bytes(4)))
    async with _server(_fixed(data)) as (resolver, _):
        answer = await resolver.lookup_caa("example.com")
    assert answer.failure is None
    assert answer.records == (
        CaaRecord(128, b"is-sue", b'"x'),
        CaaRecord(0, b"issue", b"letsencrypt.org"),
        CaaRecord(0, b"", b""),
    )


async def test_a_truncated_answer_is_asked_again_over_tcp() -> None:
    truncated = _edit(_answer(), 2, b"\x87")  # TC, and no records
    async with _server(_fixed(truncated), _fixed(TWO_A)) as (resolver, _):
        answer = await resolver.lookup("h.example.com", Family.IPV4)
    assert answer == DnsAnswer(Family.IPV4, ("192.0.2.1", "192.0.2.2"))


async def test_still_truncated_over_tcp_fails_caa_only_and_before_the_rcode() -> None:
    still = _edit(_answer(rcode=dns.rcode.SERVFAIL), 2, b"\x87")
    async with _server(_fixed(still)) as (resolver, _):
        caa = await resolver.lookup_caa("example.com")
        assert caa.failure == DnsFailure(DnsFailureKind.TRUNCATED)
        answer = await resolver.lookup("h.example.com", Family.IPV4)
        assert answer.failure == DnsFailure(DnsFailureKind.RCODE, "SERVFAIL")
    # Still truncated over TCP, an address lookup reads what came.
    async with _server(_fixed(READ["truncated, well formed"])) as (resolver, _):
        answer = await resolver.lookup("h.example.com", Family.IPV4)
    assert answer == DnsAnswer(Family.IPV4, ("192.0.2.1",))


@pytest.mark.parametrize(
    ("flags", "rcode", "expected"), [(0x20, 0, True), (0, 0, False), (0x20, 2, False)]
)
async def test_the_validating_probe(flags: int, rcode: int, expected: bool) -> None:
    def answer(query: bytes) -> bytes:
        assert query[2:4] == b"\x01\x20" and query[-15:-11] == b"\x00\x06\x00\x01"  # RD AD, SOA
        return query[:2] + struct.pack("!H", 0x8180 | flags | rcode) + query[4:]

    async with _server(answer) as (resolver, _):
        assert await resolver.validating() is expected


async def test_a_silent_server_is_a_timeout() -> None:
    async with _server(lambda _query: None) as (resolver, asked):
        resolver.timeout = 0.2
        answer = await resolver.lookup("h.example.com", Family.IPV4)
        assert answer.failure == DnsFailure(DnsFailureKind.TIMEOUT)
        assert await resolver.validating() is None
    assert asked


def test_query_wires_are_kept_per_name_type_and_flags() -> None:
    resolver = DnspythonResolver(["127.0.0.1"], 53, 1.0)
    first = resolver._query("h.example.com", dnswire.A, 0)
    assert resolver._query("h.example.com", dnswire.A, 0) is first
    assert resolver._query("h.example.com", dnswire.A, dnswire.AD) != first
    resolver.QUERY_CACHE = 2
    resolver._query("x.example.com", dnswire.A, 0)
    assert len(resolver._queries) == 1  # the cache started again
