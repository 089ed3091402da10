"""DNS messages on the wire (pure): the query the exporter sends, the one reading of an answer.

A query asks one question with RD (and the flags given), EDNS0 and a 4096-byte buffer;
its name goes label by label in UTF-8, as it is (no IDNA, no punycode).

:func:`read` reads a whole answer, or refuses it as :class:`Malformed` where dnspython's
parser refuses it too: a short header; a label length byte of 64 to 191, a name over
255 bytes, a compression pointer that does not point before where its name (or the
previous pointer's target) began, which rules loops out; a record past the end, bytes
after the last one; an OPT record that is not the only one, in the additional section,
owned by the root; an A or AAAA record of the wrong length; a CNAME, NS, PTR, DNAME or
SOA record that its names do not fill; a CAA record without its flags and its whole
tag; an EDNS option past its record. Unlike dnspython, and like Let's Encrypt's library,
it keeps a CAA tag that is not alphanumeric and an EXTRA-TEXT that is not UTF-8, and
reads every opcode alike. The rdata of other types is kept unread, the question walked
over, not compared.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

A, NS, CNAME, SOA, PTR, AAAA, DNAME, OPT, CAA = 1, 2, 5, 6, 12, 28, 39, 41, 257
TC, RD, AD = 0x0200, 0x0100, 0x0020
_EDE = 15  # the Extended DNS Error option (RFC 8914)
#: The rdata of the types the reader checks: so many names, then so many bytes.
_SHAPES = {A: (0, 4), AAAA: (0, 16), SOA: (2, 20)} | dict.fromkeys((NS, CNAME, PTR, DNAME), (1, 0))
#: The query's OPT record: the root, OPT, a 4096-byte buffer, version 0, no flags, no options.
_OPT = b"\x00" + struct.pack("!HHIH", OPT, 4096, 0, 0)


class Unsendable(ValueError):
    """A name no query can carry: an empty label, a label over 63 bytes, over 255 in all."""


class Malformed(ValueError):
    """An answer that is not a well-formed DNS message."""


class Record(NamedTuple):
    """One record of the answer section: its type and its rdata, as received."""

    rdtype: int
    rdata: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer: the header's flags, the rcode (extended by the OPT record), the answer
    section in order, and the first Extended DNS Error as (INFO-CODE, EXTRA-TEXT)."""

    flags: int
    rcode: int
    answers: tuple[Record, ...]
    ede: tuple[int, str] | None = None


def query(name: str, rdtype: int, flags: int = 0) -> bytes:
    """The query for ``name``/``rdtype`` with ID 0 (each query gets its own ID later)."""
    stripped = name.rstrip(".")
    labels = [label.encode() for label in stripped.split(".")] if stripped else []
    if not all(0 < len(label) < 64 for label in labels):
        raise Unsendable(name)
    qname = b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"
    if len(qname) > 255:
        raise Unsendable(name)
    header = struct.pack("!6H", 0, RD | flags, 1, 0, 0, 1)
    return header + qname + struct.pack("!HH", rdtype, 1) + _OPT


def _name_end(wire: bytes, offset: int) -> int:
    """The offset after the name at ``offset``: the one name walker."""
    limit, end, total = offset, -1, 1
    while True:
        length = wire[offset]
        if length == 0:
            return offset + 1 if end < 0 else end
        if length >= 0xC0:
            target = (length & 0x3F) << 8 | wire[offset + 1]
            if target >= limit:
                raise Malformed("a compression pointer that does not point back")
            end = offset + 2 if end < 0 else end
            limit = offset = target
            continue
        total += length + 1
        if length > 63 or total > 255:
            raise Malformed("a label or a name too long")
        offset += 1 + length


def _check(wire: bytes, rdtype: int, start: int, end: int) -> None:
    """Refuse the rdata of a type the reader knows when it is not well formed."""
    if rdtype in _SHAPES:
        names, fixed = _SHAPES[rdtype]
        for _ in range(names):
            start = _name_end(wire, start)
        if start + fixed != end:
            raise Malformed(f"a type {rdtype} record of the wrong shape")
    if rdtype == CAA and (end - start < 2 or 2 + wire[start + 1] > end - start):
        raise Malformed("a CAA tag past its record")


def _first_ede(wire: bytes, start: int, end: int) -> tuple[int, str] | None:
    """The first EDE option of the OPT rdata from ``start`` to ``end``: one final NUL
    dropped, the bytes that are not UTF-8 kept as ``surrogateescape`` surrogates."""
    found = None
    while start < end:
        code, length = struct.unpack_from("!HH", wire, start)
        start += 4 + length
        if start > end or (code == _EDE and length < 2):
            raise Malformed("an EDNS option past its record")
        if code == _EDE and found is None:
            found = wire[start - length : start]
    if found is None:
        return None
    text = found[2:].removesuffix(b"\x00").decode("utf-8", "surrogateescape")
    return int.from_bytes(found[:2], "big"), text


def read(wire: bytes) -> Reply:
    """The answer ``wire``, every section walked, the answer section kept."""
    try:
        flags, qdcount, *counts = struct.unpack_from("!5H", wire, 2)
        offset = 12
        for _ in range(qdcount):
            offset = _name_end(wire, offset) + 4
        answers: list[Record] = []
        rcode, ede, opt = flags & 0x0F, None, False
        for section, count in enumerate(counts):
            for _ in range(count):
                owner = offset
                offset = _name_end(wire, offset)
                rdtype, _class, ttl, rdlength = struct.unpack_from("!HHIH", wire, offset)
                start = offset + 10
                offset = start + rdlength
                if offset > len(wire):
                    raise Malformed("a record past the end")
                if rdtype == OPT:
                    if section != 2 or opt or wire[owner] != 0:
                        raise Malformed("an OPT record out of place")
                    rcode |= ttl >> 24 << 4
                    ede, opt = _first_ede(wire, start, offset), True
                _check(wire, rdtype, start, offset)
                if section == 0:
                    answers.append(Record(rdtype, wire[start:offset]))
    except (IndexError, struct.error) as exc:
        raise Malformed("a message cut short") from exc
    if offset != len(wire):
        raise Malformed("bytes after the last record")
    return Reply(flags, rcode, tuple(answers), ede)
