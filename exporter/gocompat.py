"""Go standard-library behaviour that Let's Encrypt's texts and decisions depend on.

Rule: pure functions, no I/O, and of Let's Encrypt's policy only how Boulder sorts
the errors Go's client returns. Boulder is written in Go, so the words it sends to
users are formatted by Go's runtime, and what it accepts is what Go's standard
library accepts. Python's own libraries differ in small ways that users would see;
this module reproduces Go's (Go 1.26, the version Boulder is built with):

* ``fmt``/``strconv``/``strings``/``unicode``: ``%q`` quoting (:func:`go_quote`),
  ``unicode.IsSpace`` trimming (:func:`trim_right_space`), ``strings.ToLower``
  (:func:`to_lower`);
* ``net/url``: parsing a ``Location``, resolving it and printing the result
  (:class:`GoURL`);
* ``net/http``: the client's reader of a chunked body and its error texts
  (:class:`ChunkedBody`), and how it frames a response from its Transfer-Encoding and
  Content-Length (:func:`response_framing`, :func:`response_head`);
* ``compress/gzip``: the reader the client puts under a body it asked to be gzipped, and
  its error texts (:class:`GzipBody`);
* ``crypto/tls``: alert texts (:func:`tls_remote_error`, with the alert read from
  OpenSSL's report: :func:`tls_alert`) and the client's defaults (:data:`TLS12_CIPHER_SUITES`,
  :data:`TLS_GROUPS`, :data:`TLS_SIGNATURE_ALGORITHMS`);
* what Go's client returns when a request fails, in its words, and how Boulder's
  ``detailedError`` sorts it (:func:`client_error`, :func:`read_error`): the one
  translation of a failed request into Let's Encrypt's terms.
"""

from __future__ import annotations

import ipaddress
import re
import zlib
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Protocol

from exporter.records import Reason

__all__ = [
    "GO_SPACES",
    "NEED_MORE",
    "TLS12_CIPHER_SUITES",
    "TLS_ALERT_TEXT",
    "TLS_GROUPS",
    "TLS_SIGNATURE_ALGORITHMS",
    "ChunkedBody",
    "ClientFailure",
    "Framing",
    "GoURL",
    "GoURLError",
    "GzipBody",
    "ResponseHeadError",
    "client_error",
    "go_quote",
    "join_host_port",
    "read_error",
    "response_framing",
    "response_head",
    "tls_alert",
    "tls_remote_error",
    "to_lower",
    "trim_right_space",
]

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


# ------------------------------------------------------------------------ crypto/tls

#: crypto/tls alert.go ``alertText`` (Go 1.26): the words after ``tls: `` for each alert.
TLS_ALERT_TEXT: dict[int, str] = {
    0: "close notify",
    10: "unexpected message",
    20: "bad record MAC",
    21: "decryption failed",
    22: "record overflow",
    30: "decompression failure",
    40: "handshake failure",
    42: "bad certificate",
    43: "unsupported certificate",
    44: "revoked certificate",
    45: "expired certificate",
    46: "unknown certificate",
    47: "illegal parameter",
    48: "unknown certificate authority",
    49: "access denied",
    50: "error decoding message",
    51: "error decrypting message",
    60: "export restriction",
    70: "protocol version not supported",
    71: "insufficient security level",
    80: "internal error",
    86: "inappropriate fallback",
    90: "user canceled",
    100: "no renegotiation",
    109: "missing extension",
    110: "unsupported extension",
    111: "certificate unobtainable",
    112: "unrecognized name",
    113: "bad certificate status response",
    114: "bad certificate hash value",
    115: "unknown PSK identity",
    116: "certificate required",
    120: "no application protocol",
    121: "encrypted client hello required",
}


def tls_remote_error(alert: int) -> str:
    """What Go's TLS client reports for an alert the server sent.

    ``&net.OpError{Op: "remote error", Err: alert(n)}``: ``remote error: tls: <text>``,
    ``tls: alert(<n>)`` for a number Go has no text for.
    """
    text = TLS_ALERT_TEXT.get(alert, f"alert({alert})")
    return f"remote error: tls: {text}"


#: OpenSSL's reasons for "the peer sent alert N" (reason code 1000 + N, ssl/sslerr.h), by
#: name. ``ssl.SSLError.reason`` carries the name when Python knows it; otherwise the
#: message carries OpenSSL's reason string, the same name in lower case with spaces
#: (Python 3.11 has no name for 115 and 120). ``_ssl``'s own table is private.
_OPENSSL_ALERTS = {
    "SSLV3_ALERT_UNEXPECTED_MESSAGE": 10,
    "SSLV3_ALERT_BAD_RECORD_MAC": 20,
    "TLSV1_ALERT_DECRYPTION_FAILED": 21,
    "TLSV1_ALERT_RECORD_OVERFLOW": 22,
    "SSLV3_ALERT_DECOMPRESSION_FAILURE": 30,
    "SSLV3_ALERT_HANDSHAKE_FAILURE": 40,
    "SSLV3_ALERT_NO_CERTIFICATE": 41,
    "SSLV3_ALERT_BAD_CERTIFICATE": 42,
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": 43,
    "SSLV3_ALERT_CERTIFICATE_REVOKED": 44,
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": 45,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": 46,
    "SSLV3_ALERT_ILLEGAL_PARAMETER": 47,
    "TLSV1_ALERT_UNKNOWN_CA": 48,
    "TLSV1_ALERT_ACCESS_DENIED": 49,
    "TLSV1_ALERT_DECODE_ERROR": 50,
    "TLSV1_ALERT_DECRYPT_ERROR": 51,
    "TLSV1_ALERT_EXPORT_RESTRICTION": 60,
    "TLSV1_ALERT_PROTOCOL_VERSION": 70,
    "TLSV1_ALERT_INSUFFICIENT_SECURITY": 71,
    "TLSV1_ALERT_INTERNAL_ERROR": 80,
    "TLSV1_ALERT_INAPPROPRIATE_FALLBACK": 86,
    "TLSV1_ALERT_USER_CANCELLED": 90,
    "TLSV1_ALERT_NO_RENEGOTIATION": 100,
    "TLSV13_ALERT_MISSING_EXTENSION": 109,
    "TLSV1_UNSUPPORTED_EXTENSION": 110,
    "TLSV1_CERTIFICATE_UNOBTAINABLE": 111,
    "TLSV1_UNRECOGNIZED_NAME": 112,
    "TLSV1_BAD_CERTIFICATE_STATUS_RESPONSE": 113,
    "TLSV1_BAD_CERTIFICATE_HASH_VALUE": 114,
    "TLSV1_ALERT_UNKNOWN_PSK_IDENTITY": 115,
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": 116,
    "TLSV1_ALERT_NO_APPLICATION_PROTOCOL": 120,
}
_SSL_MESSAGE = re.compile(r"^\[SSL(?:: [A-Z0-9_]+)?\] (.*?) \(_ssl\.c:\d+\)$")


