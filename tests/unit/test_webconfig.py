"""``--web.config.file``: every bad file maps to its exact message (file, key, reason)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import logging
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client import CollectorRegistry

from exporter import webconfig
from exporter.webconfig import (
    BAD_CACHE_SIZE,
    GOOD_CACHE_SIZE,
    BasicAuth,
    WebConfig,
    WebConfigWatcher,
    load_web_config,
    peer_sans,
)
from tests.badfiles import assert_refused, bad_file_tests, refusal

DATA = Path(__file__).resolve().parents[1] / "testdata" / "web"

BAD = {
    "invalid-yaml.yml": ["line 3 column 1: invalid YAML: did not find expected node content"],
    "invalid-unknown-key.yml": ["basic_auth_user: unknown key"],
    "invalid-tls-unknown-key.yml": ["tls_server_config.cert_fil: unknown key"],
    "invalid-top-level.yml": ["(top level): expected a mapping of keys to values"],
    "invalid-plain-password.yml": [
        'basic_auth_users.alice: not a bcrypt hash (make one with: htpasswd -nBC 10 "" '
        "| tr -d ':\\n')"
    ],
    "invalid-header.yml": [
        "http_server_config.headers.Server: this header can not be configured (only "
        "Content-Security-Policy, Strict-Transport-Security, X-Content-Type-Options, "
        "X-Frame-Options, X-XSS-Protection)"
    ],
    "invalid-header-value.yml": [
        "http_server_config.headers.X-Frame-Options: invalid value 'allow-from': "
        "use one of deny, sameorigin"
    ],
    "invalid-client-auth-type.yml": [
        "tls_server_config.client_auth_type: Input should be 'NoClientCert', "
        "'RequestClientCert', 'RequireAnyClientCert', 'RequireClientCert', "
        "'VerifyClientCertIfGiven' or 'RequireAndVerifyClientCert'"
    ],
    "invalid-version.yml": [
        "tls_server_config.min_version: Input should be 'TLS10', 'TLS11', 'TLS12' or 'TLS13'"
    ],
    "invalid-cipher.yml": [
        "tls_server_config.cipher_suites[0]: unknown cipher suite "
        "'ECDHE-RSA-AES128-GCM-SHA256' (use Go's names, e.g. "
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
    ],
    "invalid-curves.yml": [
        "tls_server_config.curve_preferences: Python's ssl can set only one curve: list one"
    ],
    "invalid-cert-missing.yml": [
        f"tls_server_config.cert_file: cannot read '{DATA / 'missing.pem'}': "
        "No such file or directory"
    ],
    "invalid-no-key.yml": ["tls_server_config: missing one of key or key_file"],
    # exporter-toolkit reads an empty file as "no TLS, no auth"; here it is refused.
    "invalid-empty.yml": ["(top level): the file holds no YAML document (empty?)"],
}


test_bad_web_config, test_every_invalid_file_is_in_the_table, test_unreadable_file = bad_file_tests(
    load_web_config, DATA, BAD
)


NO_DOCUMENT = "(top level): the file holds no YAML document (empty?)"
REFUSED_TEXT = {
    "empty": ("", [NO_DOCUMENT]),
    "blank": ("\n   \n\n", [NO_DOCUMENT]),
    "comments-only": ("# basic_auth_users:\n#   alice: ...\n", [NO_DOCUMENT]),
    "document-marker-only": ("---\n", [NO_DOCUMENT]),
    "two-documents": ("{}\n---\n{}\n", ["(top level): the file holds more than one YAML document"]),
    "null": ("~\n", [NO_DOCUMENT]),
}


@pytest.mark.parametrize("name", sorted(REFUSED_TEXT))
def test_file_without_one_document_is_refused(name: str, tmp_path: Path) -> None:
    """Never read as "no TLS, no auth" (exporter-toolkit's reading of an empty file)."""
    text, expected = REFUSED_TEXT[name]
    path = tmp_path / "web.yml"
    path.write_text(text)
    assert_refused(load_web_config, path, expected)


HEADERS_BAD: dict[str, tuple[str, str, str]] = {
    "crlf": (
        "Content-Security-Policy",
        "default-src 'self'\r\nSet-Cookie: a=b",
        "a control character (CR) in the header value "
        "\"default-src 'self'\\\\r\\\\nSet-Cookie: a=b\"",
    ),
    "lf": (
        "X-Frame-Options",
        "deny\nX: y",
        "a control character (LF) in the header value 'deny\\\\nX: y'",
    ),
    "nul": (
        "X-XSS-Protection",
        "1\x00",
        "a control character (NUL) in the header value '1\\\\x00'",
    ),
    "tab": (
        "X-XSS-Protection",
        "1;\tmode=block",
        "a control character (TAB) in the header value '1;\\\\tmode=block'",
    ),
    "escape": (
        "X-XSS-Protection",
        "1\x1b[2J",
        "a control character (U+001B) in the header value '1\\\\x1b[2J'",
    ),
    "del": (
        "X-XSS-Protection",
        "1\x7f",
        "a control character (U+007F) in the header value '1\\\\x7f'",
    ),
    "c1": (
        "X-XSS-Protection",
        "1\x85",
        "a control character (U+0085) in the header value '1\\\\x85'",
    ),
    "not-ascii": (
        "Content-Security-Policy",
        "default-src 'self' https://bücher.example",
        "the header value \"default-src 'self' https://bücher.example\" is not ASCII "
        "(a response header must be)",
    ),
    "trailing-space": (
        "Strict-Transport-Security",
        "max-age=60 ",
        "the header value 'max-age=60 ' starts or ends with a space",
    ),
    "crlf-in-name": (
        "X-Frame-Options\r\nX",
        "deny",
        "a control character (CR) in the header name 'X-Frame-Options\\\\r\\\\nX'",
    ),
}


@pytest.mark.parametrize("name", sorted(HEADERS_BAD))
def test_header_that_cannot_be_sent_is_refused(name: str, tmp_path: Path) -> None:
    """A header h11 would refuse to send would leave every response empty: refused at load,
    the key named (escaped: the message is one line)."""
    header, content, reason = HEADERS_BAD[name]
    path = _write(tmp_path, {"http_server_config": {"headers": {header: content}}})
    caught = refusal(load_web_config, path)
    key = header.encode("unicode_escape").decode() if not header.isprintable() else header
    assert caught.problems == [f"http_server_config.headers.{key}: {reason}"]
    assert "\r" not in str(caught) and "\n" not in str(caught)


def test_a_user_name_is_named_whole_in_a_problem(tmp_path: Path) -> None:
    path = _write(tmp_path, {"basic_auth_users": {"function-after": "plain"}})
    problem = (
        'basic_auth_users.function-after: not a bcrypt hash (make one with: htpasswd -nBC 10 "" '
        "| tr -d ':\\n')"
    )
    assert_refused(load_web_config, path, [problem])


def test_users_and_headers() -> None:
    config = load_web_config(DATA / "good-auth-headers.yml")
    assert config.ssl_context is None
    assert list(config.users) == [b"alice"]
    # A blank header is unset, as in exporter-toolkit.
    assert config.headers == (("X-Frame-Options", "deny"), ("X-Content-Type-Options", "nosniff"))


# --------------------------------------------------------------------- certificates (made here)


@dataclass
class Pki:
    """A CA, a server certificate for 127.0.0.1/::1/localhost, a client certificate
    (SAN ``client.example``) signed by the CA and one signed by another CA; all PEM files."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    name: str,
    sans: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
) -> tuple[bytes, bytes]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca[1].public_key()),
            critical=False,
        )
        .sign(ca[1], hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca("web-config test CA")
    rogue_ca = _ca("another CA")
    server = _leaf(
        ca,
        "localhost",
        [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ],
        ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client = _leaf(ca, "client", [x509.DNSName("client.example")], ExtendedKeyUsageOID.CLIENT_AUTH)
    rogue = _leaf(
        rogue_ca, "rogue", [x509.DNSName("client.example")], ExtendedKeyUsageOID.CLIENT_AUTH
    )
    files = {
        "ca.pem": ca[0].public_bytes(serialization.Encoding.PEM),
        "server.pem": server[0],
        "server.key": server[1],
        "client.pem": client[0],
        "client.key": client[1],
        "rogue.pem": rogue[0],
        "rogue.key": rogue[1],
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    d = directory
    return Pki(
        d / "ca.pem",
        d / "server.pem",
        d / "server.key",
        d / "client.pem",
        d / "client.key",
        d / "rogue.pem",
        d / "rogue.key",
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _write(directory: Path, document: dict[str, Any]) -> Path:
    path = directory / "web.yml"
    path.write_text(yaml.safe_dump(document))
    return path


TLS_BAD: dict[str, tuple[dict[str, Any], list[str]]] = {
    "ca-without-auth": (
        {"client_ca_file": "ca.pem"},
        [
            "tls_server_config.client_auth_type: a client CA is configured without a client "
            "auth policy (use RequireAndVerifyClientCert)"
        ],
    ),
    "verify-without-ca": (
        {"client_auth_type": "RequireAndVerifyClientCert"},
        [
            "tls_server_config.client_ca_file: required with client_auth_type "
            "RequireAndVerifyClientCert"
        ],
    ),
    "require-any": (
        {"client_auth_type": "RequireAnyClientCert", "client_ca_file": "ca.pem"},
        [
            "tls_server_config.client_auth_type: RequireAnyClientCert is not supported: "
            "Python's ssl cannot ask for a client certificate without verifying it; use "
            "RequireAndVerifyClientCert (or VerifyClientCertIfGiven) with client_ca_file"
        ],
    ),
    "request": (
        {"client_auth_type": "RequestClientCert"},
        [
            "tls_server_config.client_auth_type: RequestClientCert is not supported: "
            "Python's ssl cannot ask for a client certificate without verifying it; use "
            "RequireAndVerifyClientCert (or VerifyClientCertIfGiven) with client_ca_file"
        ],
    ),
    "versions-reversed": (
        {"min_version": "TLS13", "max_version": "TLS12"},
        ["tls_server_config.min_version: TLS13 is above max_version TLS12"],
    ),
    "key-mismatch": (
        {"key_file": "client.key"},
        [
            "tls_server_config: cannot load the certificate and key: [X509: KEY_VALUES_MISMATCH] "
            "key values mismatch"
        ],
    ),
    "ca-not-a-certificate": (
        {"client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": "server.key"},
        [
            "tls_server_config.client_ca_file: no CA certificate could be loaded: no start "
            "line: cadata does not contain a certificate"
        ],
    ),
    "both-cert-and-cert-file": (
        {"cert": "-----BEGIN CERTIFICATE-----"},
        ["tls_server_config.cert: set cert or cert_file, not both"],
    ),
}


@pytest.mark.parametrize("name", sorted(TLS_BAD))
def test_bad_tls(name: str, pki: Pki) -> None:
    tls, expected = TLS_BAD[name]
    document = {"tls_server_config": {"cert_file": "server.pem", "key_file": "server.key", **tls}}
    path = _write(pki.ca.parent, document)
    caught = refusal(load_web_config, path)
    problems = [p.split(" (_ssl.c")[0] for p in caught.problems]  # OpenSSL's location
    assert problems == expected


def test_tls_context(pki: Pki) -> None:
    document = {
        "tls_server_config": {
            "cert_file": "server.pem",  # relative to the config file, as in exporter-toolkit
            "key_file": str(pki.server_key),
            "client_auth_type": "RequireAndVerifyClientCert",
            "client_ca_file": "ca.pem",
            "min_version": "TLS13",
            "cipher_suites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"],
            "curve_preferences": ["CurveP256"],
            "client_allowed_sans": ["client.example"],
        }
    }
    config = load_web_config(_write(pki.ca.parent, document))
    context = config.ssl_context
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.minimum_version is ssl.TLSVersion.TLSv1_3
    assert context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"} == {
        "ECDHE-ECDSA-AES128-GCM-SHA256"
    }
    assert config.allowed_sans == {"client.example"}
    assert str(pki.ca) in config.files and str(pki.server_cert) in config.files
    der = x509.load_pem_x509_certificate(pki.client_cert.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    assert peer_sans(der) == {"client.example"}


def test_inline_certificate_and_key(pki: Pki, tmp_path: Path) -> None:
    document = {
        "tls_server_config": {
            "cert": pki.server_cert.read_text(),
            "key": pki.server_key.read_text(),
            "client_auth_type": "VerifyClientCertIfGiven",
            "client_ca": pki.ca.read_text(),
        }
    }
    config = load_web_config(_write(tmp_path, document))
    assert config.ssl_context is not None
    assert config.ssl_context.verify_mode is ssl.CERT_OPTIONAL


# ------------------------------------------------------------------------------- basic auth


def _header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_basic_auth_caches_verified_passwords() -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    config = WebConfig(source="x", users={b"alice": hashed.encode()})
    auth = BasicAuth()
    assert await auth.check(config, _header("alice", "s3cret"))
    assert await auth.check(config, _header("alice", "s3cret"))
    assert auth.bcrypt_calls == 1  # the second scrape costs no bcrypt
    assert not await auth.check(config, _header("alice", "wrong"))
    assert not await auth.check(config, _header("alice", "wrong"))
    assert auth.bcrypt_calls == 2
    # An unknown user still costs a bcrypt (no enumeration by timing), and never passes,
    # even with the fake hash's own password.
    assert not await auth.check(config, _header("mallory", "fakepassword"))
    assert auth.bcrypt_calls == 3
    for bad in (None, "", "Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"x").decode()):
        assert not await auth.check(config, bad)
    assert not await auth.check(config, _header("alice", "x" * 100))  # > 72 bytes
    assert auth.bcrypt_calls == 4


def test_lru_forgets_the_least_recently_used() -> None:
    cache = webconfig._LRU(2)
    cache.put(b"a", True)
    cache.put(b"b", True)
    assert cache.get(b"a")  # a used: b is now the oldest
    cache.put(b"c", True)
    assert b"b" not in cache and b"a" in cache and b"c" in cache
    cache.put(b"a", True)  # put again: the newest
    cache.put(b"d", True)
    assert b"c" not in cache and len(cache) == 2


async def test_a_spray_never_evicts_a_scrapers_credentials() -> None:
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(4))
    config = WebConfig(source="x", users={b"u": hashed})
    auth = BasicAuth()
    assert await auth.check(config, _header("u", "right"))
    calls = auth.bcrypt_calls
    sprayed = BAD_CACHE_SIZE + GOOD_CACHE_SIZE + 50
    for start in range(0, sprayed, auth.max_pending):
        batch = range(start, min(sprayed, start + auth.max_pending))
        results = await asyncio.gather(*(auth.check(config, _header("u", f"p{i}")) for i in batch))
        assert not any(results)
    assert auth.bcrypt_calls == calls + sprayed and auth.refused == 0
    assert len(auth._bad) == BAD_CACHE_SIZE and len(auth._good) == 1
    assert await auth.check(config, _header("u", "right"))
    assert auth.bcrypt_calls == calls + sprayed  # still known: no bcrypt
    # The least recently used refusal went first; the latest ones are still known.
    assert not await auth.check(config, _header("u", f"p{sprayed - 1}"))
    assert auth.bcrypt_calls == calls + sprayed
    assert not await auth.check(config, _header("u", "p0"))
    assert auth.bcrypt_calls == calls + sprayed + 1
    auth.close()


async def test_good_credentials_cache_is_lru() -> None:
    users = {f"u{i}".encode(): bcrypt.hashpw(b"pw", bcrypt.gensalt(4)) for i in range(101)}
    config = WebConfig(source="x", users=users)
    auth = BasicAuth()
    for i in range(GOOD_CACHE_SIZE):
        assert await auth.check(config, _header(f"u{i}", "pw"))
    assert await auth.check(config, _header("u0", "pw"))  # used again: u1 is the oldest
    assert await auth.check(config, _header("u100", "pw"))
    calls = auth.bcrypt_calls
    assert await auth.check(config, _header("u0", "pw"))
    assert auth.bcrypt_calls == calls
    assert await auth.check(config, _header("u1", "pw"))
    assert auth.bcrypt_calls == calls + 1
    auth.close()


async def test_bcrypt_runs_on_a_bounded_pool_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most ``workers`` bcrypts at once, never on the event loop's thread; at most
    ``max_pending`` unknown credentials wait, the rest are refused at once."""
    lock = threading.Lock()
    running, most, threads, niceness = 0, 0, set(), set()
    checkpw = webconfig._checkpw

    def counted(password: bytes, hashed: bytes) -> bool:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            threads.add(threading.current_thread().name)
            niceness.add(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        try:
            return checkpw(password, hashed)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(webconfig, "_checkpw", counted)
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(4))
    config = WebConfig(source="x", users={b"u": hashed})
    auth = BasicAuth(max_pending=8, workers=2)
    results = await asyncio.gather(*(auth.check(config, _header("u", f"p{i}")) for i in range(50)))
    assert not any(results)
    assert auth.bcrypt_calls == 8 and auth.refused == 42 and auth.pending == 0
    assert 1 <= most <= 2 and len(threads) <= 2
    assert threading.current_thread().name not in threads
    assert all(name.startswith("bcrypt") for name in threads)
    # Below the event loop's priority: on a busy core, the loop goes first.
    loop_niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert niceness == {min(19, loop_niceness + webconfig.BCRYPT_NICENESS)}
    auth.close()


async def test_refusals_never_block_a_known_scraper(caplog: pytest.LogCaptureFixture) -> None:
    """The bcrypt pool held busy and the queue full: a scraper's known credentials pass at
    once, unknown ones are refused at once, and the same unknown ones share one check."""
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(4))
    config = WebConfig(source="x", users={b"u": hashed})
    auth = BasicAuth(max_pending=4, workers=1)
    assert await auth.check(config, _header("u", "right"))
    gate = threading.Event()
    auth._threads.submit(gate.wait)  # the only bcrypt thread, busy until released
    waiting = [
        asyncio.ensure_future(auth.check(config, _header(user, f"p{i}")))
        for i, user in enumerate(("u", "u", "nobody", "u"))
    ]
    same = asyncio.ensure_future(auth.check(config, _header("u", "p0")))
    await asyncio.sleep(0)
    try:
        assert auth.pending == 4 and auth.bcrypt_calls == 5
        with caplog.at_level(logging.WARNING, logger="exporter.web"):
            assert not await auth.check(config, _header("u", "p9"))
            assert not await auth.check(config, _header("u", "right-or-not"))
        assert auth.refused == 2
        assert [r.message for r in caplog.records].count(
            "basic auth overloaded: requests with unknown credentials refused at once"
        ) == 1
        assert await auth.check(config, _header("u", "right"))
        assert not any(task.done() for task in [*waiting, same])
    finally:
        gate.set()
    assert not any(await asyncio.gather(*waiting, same))
    assert auth.bcrypt_calls == 5 and auth.pending == 0
    auth.close()


