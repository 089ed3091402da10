"""Go standard-library behaviour that Let's Encrypt's texts depend on.

Rule: pure functions, no I/O and no Let's Encrypt policy. Boulder is written in
Go, so the words it sends to users are formatted by Go's runtime: a body is
quoted with ``%q`` (``strconv.Quote``) and trimmed with ``unicode.IsSpace``.
Python's own ``repr`` and ``str.isspace`` differ in small ways that users would
see; this module reproduces Go's.
"""

from __future__ import annotations

__all__ = ["GO_SPACES", "go_quote", "trim_right_space"]

#: Go's unicode.IsSpace: Latin-1 spaces plus the White_Space property (Python's
#: str.isspace also counts U+001C..U+001F, which Go does not).
GO_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def trim_right_space(body: bytes) -> bytes:
    """strings.TrimRightFunc(string(body), unicode.IsSpace), on bytes."""
    text = body.decode("utf-8", errors="surrogateescape")
    end = len(text)
    while end > 0 and text[end - 1] in GO_SPACES:
        end -= 1
    return text[:end].encode("utf-8", errors="surrogateescape")


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(data: bytes) -> str:
    """Go's ``%q`` (strconv.Quote) of a byte string, invalid UTF-8 as ``\\xNN``."""
    out = ['"']
    text = data.decode("utf-8", errors="surrogateescape")
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch == " " or ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