def _plaintext_alert(received: bytes) -> int | None:
    """The last fatal alert sent in the clear (a 2-byte record of type 21), if any.

    Alerts during a handshake are plaintext until encryption starts (TLS 1.2: the
    server's Finished; TLS 1.3: after ServerHello); this finds the number of one
    that OpenSSL has no name for.
    """
    alert, pos = None, 0
    while pos + 5 <= len(received):
        kind, length = received[pos], int.from_bytes(received[pos + 3 : pos + 5], "big")
        if kind == 21 and length == 2 and pos + 7 <= len(received) and received[pos + 5] == 2:
            alert = received[pos + 6]
        pos += 5 + length
    return alert


def tls_alert(reason: str | None, message: str, handshake: bytes = b"") -> int | None:
    """The alert the server sent, from OpenSSL's report of a failure (an ``ssl.SSLError``'s
    ``reason`` and message), else from the plaintext ``handshake`` bytes when OpenSSL
    named no reason; ``None`` when the failure was not an alert from the peer."""
    name = reason
    if name is None:
        match = _SSL_MESSAGE.match(message)
        name = match.group(1).upper().replace(" ", "_") if match else None
    if name in _OPENSSL_ALERTS:
        return _OPENSSL_ALERTS[name]
    return _plaintext_alert(handshake) if reason is None else None


class ClientFailure(Protocol):
    """A request that failed, as facts (``exporter.connection.Failure``): where it failed
    (``handshake``, ``response``: before the final response head was read, or ``body``),
    and what the socket, TLS or the parser said."""

    @property
    def stage(self) -> str: ...

    timeout: bool  # the TLS handshake outlasted its timeout
    reset: bool  # ECONNRESET
    alert: int | None  # a TLS alert the server sent
    received: int  # bytes of the response received before the failure
    http2: bool  # the response's first bytes were an HTTP/2 frame
    text: str  # Go's own words, where one of Go's readers (above) said them
    local: str  # our end, host:port as Go prints it
    remote: str  # the address dialled, host:port


def join_host_port(host: str, port: int) -> str:
    """net.JoinHostPort: ``host:port``, the host in brackets when it has a colon."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def read_error(failure: ClientFailure) -> str:
    """Go's text for a body read that failed (what ``io.ReadAll`` returns): the TLS alert,
    the reset as ``net.OpError`` prints it (our address and port, then the server's), a
    reader's own words, else ``unexpected EOF``."""
    if failure.alert is not None:
        return tls_remote_error(failure.alert)
    if failure.reset:
        return f"read tcp {failure.local}->{failure.remote}: read: connection reset by peer"
    return failure.text or "unexpected EOF"


def client_error(failure: ClientFailure) -> tuple[Reason, str]:
    """How Boulder's ``detailedError`` sorts what Go's client returned for ``failure``, and
    the words it keeps (the alert text; a body read's error).

    Only a reset before any byte of the response is ``Connection reset by peer``; once
    any has arrived Go reports a broken response (erratum 13). An alert on the first read
    after a TLS 1.3 handshake (a client certificate required) is reported as the
    handshake's would be.
    """
    if failure.alert is not None and failure.stage != "body":
        return Reason.TLS_ALERT, tls_remote_error(failure.alert)
    if failure.stage == "handshake":
        if failure.timeout:
            return Reason.TLS_HANDSHAKE_TIMEOUT, ""
        return (Reason.CONNECTION_RESET if failure.reset else Reason.TLS_ERROR), failure.text
    if failure.stage == "response":
        if failure.reset and failure.received == 0:
            return Reason.CONNECTION_RESET, ""
        if failure.http2:
            return Reason.HTTP2_OVER_HTTP, ""
        return Reason.PROTOCOL_ERROR, failure.text
    return Reason.BODY_READ_ERROR, read_error(failure)


#: crypto/tls defaults.go (Go 1.26, GODEBUG defaults): the TLS 1.2 cipher suites a Go client
#: offers, in OpenSSL's names. No RSA key exchange (Go 1.22), no 3DES (Go 1.23), no
#: CBC-SHA256 and no DHE (never). TLS 1.3 suites are the same three everywhere.
TLS12_CIPHER_SUITES = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
)

#: crypto/tls defaults.go (Go 1.26): the key-exchange groups a Go client offers, in
#: OpenSSL's names, less X25519MLKEM768 where the local OpenSSL has no ML-KEM (before
#: 3.5). No X448 and no finite-field groups, which OpenSSL offers by default.
TLS_GROUPS = ("X25519MLKEM768", "X25519", "P-256", "P-384", "P-521")