# ---------------------------------------------------------------------------------- reload


async def test_watcher_reloads_and_keeps_the_old_file_on_error(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    first = bcrypt.hashpw(b"one", bcrypt.gensalt(4)).decode()
    second = bcrypt.hashpw(b"two", bcrypt.gensalt(4)).decode()
    path.write_text(yaml.safe_dump({"basic_auth_users": {"alice": first}}))
    registry = CollectorRegistry()
    watcher = WebConfigWatcher(path, load_web_config(path), registry, interval=0)

    def count(result: str) -> float:
        value = registry.get_sample_value(
            "acme_http01_web_config_reloads_total", {"result": result}
        )
        return -1 if value is None else value

    assert (await watcher.get()).users[b"alice"] == first.encode()
    path.write_text(yaml.safe_dump({"basic_auth_users": {"alice": second}}))
    assert (await watcher.get()).users[b"alice"] == second.encode()
    assert count("success") == 1
    path.write_text("basic_auth_users: {alice: plain}\n")
    assert (await watcher.get()).users[b"alice"] == second.encode()
    assert (await watcher.get()).users[b"alice"] == second.encode()
    assert count("failure") == 1  # counted once, not at every request
    assert registry.get_sample_value("acme_http01_web_config_last_reload_successful") == 0


async def test_watcher_refuses_to_turn_tls_on(tmp_path: Path, pki: Pki) -> None:
    path = tmp_path / "web.yml"
    path.write_text("{}\n")
    watcher = WebConfigWatcher(path, load_web_config(path), CollectorRegistry(), interval=0)
    tls = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}
    path.write_text(yaml.safe_dump({"tls_server_config": tls}))
    assert (await watcher.get()).ssl_context is None


