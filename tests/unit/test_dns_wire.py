"""The DNS seam's quick reader against dnspython: the same records, or no opinion.

The quick reader may decline any answer (dnspython then reads it); what it must never
do is read an answer differently from dnspython, or accept one dnspython refuses.
"""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.ipv4
import dns.ipv6
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from exporter.dns import DnspythonResolver, _query_wire, quick_answer


def _query(name: str, rdtype: str) -> bytes:
    wire = _query_wire(name, dns.rdatatype.from_text(rdtype), 0)
    assert wire is not None
    return wire


def _answer(
    name: str, rdtype: str, *, answer=(), authority=(), edns: bool = True, rcode: int = 0
) -> bytes:
    query = dns.message.from_wire(_query(name, rdtype))
    response = dns.message.make_response(query)
    if not edns:
        response.use_edns(False)
    response.set_rcode(rcode)
    for owner, kind, values in answer:
        response.answer.append(dns.rrset.from_text_list(owner, 60, "IN", kind, values))
    for owner, kind, values in authority:
        response.authority.append(dns.rrset.from_text_list(owner, 60, "IN", kind, values))
    return bytes(response.to_wire())


SOA = ("example.com.", "SOA", ["ns.example.com. host.example.com. 1 2 3 4 5"])

USUAL = {
    "a": (
        "h.example.com",
        "A",
        _answer("h.example.com", "A", answer=[("h.example.com.", "A", ["192.0.2.1", "192.0.2.2"])]),
    ),
    "aaaa": (
        "h.example.com",
        "AAAA",
        _answer(
            "h.example.com",
            "AAAA",
            answer=[("h.example.com.", "AAAA", ["2001:db8::1", "::ffff:192.0.2.1"])],
        ),
    ),
    "cname chain": (
        "w.example.com",
        "AAAA",
        _answer(
            "w.example.com",
            "AAAA",
            answer=[
                ("w.example.com.", "CNAME", ["h.example.com."]),
                ("h.example.com.", "AAAA", ["2001:db8::7"]),
            ],
        ),
    ),
    "nodata with soa": ("h.example.com", "AAAA", _answer("h.example.com", "AAAA", authority=[SOA])),
    "referral-ish ns": (
        "h.example.com",
        "A",
        _answer("h.example.com", "A", authority=[("example.com.", "NS", ["ns.example.com."])]),
    ),
    "no edns": (
        "h.example.com",
        "A",
        _answer("h.example.com", "A", edns=False, answer=[("h.example.com.", "A", ["192.0.2.9"])]),
    ),
    "caa": (
        "example.com",
        "CAA",
        _answer(
            "example.com",
            "CAA",
            answer=[("example.com.", "CAA", ['0 issue "letsencrypt.org"', '128 tbs "x"'])],
        ),
    ),
    "caa none": (
        "com",
        "CAA",
        _answer("com", "CAA", authority=[("com.", "SOA", ["a.gtld. nstld. 1 2 3 4 5"])]),
    ),
}


@pytest.mark.parametrize("case", sorted(USUAL))
def test_a_usual_answer_is_read_as_dnspython_reads_it(case: str) -> None:
    name, rdtype, data = USUAL[case]
    quick = quick_answer(data, _query(name, rdtype))
    assert quick is not None, "a usual answer is read quickly"
    message = dns.message.from_wire(data)
    kind = dns.rdatatype.from_text(rdtype)
    expected = [(int(rrset.rdtype), rdata.to_wire()) for rrset in message.answer for rdata in rrset]
    # Names in CNAME rdata stay as sent (compressed); only the types are compared there.
    assert [k for k, _ in quick] == [k for k, _ in expected]
    assert [rd for k, rd in quick if k != 5] == [rd for k, rd in expected if k != 5]
    if kind in (dns.rdatatype.A, dns.rdatatype.AAAA):
        text = {dns.rdatatype.A: dns.ipv4.inet_ntoa, dns.rdatatype.AAAA: dns.ipv6.inet_ntoa}[kind]
        assert [text(rd) for k, rd in quick if k == kind] == [
            rdata.address for rrset in message.answer if rrset.rdtype == kind for rdata in rrset
        ]