#: crypto/tls defaults.go (Go 1.26): the signature algorithms a Go client offers, in
#: OpenSSL's names. The SHA-1 ones are in Go's list but refused in TLS 1.2 since Go 1.25
#: (``tlssha1=0``) and never allowed in TLS 1.3; no Ed448, no RSA-PSS with PSS keys
#: (``rsa_pss_pss_*``), no SHA-224, which OpenSSL offers by default.
TLS_SIGNATURE_ALGORITHMS = (
    "rsa_pss_rsae_sha256",
    "ecdsa_secp256r1_sha256",
    "ed25519",
    "rsa_pss_rsae_sha384",
    "rsa_pss_rsae_sha512",
    "rsa_pkcs1_sha256",
    "rsa_pkcs1_sha384",
    "rsa_pkcs1_sha512",
    "ecdsa_secp384r1_sha384",
    "ecdsa_secp521r1_sha512",
)


# ------------------------------------------------------------------------------ strings


def to_lower(text: str) -> str:
    """strings.ToLower: ASCII fast path, else unicode.ToLower per rune.

    Go's per-rune mapping is the simple one (U+0130 becomes ``i``, a final sigma stays
    ``σ``), and a byte that is not UTF-8 (here a surrogate escape) becomes U+FFFD.
    """
    if text.isascii():
        return text.lower()
    out = []
    for ch in text:
        if 0xDC80 <= ord(ch) <= 0xDCFF:
            out.append("\ufffd")
        else:
            out.append(ch.lower()[0])
    return "".join(out)


# ------------------------------------------------------------------------------ net/url
#
# Go's net/url (Go 1.26, urlstrictcolons=1) as the HTTP client uses it for a redirect:
# ``req.URL.Parse(location)`` (Parse, then ResolveReference) and ``URL.String()``. Go
# strings are bytes, so the URL's parts are bytes here; text comes in and goes out with
# undecodable bytes as surrogate escapes.

_PATH, _PATH_SEGMENT, _HOST, _ZONE, _USER_PASSWORD, _QUERY_COMPONENT, _FRAGMENT = range(1, 8)
_HEX = b"0123456789abcdefABCDEF"


class GoURLError(ValueError):
    """url.Parse failed; the message is Go's (it is never shown to users by Boulder)."""


def _should_escape(c: int, mode: int) -> bool:
    if 0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A or 0x30 <= c <= 0x39:
        return False
    if mode in (_HOST, _ZONE) and c in b"!$&'()*+,;=:[]<>\"":
        return False
    if c in b"-_.~":
        return False
    if c in b"$&+,/:;=?@":
        if mode == _PATH:
            return c == 0x3F
        if mode == _PATH_SEGMENT:
            return c in b"/;,?"
        if mode == _USER_PASSWORD:
            return c in b"@/?:"
        if mode == _QUERY_COMPONENT:
            return True
        if mode == _FRAGMENT:
            return False
    return not (mode == _FRAGMENT and c in b"!()*")


def _unhex(c: int) -> int:
    return int(chr(c), 16)


def _unescape(s: bytes, mode: int) -> bytes:
    """url.unescape: %XX decoding, with the host's and the zone's restrictions."""
    i, count = 0, 0
    while i < len(s):
        c = s[i]
        if c == 0x25:  # %
            count += 1
            if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise GoURLError(f"invalid URL escape {go_quote(s[i : i + 3])}")
            if mode == _HOST and _unhex(s[i + 1]) < 8 and s[i : i + 3] != b"%25":
                raise GoURLError(f"invalid URL escape {go_quote(s[i : i + 3])}")
            if mode == _ZONE:
                v = _unhex(s[i + 1]) << 4 | _unhex(s[i + 2])
                if s[i : i + 3] != b"%25" and v != 0x20 and _should_escape(v, _HOST):
                    raise GoURLError(f"invalid URL escape {go_quote(s[i : i + 3])}")
            i += 3
        else:
            if mode in (_HOST, _ZONE) and c < 0x80 and _should_escape(c, mode):
                raise GoURLError(f"invalid character {go_quote(s[i : i + 1])} in host name")
            i += 1
    if count == 0 and not (mode == _QUERY_COMPONENT and b"+" in s):
        return s
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == 0x25:
            out.append(_unhex(s[i + 1]) << 4 | _unhex(s[i + 2]))
            i += 3
            continue
        out.append(0x20 if c == 0x2B and mode == _QUERY_COMPONENT else c)
        i += 1
    return bytes(out)


def _escape(s: bytes, mode: int) -> bytes:
    out = bytearray()
    for c in s:
        if c == 0x20 and mode == _QUERY_COMPONENT:
            out.append(0x2B)
        elif _should_escape(c, mode):
            out += b"%%%02X" % c
        else:
            out.append(c)
    return bytes(out)


def _valid_encoded(s: bytes, mode: int) -> bool:
    return all(c in b"!$&'()*+,;=:@[]%" or not _should_escape(c, mode) for c in s)


def _valid_optional_port(port: bytes) -> bool:
    if port == b"":
        return True
    return port[:1] == b":" and all(0x30 <= c <= 0x39 for c in port[1:])


def _valid_userinfo(s: bytes) -> bool:
    return all(
        0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A or 0x30 <= c <= 0x39 or c in b"-._:~!$&'()*+,;=%@"
        for c in s
    )


