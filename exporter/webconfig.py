"""``--web.config.file``: TLS, basic auth and extra headers, in the exporter-toolkit format.

Rule: the web server's security settings only. The file has the format and meaning of the
Prometheus exporter-toolkit's web configuration (``tls_server_config``,
``http_server_config.headers``, ``basic_auth_users``), so that a file written for any
Prometheus exporter works here. It is parsed with pydantic (unknown keys are errors), every
file it names is read and the TLS context built at load time, and a bad file raises
:class:`~exporter.config.ConfigError` with ``<file>: <key>: <reason>`` lines.

:class:`WebConfigWatcher` re-reads the file when it (or a certificate, key or CA file it
names) changes, checked at most every ``interval`` seconds when a connection or request
arrives. A reload is a transaction: the new config is built whole (TLS context, users,
headers) and swapped in one step, or refused; a refused file keeps the previous one in force,
is logged and counted (``acme_http01_web_config_reloads_total{result="failure"}``). A file
with no YAML document (empty, blank, comments only: what a reader sees between an editor's
truncate and its write) is refused, at start as on reload, never read as "no auth". A reload
removes access control (basic auth, client certificate checks) only when the file says so
with the key present (``basic_auth_users: {}``), and that is logged at warning. Turning TLS
on or off needs a restart, as with exporter-toolkit (which decides it when it starts
listening).

What Python's ``ssl`` cannot do, and so is refused with a clear error rather than silently
weakened: ``client_auth_type`` ``RequestClientCert`` and ``RequireAnyClientCert`` (asking for
a client certificate without verifying it), more than one ``curve_preferences`` entry.
TLS 1.3 ``cipher_suites`` are accepted and, as in Go, have no effect.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import hashlib
import logging
import os
import re
import ssl
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

import bcrypt
from cryptography import x509
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from exporter.config import ConfigError, read_document, validated

__all__ = [
    "BasicAuth",
    "WebConfig",
    "WebConfigWatcher",
    "load_web_config",
    "parse_web_config",
]

log = logging.getLogger("exporter.web")

ClientAuthType = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "RequireClientCert",  # exporter-toolkit's older name of RequireAnyClientCert
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
TLSVersionName = Literal["TLS10", "TLS11", "TLS12", "TLS13"]

_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

#: Go's ``tls.CipherSuites()`` names (the only ones exporter-toolkit accepts) up to TLS 1.2,
#: with the OpenSSL name Python's ``ssl`` sets them by.
CIPHERS_TLS12 = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
#: TLS 1.3 suites: accepted by exporter-toolkit and ignored by Go; OpenSSL's defaults apply.
CIPHERS_TLS13 = frozenset(
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
)
_CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1"}
_CURVES_ALL = (*_CURVES, "X25519")

#: exporter-toolkit's fixed list: only these headers, and for two of them only these values.
ALLOWED_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}

_BCRYPT = re.compile(r"^\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}$")
#: exporter-toolkit's hash of "fakepassword" (cost 10): checked for unknown users, so that
#: a wrong user name costs as long as a wrong password (no user enumeration by timing).
_FAKE_HASH = b"$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"
#: Verified credentials remembered (least recently used evicted): a scraper's credentials
#: stay known as long as it keeps scraping, whatever else arrives.
GOOD_CACHE_SIZE = 100
#: Refused credentials remembered apart, so that refusals never evict a scraper's success.
BAD_CACHE_SIZE = 1000
#: bcrypt checks of credentials not yet known, running or waiting for the bcrypt pool; one
#: more is answered 401 at once (a password spray costs a bounded amount of CPU and never
#: delays known-good credentials).
MAX_PENDING = 16
HANDSHAKE_TIMEOUT = 10.0


def _cipher(name: str) -> str:
    if name not in CIPHERS_TLS12 and name not in CIPHERS_TLS13:
        raise ValueError(
            f"unknown cipher suite {name!r} (use Go's names, e.g. "
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
        )
    return name


def _bcrypt_hash(hashed: str) -> str:
    match = _BCRYPT.match(hashed)
    if match is None or not 4 <= int(match.group(1)) <= 31:
        raise ValueError("not a bcrypt hash (make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n')")
    return hashed


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TLSServerConfig(_Model):
    cert: str | None = None
    key: str | None = None
    client_ca: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_auth_type: ClientAuthType = "NoClientCert"
    client_ca_file: str | None = None
    client_allowed_sans: list[str] | None = None
    min_version: TLSVersionName = "TLS12"
    max_version: TLSVersionName = "TLS13"
    cipher_suites: list[Annotated[str, AfterValidator(_cipher)]] = Field(default_factory=list)
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[str] = Field(default_factory=list)

    @field_validator("curve_preferences")
    @classmethod
    def _curves(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in _CURVES_ALL:
                raise ValueError(f"unknown curve {name!r}: use one of {', '.join(_CURVES_ALL)}")
        if len(value) > 1:
            raise ValueError("Python's ssl can set only one curve: list one")
        return value

    @property
    def enabled(self) -> bool:
        return any(
            (
                self.cert,
                self.key,
                self.client_ca,
                self.cert_file,
                self.key_file,
                self.client_ca_file,
                self.client_auth_type != "NoClientCert",
            )
        )


class HTTPServerConfig(_Model):
    #: Accepted for compatibility: this server speaks HTTP/1.1 only (no ALPN h2 offered).
    http2: bool = True
    headers: dict[str, str] = Field(default_factory=dict)


class WebConfigFile(_Model):
    tls_server_config: TLSServerConfig = Field(default_factory=TLSServerConfig)
    http_server_config: HTTPServerConfig = Field(default_factory=HTTPServerConfig)
    basic_auth_users: dict[str, Annotated[str, AfterValidator(_bcrypt_hash)]] = Field(
        default_factory=dict
    )


@dataclass(frozen=True, slots=True)
class WebConfig:
    """A loaded web config: what the server applies to each connection and request."""

    source: str
    ssl_context: ssl.SSLContext | None = None
    users: dict[bytes, bytes] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()
    allowed_sans: frozenset[str] | None = None
    #: Every file the config depends on (itself, certificate, key, CA): a change reloads.
    files: tuple[str, ...] = ()
    #: The keys the file sets (``basic_auth_users``, ``tls_server_config.client_auth_type``,
    #: ...), even to an empty value: a reload removes access control only by saying so.
    keys: frozenset[str] = frozenset()

    @property
    def client_verification(self) -> int:
        """How strictly client certificates are checked: 0 not, 1 if given, 2 required."""
        if self.ssl_context is None:
            return 0
        return {ssl.CERT_NONE: 0, ssl.CERT_OPTIONAL: 1}.get(self.ssl_context.verify_mode, 2)


def parse_web_config(data: object, source: str, directory: Path | None = None) -> WebConfig:
    """Validate parsed YAML and build the TLS context; ConfigError if anything is wrong.

    ``data`` is the file's one document: a file without any is refused by
    :func:`load_web_config` (exporter-toolkit reads it as "no TLS, no auth").
    """
    document = validated(WebConfigFile, data, source)
    problems = []
    for name, content in document.http_server_config.headers.items():
        key = f"http_server_config.headers.{_escaped(name)}"
        allowed = ALLOWED_HEADERS.get(name)
        unsendable = _unsendable(name, "name") or _unsendable(content, "value")
        if unsendable:
            problems.append(f"{key}: {unsendable}")
        elif allowed is None:
            problems.append(
                f"{key}: this header can not be configured (only "
                + ", ".join(sorted(ALLOWED_HEADERS))
                + ")"
            )
        elif allowed and content not in allowed:
            problems.append(f"{key}: invalid value {content!r}: use one of {', '.join(allowed)}")
    if problems:
        raise ConfigError(source, problems)
    base = directory or Path(".")
    tls = document.tls_server_config
    files = [source]
    context = None
    if tls.enabled:
        context, used = _tls_context(tls, source, base)
        files += used
    headers = tuple((k, v) for k, v in document.http_server_config.headers.items() if v)
    return WebConfig(
        source=source,
        ssl_context=context,
        users={u.encode(): h.encode() for u, h in document.basic_auth_users.items()},
        headers=headers,
        allowed_sans=None
        if tls.client_allowed_sans is None
        else frozenset(tls.client_allowed_sans),
        files=tuple(files),
        keys=frozenset(document.model_fields_set)
        | {f"tls_server_config.{k}" for k in tls.model_fields_set},
    )


_CONTROL_NAMES = {"\r": "CR", "\n": "LF", "\0": "NUL", "\t": "TAB"}


def _escaped(text: str) -> str:
    """``text`` as it can be shown in one line of an error (control characters escaped)."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _unsendable(text: str, what: str) -> str | None:
    """Why ``text`` cannot be sent as a header's name or value (None: it can)."""
    for char in text:
        if ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0:
            control = _CONTROL_NAMES.get(char, f"U+{ord(char):04X}")
            return f"a control character ({control}) in the header {what} {_escaped(text)!r}"
        if ord(char) > 0x7E:
            return f"the header {what} {text!r} is not ASCII (a response header must be)"
    if text != text.strip(" "):
        return f"the header {what} {text!r} starts or ends with a space"
    return None