def _edit(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value) :]


def _with_ede() -> bytes:
    response = dns.message.make_response(dns.message.from_wire(_query("h.example.com", "A")))
    stale = dns.edns.EDEOption(dns.edns.EDECode.STALE_ANSWER, "x")
    response.use_edns(0, 0, 1232, options=[stale])
    return bytes(response.to_wire())


_A = USUAL["a"][2]
_NODATA = USUAL["nodata with soa"][2]

UNUSUAL = {
    "servfail": _answer("h.example.com", "A", rcode=dns.rcode.SERVFAIL),
    "nxdomain": _answer("h.example.com", "A", rcode=dns.rcode.NXDOMAIN),
    "truncated": _edit(_A, 2, bytes([_A[2] | 0x02])),
    "update opcode": _edit(_A, 2, bytes([_A[2] | 0x28])),
    "trailing junk": _A + b"\x00",
    "cut short": _A[:-3],
    "other question": _answer("x.example.com", "A"),
    "ede on noerror": _with_ede(),
    "txt in answer": _answer("h.example.com", "A", answer=[("h.example.com.", "TXT", ['"x"'])]),
    "a of the wrong length": _edit(_A, len(_A) - 11 - 6, b"\x00\x05"),
    "forward pointer": _edit(_A, 12 + 15 + 4, b"\xc0\x30"),  # the first owner name
    "mx in authority": _answer(
        "h.example.com", "A", authority=[("example.com.", "MX", ["10 mx.example.com."])]
    ),
    "caa in an address answer": _answer(
        "h.example.com", "A", answer=[("h.example.com.", "CAA", ['0 issue "x"'])]
    ),
}


@pytest.mark.parametrize("case", sorted(UNUSUAL))
def test_an_unusual_answer_is_left_to_dnspython(case: str) -> None:
    data = UNUSUAL[case]
    assert quick_answer(data, _query("h.example.com", "A")) is None


def test_a_forward_pointer_is_refused_by_both() -> None:
    with pytest.raises(dns.exception.DNSException):
        dns.message.from_wire(UNUSUAL["forward pointer"])


def test_the_soa_of_a_nodata_answer_must_be_whole() -> None:
    # The SOA's rdata length one byte short: dnspython refuses it; so must the reader.
    soa_length_at = _NODATA.rindex(b"\x00\x06\x00\x01") + 8
    (length,) = struct.unpack_from("!H", _NODATA, soa_length_at)
    broken = _edit(_NODATA, soa_length_at, struct.pack("!H", length - 1))
    with pytest.raises(dns.exception.DNSException):
        dns.message.from_wire(broken)
    assert quick_answer(broken, _query("h.example.com", "AAAA")) is None


def test_the_query_is_dnspythons_with_id_zero() -> None:
    query = dns.message.make_query("h.example.com", "AAAA", use_edns=0, payload=4096, id=0)
    assert _query_wire("h.example.com", dns.rdatatype.AAAA, 0) == query.to_wire()
    assert _query_wire("a" * 64 + ".example.com", dns.rdatatype.A, 0) is None


def test_query_wires_are_kept_per_name_type_and_flags() -> None:
    resolver = DnspythonResolver(["127.0.0.1"], 53, 1.0)
    first = resolver._query("h.example.com", dns.rdatatype.A)
    assert resolver._query("h.example.com", dns.rdatatype.A) is first
    assert resolver._query("h.example.com", dns.rdatatype.A, dns.flags.AD) != first
    resolver.QUERY_CACHE = 2
    resolver._query("x.example.com", dns.rdatatype.A)
    assert len(resolver._queries) == 1  # the cache started again