def _parse_ip(text: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """netip.ParseAddr, for the checks net/url makes on a bracketed host."""
    try:
        return ipaddress.ip_address(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


def _parse_host(scheme: bytes, host: bytes) -> bytes:
    """url.parseHost (Go 1.26): brackets hold an IPv6 literal only; one colon at most."""
    open_bracket = host.rfind(b"[")
    if open_bracket > 0:
        raise GoURLError("invalid IP-literal")
    if open_bracket == 0:
        close = host.rfind(b"]")
        if close < 0:
            raise GoURLError("missing ']' in host")
        colon_port = host[close + 1 :]
        if not _valid_optional_port(colon_port):
            raise GoURLError(f"invalid port {go_quote(colon_port)} after host")
        colon_port = _unescape(colon_port, _HOST)
        name = host[1:close]
        zone = name.find(b"%25")
        if zone >= 0:
            literal = _unescape(name[:zone], _HOST) + _unescape(name[zone:], _ZONE)
        else:
            literal = _unescape(name, _HOST)
        ip = _parse_ip(literal)
        if ip is None:
            raise GoURLError("invalid host")
        if ip.version == 4:
            raise GoURLError("invalid IP-literal")
        return b"[" + literal + b"]" + colon_port
    first = host.find(b":")
    if first >= 0:
        last = host.rfind(b":")
        # Strict colons for http and https (go.dev/issue/75223): the port follows the
        # first colon, so "h:80:80" has the port ":80:80", which is invalid.
        colon = first if scheme in (b"http", b"https") else last
        if not _valid_optional_port(host[colon:]):
            raise GoURLError(f"invalid port {go_quote(host[colon:])} after host")
    return _unescape(host, _HOST)


def _resolve_path(base: bytes, ref: bytes) -> bytes:
    """url.resolvePath: RFC 3986 dot-segment removal, Go's way."""
    if ref == b"":
        full = base
    elif ref[:1] != b"/":
        full = base[: base.rfind(b"/") + 1] + ref
    else:
        full = ref
    if full == b"":
        return b""
    dst = bytearray(b"/")
    first, elem, remaining, found = True, b"", full, True
    while found:
        elem, sep, remaining = remaining.partition(b"/")
        found = bool(sep)
        if elem == b".":
            first = False
            continue
        if elem == b"..":
            i = dst.rfind(b"/", 1)
            del dst[i if i > 0 else 1 :]
            first = len(dst) == 1
        else:
            if not first:
                dst += b"/"
            dst += elem
            first = False
    if elem in (b".", b".."):
        dst += b"/"
    if len(dst) > 1 and dst[1:2] == b"/":
        return bytes(dst[1:])
    return bytes(dst)


def _split_host_port(hostport: bytes) -> tuple[bytes, bytes]:
    """url.splitHostPort: a valid port after the last colon; brackets removed."""
    host, port = hostport, b""
    colon = host.rfind(b":")
    if colon != -1 and _valid_optional_port(host[colon:]):
        host, port = host[:colon], host[colon + 1 :]
    if host.startswith(b"[") and host.endswith(b"]"):
        host = host[1:-1]
    return host, port


def _b(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


def _s(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


@dataclass(frozen=True, slots=True)
class GoURL:
    """net/url.URL. Text in and out: undecodable bytes travel as surrogate escapes."""

    scheme: bytes = b""
    opaque: bytes = b""
    user: tuple[bytes, bytes | None] | None = None  # (username, password if set)
    host: bytes = b""
    path: bytes = b""
    raw_path: bytes = b""
    omit_host: bool = False
    force_query: bool = False
    raw_query: bytes = b""
    fragment: bytes = b""
    raw_fragment: bytes = b""

    # ---------------------------------------------------------------- parsing

    @classmethod
    def parse(cls, text: str) -> GoURL:
        """url.Parse; raises :class:`GoURLError` where Go returns an error."""
        raw, _, fragment = _b(text).partition(b"#")
        url = cls._parse(raw)
        if fragment:
            decoded = _unescape(fragment, _FRAGMENT)
            url = replace(
                url,
                fragment=decoded,
                raw_fragment=b"" if _escape(decoded, _FRAGMENT) == fragment else fragment,
            )
        return url

    @classmethod
    def _parse(cls, raw: bytes) -> GoURL:
        if any(c < 0x20 or c == 0x7F for c in raw):
            raise GoURLError("net/url: invalid control character in URL")
        if raw == b"*":
            return cls(path=b"*")
        scheme, rest = b"", raw
        for i, c in enumerate(raw):
            if 0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A:
                continue
            if 0x30 <= c <= 0x39 or c in b"+-.":
                if i == 0:
                    break
                continue
            if c == 0x3A:
                if i == 0:
                    raise GoURLError("missing protocol scheme")
                scheme, rest = raw[:i].lower(), raw[i + 1 :]
            break
        force_query, raw_query = False, b""
        if rest.endswith(b"?") and rest.count(b"?") == 1:
            force_query, rest = True, rest[:-1]
        else:
            rest, _, raw_query = rest.partition(b"?")
        if not rest.startswith(b"/"):
            if scheme:
                return cls(scheme=scheme, opaque=rest, force_query=force_query, raw_query=raw_query)
            if b":" in rest.partition(b"/")[0]:
                raise GoURLError("first path segment in URL cannot contain colon")
        user: tuple[bytes, bytes | None] | None = None
        host, omit_host = b"", False
        if (scheme or not rest.startswith(b"///")) and rest.startswith(b"//"):
            authority, rest = rest[2:], b""
            slash = authority.find(b"/")
            if slash >= 0:
                authority, rest = authority[:slash], authority[slash:]
            at = authority.rfind(b"@")
            host = _parse_host(scheme, authority[at + 1 :])
            if at >= 0:
                userinfo = authority[:at]
                if not _valid_userinfo(userinfo):
                    raise GoURLError("net/url: invalid userinfo")
                name, colon, password = userinfo.partition(b":")
                user = (
                    _unescape(name, _USER_PASSWORD),
                    _unescape(password, _USER_PASSWORD) if colon else None,
                )
        elif scheme and rest.startswith(b"/"):
            omit_host = True
        return cls(
            scheme=scheme,
            user=user,
            host=host,
            omit_host=omit_host,
            force_query=force_query,
            raw_query=raw_query,
        )._with_path(rest)

    def _with_path(self, escaped: bytes) -> GoURL:
        """URL.setPath: Path decoded, RawPath kept only when it differs from the default."""
        path = _unescape(escaped, _PATH)
        return replace(
            self, path=path, raw_path=b"" if _escape(path, _PATH) == escaped else escaped
        )

    def resolve(self, text: str) -> GoURL:
        """URL.Parse(ref): parse ``text`` and resolve it against this URL (RFC 3986 5.2)."""
        ref = GoURL.parse(text)
        scheme = ref.scheme or self.scheme
        if ref.scheme or ref.host or ref.user is not None:
            return replace(ref, scheme=scheme)._with_path(_resolve_path(ref.escaped_path(), b""))
        if ref.opaque:
            return replace(ref, scheme=scheme, user=None, host=b"", path=b"")
        url = replace(ref, scheme=scheme)
        if ref.path == b"" and not ref.force_query and ref.raw_query == b"":
            url = replace(url, raw_query=self.raw_query)
            if ref.fragment == b"":
                url = replace(url, fragment=self.fragment, raw_fragment=self.raw_fragment)
        if ref.path == b"" and self.opaque:
            return replace(url, opaque=self.opaque, user=None, host=b"", path=b"")
        url = replace(url, host=self.host, user=self.user)
        return url._with_path(_resolve_path(self.escaped_path(), ref.escaped_path()))

    # --------------------------------------------------------------- accessors

    def escaped_path(self) -> bytes:
        if self.raw_path and _valid_encoded(self.raw_path, _PATH):
            try:
                if _unescape(self.raw_path, _PATH) == self.path:
                    return self.raw_path
            except GoURLError:
                pass
        if self.path == b"*":
            return b"*"
        return _escape(self.path, _PATH)

    def escaped_fragment(self) -> bytes:
        if self.raw_fragment and _valid_encoded(self.raw_fragment, _FRAGMENT):
            try:
                if _unescape(self.raw_fragment, _FRAGMENT) == self.fragment:
                    return self.raw_fragment
            except GoURLError:
                pass
        return _escape(self.fragment, _FRAGMENT)

    def string(self) -> str:
        """URL.String()."""
        out = bytearray()
        if self.scheme:
            out += self.scheme + b":"
        if self.opaque:
            out += self.opaque
        else:
            no_authority = self.omit_host and self.host == b"" and self.user is None
            if (self.scheme or self.host or self.user is not None) and not no_authority:
                if self.host or self.path or self.user is not None:
                    out += b"//"
                if self.user is not None:
                    name, password = self.user
                    out += _escape(name, _USER_PASSWORD)
                    if password is not None:
                        out += b":" + _escape(password, _USER_PASSWORD)
                    out += b"@"
                if self.host:
                    out += _escape(self.host, _HOST)
            path = self.escaped_path()
            if no_authority and path.startswith(b"//"):
                out += b"%2F"
                path = path[1:]
            if path and path[:1] != b"/" and self.host:
                out += b"/"
            if not out and b":" in path.partition(b"/")[0]:
                out += b"./"
            out += path
        if self.force_query or self.raw_query:
            out += b"?" + self.raw_query
        if self.fragment:
            out += b"#" + self.escaped_fragment()
        return _s(bytes(out))

    @property
    def host_text(self) -> str:
        """URL.Host: host[:port] as parsed (what Go's client sends as the Host header)."""
        return _s(self.host)

    def hostname(self) -> str:
        """URL.Hostname(): the host without a valid port, brackets removed."""
        return _s(_split_host_port(self.host)[0])

    def port(self) -> str:
        """URL.Port(): the digits after the last colon, or ``""``."""
        return _s(_split_host_port(self.host)[1])

    @property
    def path_text(self) -> str:
        return _s(self.path)

    def with_host(self, host: str) -> GoURL:
        return replace(self, host=_b(host))


# ------------------------------------------------------------------- net/http chunked

#: net/http's bufio.Reader size on a client connection (Transport.ReadBufferSize, 4 KiB).
_BUFIO_SIZE = 4096

#: What :meth:`ChunkedBody.read` yields when it would block: feed it or close it, then resume.
NEED_MORE = None


class ChunkedBody:
    """Go's client-side reader of a chunked body (net/http/internal/chunked.go, Go 1.26,
    and ``body.readTrailer`` from transfer.go), fed with bytes as they arrive.

    Pure: the caller does the I/O. :meth:`read` and :meth:`read_all` are generators that
    yield :data:`NEED_MORE` wherever Go's reader would block on the connection; the caller
    then :meth:`feed`\\ s the next bytes received (or :meth:`close`\\ s at EOF) and resumes.
    Bytes already received count as buffered, as they would be in Go's ``bufio.Reader``.
    Errors are Go's texts (``invalid byte in chunk length``, ``malformed chunked
    encoding``, ``unexpected EOF``, ...).
    """

    def __init__(self) -> None:
        self._data = bytearray()
        self._closed = False
        self._left = 0  # unread bytes of the current chunk (cr.n)
        self._check_end = False  # the CRLF after a chunk's data is due
        self._excess = 0
        self._error: str | None = None  # sticky (cr.err other than EOF)
        self._eof = False  # the last chunk and the trailer were read

    # ------------------------------------------------------------------ input

    def feed(self, data: bytes) -> None:
        self._data += data

    def close(self) -> None:
        """The connection ended: reads that need more bytes now fail as Go's do."""
        self._closed = True

    # ------------------------------------------------------------- buffer ops

    def _take(self, n: int) -> bytes:
        out = bytes(self._data[:n])
        del self._data[:n]
        return out

    def _wait(self, n: int) -> Generator[None, None, bool]:
        """Block until ``n`` bytes are buffered; False if the connection ends first."""
        while len(self._data) < n:
            if self._closed:
                return False
            yield NEED_MORE
        return True

    def _read_line(self) -> Generator[None, None, bytes]:
        """readChunkLine: a CRLF-terminated line within the 4 KiB buffer."""
        while True:
            end = self._data.find(b"\n", 0, _BUFIO_SIZE)
            if end >= 0:
                break
            if len(self._data) >= _BUFIO_SIZE:
                raise _ChunkError("header line too long")  # bufio.ErrBufferFull
            if self._closed:
                self._data.clear()
                raise _ChunkError("unexpected EOF")
            yield NEED_MORE
        line = self._take(end + 1)
        cr = line.find(b"\r")
        if cr < 0:
            raise _ChunkError("chunked line ends with bare LF")
        if cr != len(line) - 2:
            raise _ChunkError("invalid CR in chunked line")
        line = line[:-2]
        if len(line) >= _BUFIO_SIZE:
            raise _ChunkError("header line too long")
        return line

    # ---------------------------------------------------------- chunkedReader

    def _begin_chunk(self) -> Generator[None, None, bool]:
        """chunkedReader.beginChunk; True at the last (zero-length) chunk."""
        line = yield from self._read_line()
        self._excess += len(line) + 2
        line = line.rstrip(b" \t").partition(b";")[0]
        if not line:
            raise _ChunkError("empty hex number for chunk length")
        size = 0
        for i, c in enumerate(line):
            if c not in b"0123456789abcdefABCDEF":
                raise _ChunkError("invalid byte in chunk length")
            if i == 16:
                raise _ChunkError("http chunk length too large")
            size = size << 4 | int(chr(c), 16)
        self._left = size
        self._excess = max(self._excess - (16 + 2 * size), 0)
        if size == 0:
            return True
        if self._excess > 16 * 1024:
            raise _ChunkError("chunked encoding contains too much non-data")
        return False

    def _chunked_read(self, size: int, out: bytearray) -> Generator[None, None, bool]:
        """chunkedReader.Read into ``out`` (up to ``size`` bytes); True at the last chunk."""
        n = 0
        while True:
            if self._check_end:
                if n > 0 and len(self._data) < 2:
                    return False
                if not (yield from self._wait(2)):
                    self._data.clear()
                    raise _ChunkError("unexpected EOF")
                if self._take(2) != b"\r\n":
                    raise _ChunkError("malformed chunked encoding")
                self._check_end = False
            if self._left == 0:
                if n > 0 and self._data.find(b"\n", 0, _BUFIO_SIZE) < 0:
                    return False
                if (yield from self._begin_chunk()):
                    return True
                continue
            if n == size:
                return False
            if not (yield from self._wait(1)):
                raise _ChunkError("unexpected EOF")
            data = self._take(min(size - n, self._left))
            out += data
            n += len(data)
            self._left -= len(data)
            if self._left == 0:
                self._check_end = True

    def _read_trailer(self) -> Generator[None, None, None]:
        """body.readTrailer: an empty trailer, or one ending in CRLF CRLF within 4 KiB."""
        yield from self._wait(2)
        if self._data[:2] == b"\r\n":
            self._take(2)
            return
        if len(self._data) < 2:
            raise _ChunkError("http: unexpected EOF reading trailer")
        while True:
            end = self._data.find(b"\r\n\r\n", 0, _BUFIO_SIZE)
            if end >= 0:
                self._take(end + 4)  # textproto's header syntax is not checked here
                return
            if len(self._data) >= _BUFIO_SIZE or self._closed:
                raise _ChunkError("http: suspiciously long trailer after chunked body")
            yield NEED_MORE

    # -------------------------------------------------------------- the API

    def read(self, size: int) -> Generator[None, None, tuple[bytes, str | None, bool]]:
        """body.Read(p) with ``len(p) == size``: ``(data, error, at_end)``."""
        if self._error is not None:
            return b"", self._error, False
        if self._eof:
            return b"", None, True
        out = bytearray()
        try:
            last = yield from self._chunked_read(size, out)
            if last:
                yield from self._read_trailer()
                self._eof = True
        except _ChunkError as exc:
            self._error = str(exc)
            return bytes(out), self._error, False
        return bytes(out), None, self._eof

    def read_all(self, limit: int) -> Generator[None, None, tuple[bytes, str | None]]:
        """io.ReadAll(io.LimitedReader{N: limit}): what Let's Encrypt reads of a body."""
        body = bytearray()
        while len(body) < limit:
            data, error, at_end = yield from self.read(limit - len(body))
            body += data
            if error is not None:
                return bytes(body), error
            if at_end:
                break
        return bytes(body), None


class _ChunkError(Exception):
    pass


# ------------------------------------------------------------ net/http response framing


class ResponseHeadError(ValueError):
    """http.ReadResponse failed on the framing headers; the message is Go's (Boulder
    never shows it: the verdict is "Error getting validation data")."""


@dataclass(frozen=True, slots=True)
class Framing:
    """How Go's client reads a response's body: chunked, ``length`` bytes, or until the
    connection closes (neither); no body at all for 1xx, 204 and 304."""

    chunked: bool = False
    length: int | None = None


#: strconv.ParseUint(s, 10, 63): decimal digits only, at most 2**63 - 1.
_MAX_CONTENT_LENGTH = 2**63 - 1
_TEXTPROTO_SPACE = b" \t\r\n"  # textproto.TrimString


def response_framing(
    version: tuple[int, int],
    status: int,
    transfer_encodings: list[bytes],
    content_lengths: list[bytes],
) -> Framing:
    """net/http transfer.go readTransfer for a response to a GET (Go 1.26, default GODEBUG).

    ``transfer_encodings`` and ``content_lengths`` are the values of every such header
    line, in order. Go keeps one ``Transfer-Encoding`` only, and only ``chunked`` (any
    case); HTTP/1.0 ignores Transfer-Encoding. Content-Length is checked whatever the
    status and the Transfer-Encoding: several lines must agree, and the value must be
    decimal digits (no list, no sign, no hex) up to 2**63 - 1. Then a 1xx, 204 or 304 has
    no body, chunked wins over the (valid) Content-Length, and a response with neither
    is read until the connection closes. Raises :class:`ResponseHeadError` where Go
    refuses the response.
    """
    chunked = False
    if transfer_encodings and version >= (1, 1):
        if len(transfer_encodings) != 1:
            raise ResponseHeadError(f"too many transfer encodings: {transfer_encodings!r}")
        if transfer_encodings[0].strip(_TEXTPROTO_SPACE).lower() != b"chunked":
            raise ResponseHeadError(f"unsupported transfer encoding: {transfer_encodings[0]!r}")
        chunked = True
    lengths = [value.strip(_TEXTPROTO_SPACE) for value in content_lengths]
    if len(set(lengths)) > 1:
        raise ResponseHeadError(
            f"http: message cannot contain multiple Content-Length headers; got {lengths!r}"
        )
    if lengths and lengths[0] == b"":
        raise ResponseHeadError("invalid empty Content-Length")
    if lengths and (not lengths[0].isdigit() or int(lengths[0]) > _MAX_CONTENT_LENGTH):
        raise ResponseHeadError(f"bad Content-Length {lengths[0]!r}")
    if 100 <= status < 200 or status in (204, 304):
        return Framing()
    if chunked:
        return Framing(chunked=True)
    return Framing(length=int(lengths[0]) if lengths else None)


_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: |$)")


def response_head(head: bytes) -> tuple[bytes, bool, bool]:
    """One response head (status line to blank line) with its framing as Go reads it.

    Returns ``(head, final, chunked)``: the head with its Transfer-Encoding and
    Content-Length lines replaced by what :func:`response_framing` decided (a
    ``Content-Length`` line; none for a chunked body, which the caller reads through
    :class:`ChunkedBody` until the connection closes; a head without such lines comes
    back as it is), whether the response is final (not 1xx, or 101, which Go's client
    returns as the response), and whether its body is chunked. A head whose status line
    this does not recognise comes back as it is, final, for the HTTP parser to judge.
    Raises :class:`ResponseHeadError` where Go refuses the response.
    """
    lines = [line[:-1] if line.endswith(b"\r") else line for line in head.split(b"\n")]
    status_line = _STATUS_LINE.match(lines[0])
    if status_line is None:
        return head, True, False
    version = (int(status_line[1]), int(status_line[2]))
    status = int(status_line[3])
    final = not 100 <= status < 200 or status == 101
    groups: list[list[bytes]] = []  # a header line and its obsolete continuation lines
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and groups:
            groups[-1].append(line)
        elif line:
            groups.append([line])
    encodings: list[bytes] = []
    lengths: list[bytes] = []
    kept: list[bytes] = []
    for group in groups:
        name, colon, value = group[0].partition(b":")
        field = name.lower()
        if colon and field in (b"transfer-encoding", b"content-length"):
            joined = b" ".join([value.strip(_TEXTPROTO_SPACE), *(g.strip() for g in group[1:])])
            (encodings if field == b"transfer-encoding" else lengths).append(joined.strip())
        else:
            kept += group
    if not encodings and not lengths:
        return head, final, False
    framing = response_framing(version, status, encodings, lengths)
    if framing.length is not None:
        kept.append(b"Content-Length: %d" % framing.length)
    return b"\r\n".join([lines[0], *kept, b"", b""]), final, framing.chunked


# --------------------------------------------------------------------------- compress/gzip

_GZIP_FLAG_HCRC, _GZIP_FLAG_EXTRA, _GZIP_FLAG_NAME, _GZIP_FLAG_COMMENT = 0x02, 0x04, 0x08, 0x10
#: gzip.Reader's z.buf: a name or comment of 512 bytes or more (NUL included) is refused.
_GZIP_STRING_MAX = 512
_UNEXPECTED_EOF = "unexpected EOF"


class _CleanEnd:
    """io.EOF where a gzip member could start: the body ended between members."""


class GzipBody:
    """Go's ``gzip.Reader`` (compress/gzip, Go 1.26, multistream) over a response body, as
    net/http's transport reads a body it asked to be gzipped, fed with the body's bytes.

    Pure: the caller does the I/O. :meth:`read_all` is a generator that yields
    :data:`NEED_MORE` wherever Go's reader would block on the body; the caller then
    :meth:`feed`\\ s the next bytes of the body, or :meth:`end`\\ s it (cleanly, or with
    the error Go's body reader returned), and resumes. Errors are Go's texts:
    ``gzip: invalid header`` (not gzip, a bad header CRC, a name over 511 bytes, bytes after
    a member that do not start another), ``gzip: invalid checksum`` (CRC-32 or size),
    ``unexpected EOF`` (a member cut short, or 1 to 9 bytes after one), ``flate: corrupt
    input before offset N`` (N: bytes of the member's DEFLATE data read when the error was
    found); a body error met on the way is returned as it is.

    The DEFLATE data is inflated by zlib; the offset of a corrupt input is where zlib,
    fed one byte at a time, finds the error, which is where Go's reader does (both read
    the bits a code needs and no more). Not reproduced: (1) a dynamic block whose
    Huffman header is degenerate (a code-length code with no code, a literal code with
    no end-of-block, a distance code with no code that is used): Go reports it where it
    reads it, zlib later or not at all (then "unexpected EOF" here); no compressor
    writes one. (2) Go's inflater hands out data at the end of the stream, at an empty
    stored block or every 32 KiB, and decodes ahead until then; here output is counted
    as it is decoded, so a server that stops sending after 128 decoded bytes is a full
    body here, while Go would wait for it.
    """

    def __init__(self) -> None:
        self._data = bytearray()
        self._ended = False
        self._error: str | None = None  # the body's own error, after its data

    # ------------------------------------------------------------------ input

    def feed(self, data: bytes) -> None:
        self._data += data

    def end(self, error: str | None = None) -> None:
        """The body ended: cleanly (``error`` None, io.EOF) or with Go's error text."""
        self._ended = True
        self._error = error

    # ---------------------------------------------------------------- reading

    def _wait(self, n: int) -> Generator[None, None, bool]:
        while len(self._data) < n:
            if self._ended:
                return False
            yield NEED_MORE
        return True

    def _short(self) -> str:
        """io.ReadFull's error when the body ended first, through gzip's noEOF."""
        return _UNEXPECTED_EOF if self._error is None else self._error

    def _take(self, n: int) -> bytes:
        out = bytes(self._data[:n])
        del self._data[:n]
        return out

    def _header(self) -> Generator[None, None, str | _CleanEnd | None]:
        """gzip.Reader.readHeader: None when a member starts, else why not."""
        if not (yield from self._wait(10)):
            if self._error is not None:
                return self._error
            return _UNEXPECTED_EOF if self._data else _CleanEnd()
        fixed = self._take(10)
        if fixed[:3] != b"\x1f\x8b\x08":
            return "gzip: invalid header"
        flags, digest = fixed[3], zlib.crc32(fixed)
        if flags & _GZIP_FLAG_EXTRA:
            if not (yield from self._wait(2)):
                return self._short()
            size = self._take(2)
            if not (yield from self._wait(int.from_bytes(size, "little"))):
                return self._short()
            digest = zlib.crc32(size + self._take(int.from_bytes(size, "little")), digest)
        for flag in (_GZIP_FLAG_NAME, _GZIP_FLAG_COMMENT):
            if flags & flag:
                while (end := self._data.find(0, 0, _GZIP_STRING_MAX)) < 0:
                    if len(self._data) >= _GZIP_STRING_MAX:
                        return "gzip: invalid header"
                    if self._ended:
                        return self._short()
                    yield NEED_MORE
                digest = zlib.crc32(self._take(end + 1), digest)
        if flags & _GZIP_FLAG_HCRC:
            if not (yield from self._wait(2)):
                return self._short()
            if int.from_bytes(self._take(2), "little") != digest & 0xFFFF:
                return "gzip: invalid header"
        return None

    def _inflate(self, out: bytearray, room: int) -> Generator[None, None, str | None]:
        """One member's DEFLATE data and trailer, decoded into ``out`` until it holds more
        than ``room`` bytes; None when the member ended and checked out, or filled ``out``."""
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        offset = crc = size = 0
        while not inflater.eof:
            if not self._data:
                if self._ended:
                    return self._short()
                yield NEED_MORE
                continue
            chunk = bytes(self._data)
            before = inflater.copy()
            try:
                produced = inflater.decompress(chunk, room + 1 - len(out))
            except zlib.error:
                at, produced = _corrupt_at(before, chunk)
                out += produced[: room - len(out)]
                return f"flate: corrupt input before offset {offset + at}"
            consumed = len(chunk) - len(inflater.unconsumed_tail) - len(inflater.unused_data)
            del self._data[:consumed]
            offset += consumed
            crc, size = zlib.crc32(produced, crc), size + len(produced)
            out += produced
            if len(out) > room:
                return None
        if not (yield from self._wait(8)):
            return self._short()
        trailer = self._take(8)
        if trailer != crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little"):
            return "gzip: invalid checksum"
        return None

    def read_all(self, limit: int) -> Generator[None, None, tuple[bytes, str | None]]:
        """io.ReadAll(io.LimitedReader{N: limit}) of the decoded body: what Let's Encrypt
        reads, and the error it met, if any."""
        out = bytearray()
        error = yield from self._header()
        if isinstance(error, _CleanEnd):
            return b"", None  # no member at all: gzip.NewReader's io.EOF, an empty body
        while error is None:
            error = yield from self._inflate(out, limit)
            if error is not None or len(out) > limit:
                break
            # A member ended at or under the limit: gzip.Reader looks for the next one in
            # the same Read, and the read goes on only while the limit is not reached.
            error = yield from self._header()
            if isinstance(error, _CleanEnd):
                error = None
                break
            if error is None and len(out) == limit:
                break
        return bytes(out[:limit]), error


def _corrupt_at(inflater: zlib._Decompress, chunk: bytes) -> tuple[int, bytes]:
    """How many bytes of ``chunk`` the inflater reads before it finds the error in them,
    and what it decodes before that."""
    produced = bytearray()
    for at in range(len(chunk)):
        try:
            produced += inflater.decompress(chunk[at : at + 1])
        except zlib.error:
            return at + 1, bytes(produced)
    return len(chunk), bytes(produced)