def _read(source: str, key: str, base: Path, name: str) -> tuple[bytes, str]:
    path = base / name
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise ConfigError(
            source, [f"tls_server_config.{key}: cannot read {str(path)!r}: {exc.strerror}"]
        ) from None


def _tls_context(tls: TLSServerConfig, source: str, base: Path) -> tuple[ssl.SSLContext, list[str]]:
    def fail(key: str, reason: str) -> ConfigError:
        return ConfigError(source, [f"tls_server_config{'.' + key if key else ''}: {reason}"])

    used: list[str] = []
    if tls.cert and tls.cert_file:
        raise fail("cert", "set cert or cert_file, not both")
    if tls.key and tls.key_file:
        raise fail("key", "set key or key_file, not both")
    if not (tls.cert or tls.cert_file):
        raise fail("", "missing one of cert or cert_file")
    if not (tls.key or tls.key_file):
        raise fail("", "missing one of key or key_file")
    if tls.cert_file:
        cert, path = _read(source, "cert_file", base, tls.cert_file)
        used.append(path)
    else:
        cert = (tls.cert or "").encode()
    if tls.key_file:
        key, path = _read(source, "key_file", base, tls.key_file)
        used.append(path)
    else:
        key = (tls.key or "").encode()
    auth = (
        "RequireAnyClientCert"
        if tls.client_auth_type == "RequireClientCert"
        else (tls.client_auth_type)
    )
    if auth in ("RequestClientCert", "RequireAnyClientCert"):
        raise fail(
            "client_auth_type",
            f"{auth} is not supported: Python's ssl cannot ask for a client certificate "
            "without verifying it; use RequireAndVerifyClientCert (or VerifyClientCertIfGiven) "
            "with client_ca_file",
        )
    if _VERSIONS[tls.min_version] > _VERSIONS[tls.max_version]:
        raise fail("min_version", f"{tls.min_version} is above max_version {tls.max_version}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.minimum_version = _VERSIONS[tls.min_version]
        context.maximum_version = _VERSIONS[tls.max_version]
    except (ValueError, ssl.SSLError) as exc:
        raise fail("min_version", f"not supported by this OpenSSL: {exc}") from None
    # ssl loads a certificate and key from files only: a private temporary file, removed
    # at once (the key may be inline in the config).
    fd, temp = tempfile.mkstemp(prefix="web-tls-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(cert.rstrip(b"\n") + b"\n" + key)
        context.load_cert_chain(temp)
    except (ssl.SSLError, OSError) as exc:
        raise fail("", f"cannot load the certificate and key: {exc}") from None
    finally:
        os.unlink(temp)
    ca_given = bool(tls.client_ca or tls.client_ca_file)
    if tls.client_ca and tls.client_ca_file:
        raise fail("client_ca", "set client_ca or client_ca_file, not both")
    if ca_given:
        if auth == "NoClientCert":
            raise fail(
                "client_auth_type",
                "a client CA is configured without a client auth policy "
                "(use RequireAndVerifyClientCert)",
            )
        if tls.client_ca_file:
            data, path = _read(source, "client_ca_file", base, tls.client_ca_file)
            used.append(path)
            where = "client_ca_file"
        else:
            data, where = (tls.client_ca or "").encode(), "client_ca"
        try:
            context.load_verify_locations(cadata=data.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError) as exc:
            raise fail(where, f"no CA certificate could be loaded: {exc}") from None
    elif auth != "NoClientCert":
        raise fail("client_ca_file", f"required with client_auth_type {auth}")
    context.verify_mode = {
        "NoClientCert": ssl.CERT_NONE,
        "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
        "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
    }[auth]
    suites = [CIPHERS_TLS12[c] for c in tls.cipher_suites if c in CIPHERS_TLS12]
    if suites:
        try:
            context.set_ciphers(":".join(suites))
        except ssl.SSLError:
            raise fail("cipher_suites", "none is available in this OpenSSL") from None
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    for curve in tls.curve_preferences:
        context.set_ecdh_curve(_CURVES.get(curve, curve))
    return context, used


def load_web_config(path: str | Path) -> WebConfig:
    """Read, validate and build a web config file; relative paths are from its folder."""
    # Empty, blank or comments only is refused (read_document): read as "no auth", it would
    # open every endpoint.
    return parse_web_config(read_document(path), str(path), Path(path).parent)


# ----------------------------------------------------------------------------- basic auth


class _LRU:
    """A bounded map that forgets the least recently used key first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[bytes, bool] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: bytes) -> bool:
        return key in self._items

    def get(self, key: bytes) -> bool | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: bytes, value: bool) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


#: How much nicer than the process a bcrypt thread runs: on a busy core the event loop
#: (scrapes, validations) goes first, and a spray's bcrypts get what is left.
BCRYPT_NICENESS = 10


def _lower_priority() -> None:
    """Make the calling (bcrypt) thread nicer; Linux has a nice value per thread."""
    try:
        thread = threading.get_native_id()
        os.setpriority(
            os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + BCRYPT_NICENESS
        )
    except (AttributeError, OSError):  # not Linux, or not allowed: the normal priority
        pass


def bcrypt_workers() -> int:
    """Threads for bcrypt: half the cores (one on two), at most four; the rest of the
    machine stays for the event loop, the validations and the scrapes."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes, as exporter-toolkit does, and
    keeps doing so under a password spray.

    * Verified credentials are cached (a SHA-256 of user, hash and password, never the
      password; least recently used evicted): a scraper's known-good credentials never
      wait for a bcrypt. Refused ones are cached apart (a repeated wrong password costs one
      bcrypt), so that refusals never evict a success.
    * bcrypt runs on a small thread pool of its own (:func:`bcrypt_workers`), never on the
      event loop nor on the default executor other work uses, at a lower priority than the
      event loop (:data:`BCRYPT_NICENESS`). The same credentials arriving together share
      one check.
    * At most ``max_pending`` checks of unknown credentials run or wait; beyond, a request
      is answered 401 at once (``refused`` counts them). During a spray a *new* legitimate
      credential (a scraper whose password just changed) may be refused so until the spray
      stops or a place frees as it arrives; credentials verified before the spray are not
      affected.
    * An unknown user costs a bcrypt against a fixed hash, as a known one does (no user
      enumeration by timing); a refusal at once depends on the load, not on the user.
    """

    def __init__(self, max_pending: int = MAX_PENDING, workers: int | None = None) -> None:
        self.max_pending = max_pending
        self.workers = workers or bcrypt_workers()
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="bcrypt", initializer=_lower_priority
        )
        self._good = _LRU(GOOD_CACHE_SIZE)
        self._bad = _LRU(BAD_CACHE_SIZE)
        self._pending: dict[bytes, asyncio.Future[bool]] = {}
        self.bcrypt_calls = 0
        self.refused = 0
        self._refused_reported = 0
        self._reported_at = -60.0

    @property
    def pending(self) -> int:
        """Checks of unknown credentials running or waiting for a bcrypt thread."""
        return len(self._pending)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def check(self, config: WebConfig, authorization: str | None) -> bool:
        credentials = _parse_basic(authorization)
        if credentials is None:
            return False
        user, password = credentials
        hashed = config.users.get(user)
        valid_user = hashed is not None
        hashed = hashed if hashed is not None else _FAKE_HASH
        key = hashlib.sha256(
            b"\0".join((user.hex().encode(), hashed, password.hex().encode()))
        ).digest()
        if self._good.get(key):
            return valid_user
        if self._bad.get(key) is not None:
            return False
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= self.max_pending:
                self._overloaded()
                return False
            pending = asyncio.get_running_loop().run_in_executor(
                self._threads, _checkpw, password, hashed
            )
            self.bcrypt_calls += 1
            self._pending[key] = pending
            pending.add_done_callback(partial(self._settled, key, valid_user))
        # Shielded: a request that goes away leaves the check to finish and be cached, and
        # its place in the bound is freed only when the bcrypt thread is done.
        return await asyncio.shield(pending) and valid_user

    def _settled(self, key: bytes, valid_user: bool, done: asyncio.Future[bool]) -> None:
        del self._pending[key]
        if done.cancelled() or done.exception() is not None:
            return
        if done.result() and valid_user:
            self._good.put(key, True)
        else:
            self._bad.put(key, False)

    def _overloaded(self) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._reported_at >= 60:
            log.warning(
                "basic auth overloaded: requests with unknown credentials refused at once",
                extra={
                    "fields": {
                        "refused": self.refused - self._refused_reported,
                        "pending": len(self._pending),
                    }
                },
            )
            self._reported_at, self._refused_reported = now, self.refused


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # longer than 72 bytes (Go's bcrypt refuses those too)
        return False


def _parse_basic(authorization: str | None) -> tuple[bytes, bytes] | None:
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


# -------------------------------------------------------------------------------- watcher


class WebConfigWatcher:
    """The web config in force; re-read when one of its files changes (bad: old one kept)."""

    def __init__(
        self,
        path: str | Path,
        initial: WebConfig,
        registry: CollectorRegistry | None = None,
        interval: float = 2.0,
    ) -> None:
        self.path = str(path)
        self.current = initial
        self.interval = interval
        self.auth = BasicAuth()
        self._signature = _signature(initial.files)
        self._checked = time.monotonic()
        self.reloads = Counter(
            "acme_http01_web_config_reloads",
            "Reloads of --web.config.file by result (a failure keeps the previous file).",
            ["result"],
            registry=registry,
        )
        self.last_successful = Gauge(
            "acme_http01_web_config_last_reload_successful",
            "1 if the last reload of --web.config.file succeeded (0: a previous one is in force).",
            registry=registry,
        )
        for result in ("success", "failure"):
            self.reloads.labels(result)
        self.last_successful.set(1)

    @property
    def tls(self) -> bool:
        return self.current.ssl_context is not None

    async def get(self) -> WebConfig:
        """The config in force, after a reload if a file changed (checked every interval)."""
        now = time.monotonic()
        if now - self._checked < self.interval:
            return self.current
        self._checked = now
        signature = _signature(self.current.files)
        if signature == self._signature:
            return self.current
        self._signature = signature
        try:
            new = await asyncio.to_thread(load_web_config, self.path)
            removed = _removed(self.current, new)
        except ConfigError as exc:
            self.reloads.labels("failure").inc()
            self.last_successful.set(0)
            log.error(
                "web config reload failed; the previous one stays in force",
                extra={"fields": {"problems": str(exc)}},
            )
            return self.current
        self.current = new  # built whole, swapped in one step
        self._signature = _signature(new.files)
        self.reloads.labels("success").inc()
        self.last_successful.set(1)
        if removed:
            log.warning(
                "web config reload removes access control",
                extra={"fields": {"file": self.path, "removed": ", ".join(removed)}},
            )
        log.info("web config reloaded", extra={"fields": {"file": self.path}})
        return new


#: What a reload may take away only by saying so: (key, what it is, how to say it).
_GUARDED = (
    ("basic_auth_users", "basic auth", "basic_auth_users: {}"),
    (
        "tls_server_config.client_auth_type",
        "client certificate verification",
        "client_auth_type: NoClientCert (or VerifyClientCertIfGiven)",
    ),
    ("tls_server_config.client_allowed_sans", "the client SAN check", "client_allowed_sans: null"),
)


def _removed(old: WebConfig, new: WebConfig) -> list[str]:
    """The access control ``new`` removes from ``old``, each said explicitly in the file;
    ConfigError if one is removed by omission (a truncated file, a key forgotten)."""
    if (new.ssl_context is None) != (old.ssl_context is None):
        raise ConfigError(new.source, ["tls_server_config: turning TLS on or off needs a restart"])
    lost = {
        "basic_auth_users": bool(old.users) and not new.users,
        "tls_server_config.client_auth_type": new.client_verification < old.client_verification,
        "tls_server_config.client_allowed_sans": old.allowed_sans is not None
        and new.allowed_sans is None,
    }
    removed, problems = [], []
    for key, what, how in _GUARDED:
        if not lost[key]:
            continue
        if key in new.keys:
            removed.append(what)
        else:
            problems.append(
                f"{key}: missing while {what} is in force; to remove {what}, say so "
                f"explicitly ({how})"
            )
    if problems:
        raise ConfigError(new.source, problems)
    return removed


def _signature(files: tuple[str, ...]) -> tuple[Any, ...]:
    out: list[Any] = []
    for name in files:
        try:
            st = os.stat(name)
        except OSError:
            out.append(None)
        else:
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


def peer_sans(der: bytes | None) -> set[str]:
    """Every SAN of a client certificate (DNS, IP, e-mail, URI), as exporter-toolkit checks."""
    if not der:
        return set()
    try:
        certificate = x509.load_der_x509_certificate(der)
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return set()
    out: set[str] = set()
    for kind in (x509.DNSName, x509.RFC822Name, x509.UniformResourceIdentifier):
        out.update(str(v) for v in sans.get_values_for_type(kind))
    out.update(str(v) for v in sans.get_values_for_type(x509.IPAddress))
    return out