async def _watcher(
    path: Path, document: dict[str, Any]
) -> tuple[WebConfigWatcher, CollectorRegistry]:
    path.write_text(yaml.safe_dump(document))
    registry = CollectorRegistry()
    return WebConfigWatcher(path, load_web_config(path), registry, interval=0), registry


USERS = {
    "basic_auth_users": {"alice": "$2y$04$ecR5iMZfoT4GeUqU9wDAUuYy.ZGaW.Q.ogiS7Klo.8X/cPnx.fo3y"}
}
HOW = "to remove basic auth, say so explicitly (basic_auth_users: {})"
RELOAD_REFUSED: dict[str, tuple[str, list[str]]] = {
    "empty": ("", [NO_DOCUMENT]),
    "blank": ("  \n\n", [NO_DOCUMENT]),
    "comments-only": ("# no users for now\n", [NO_DOCUMENT]),
    "no-basic_auth_users": (
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        [f"basic_auth_users: missing while basic auth is in force; {HOW}"],
    ),
    "empty-mapping": ("{}\n", [f"basic_auth_users: missing while basic auth is in force; {HOW}"]),
    "crlf-in-a-header": (
        'basic_auth_users: {}\nhttp_server_config: {headers: {X-XSS-Protection: "0\\r\\nX: 1"}}\n',
        [
            "http_server_config.headers.X-XSS-Protection: a control character (CR) in the header "
            "value '0\\\\r\\\\nX: 1'"
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(RELOAD_REFUSED))
async def test_reload_that_would_drop_basic_auth_is_refused(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "web.yml"
    watcher, registry = await _watcher(path, USERS)
    before = watcher.current
    text, expected = RELOAD_REFUSED[name]
    path.write_text(text)
    with caplog.at_level(logging.ERROR, logger="exporter.web"):
        assert await watcher.get() is before
    assert (
        registry.get_sample_value("acme_http01_web_config_reloads_total", {"result": "failure"})
        == 1
    )
    assert registry.get_sample_value("acme_http01_web_config_last_reload_successful") == 0
    [record] = [r for r in caplog.records if r.message.startswith("web config reload failed")]
    problems = record.fields["problems"]  # type: ignore[attr-defined]
    assert problems == "\n".join(f"{path}: {p}" for p in expected)


async def test_reload_removes_basic_auth_when_the_file_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "web.yml"
    watcher, registry = await _watcher(path, USERS)
    path.write_text("basic_auth_users: {}\n")
    with caplog.at_level(logging.WARNING, logger="exporter.web"):
        assert (await watcher.get()).users == {}
    assert (
        registry.get_sample_value("acme_http01_web_config_reloads_total", {"result": "success"})
        == 1
    )
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.message == "web config reload removes access control"
    assert record.fields == {"file": str(path), "removed": "basic auth"}  # type: ignore[attr-defined]
    # Without users in force, a file without the key is an ordinary reload.
    path.write_text("http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    assert (await watcher.get()).headers == (("X-Frame-Options", "deny"),)


async def test_reload_keeps_client_certificate_checks_unless_told(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    tls = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}
    mutual = {
        **tls,
        "client_auth_type": "RequireAndVerifyClientCert",
        "client_ca_file": str(pki.ca),
        "client_allowed_sans": ["client.example"],
    }
    path = tmp_path / "web.yml"
    watcher, _ = await _watcher(path, {"tls_server_config": mutual})
    before = watcher.current
    # A file cut before client_auth_type: both checks would be lost by omission.
    path.write_text(yaml.safe_dump({"tls_server_config": tls}))
    with caplog.at_level(logging.ERROR, logger="exporter.web"):
        assert await watcher.get() is before
    problems = [r for r in caplog.records if r.levelno == logging.ERROR][-1].fields["problems"]  # type: ignore[attr-defined]
    assert problems.splitlines() == [
        f"{path}: tls_server_config.client_auth_type: missing while client certificate "
        "verification is in force; to remove client certificate verification, say so "
        "explicitly (client_auth_type: NoClientCert (or VerifyClientCertIfGiven))",
        f"{path}: tls_server_config.client_allowed_sans: missing while the client SAN check is "
        "in force; to remove the client SAN check, say so explicitly (client_allowed_sans: null)",
    ]
    # Said: applied, with a warning.
    explicit = {**tls, "client_auth_type": "NoClientCert", "client_allowed_sans": None}
    path.write_text(yaml.safe_dump({"tls_server_config": explicit}))
    with caplog.at_level(logging.WARNING, logger="exporter.web"):
        new = await watcher.get()
    assert new is not before and new.client_verification == 0 and new.allowed_sans is None
    warning = [r for r in caplog.records if r.levelno == logging.WARNING][-1]
    assert warning.fields["removed"] == "client certificate verification, the client SAN check"  # type: ignore[attr-defined]
