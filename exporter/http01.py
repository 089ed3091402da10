"""The HTTP-01 validation driver: Let's Encrypt's validation, request by request.

Rule: this module does the I/O and nothing else. Every decision that is Let's
Encrypt policy (which address, whether to fall back, whether a redirect is
acceptable, what the response means, what the error says) is asked of
``exporter.policy``; DNS goes through the ``Resolver`` seam and every TCP
connect through the ``Dialer`` seam. Its only output is a ``ValidationResult``.

How errors are told apart (only the first kind may fall back)::

    DialFailure                 TCP connect failed (timeout, refused, unreachable)
    httpx.ConnectTimeout        TLS handshake took longer than the TLS timeout
    httpx.ConnectError          TLS handshake failed (alert, garbage, reset)
    httpx.RemoteProtocolError   not HTTP/1.x (HTTP/0.9, HTTP/2 preface, bad status line)
    httpx.ReadError             reset or EOF while waiting for the response
    TimeoutError (ours)         the validation's overall deadline fired

Timing is Let's Encrypt's: every dial is bounded by the dial timeout only; one
overall deadline covers the whole chain, the fallback included. When it fires
during a dial the result is "Timeout after connect" and there is no fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import secrets
import ssl
import time
import zlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import anyio.abc
import httpcore
import httpx
from httpcore._backends.anyio import AnyIOStream

from exporter import policy
from exporter.dial import Dialer, DialFailure
from exporter.dns import Resolver
from exporter.policy import AddressPolicy
from exporter.records import (
    Family,
    FamilyProbe,
    Outcome,
    Policy,
    Problem,
    ProblemType,
    Reason,
    Record,
    ValidationResult,
)

__all__ = ["USER_AGENT", "Settings", "Validator"]

#: What Let's Encrypt's production validation servers send.
USER_AGENT = (
    "Mozilla/5.0 (compatible; Let's Encrypt validation server; +https://www.letsencrypt.org)"
)


@dataclass(frozen=True, slots=True)
class Settings:
    policy: Policy = Policy.BOULDER
    dial_timeout: float = 10.0  # va/va.go singleDialTimeout
    validation_timeout: float = 20.0  # the caller's budget (not public; Boulder's tests use 20 s)
    tls_timeout: float = 10.0  # va/http.go TLSHandshakeTimeout
    user_agent: str = USER_AGENT
    addresses: AddressPolicy = field(default_factory=AddressPolicy)


class _Phase(StrEnum):
    DNS = "dns"
    DIAL = "dial"
    WAIT = "wait"  # connected; TLS handshake or waiting for the response head
    BODY = "body"


@dataclass(slots=True)
class _Progress:
    """Where a request is, so that a deadline can be reported like Let's Encrypt does."""

    phase: _Phase = _Phase.DNS
    first_bytes: bytes = b""  # the start of what the server sent (to recognise HTTP/2)


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    location: str | None
    body: bytes


class _Failed(Exception):
    """A request that produced no HTTP response (or no readable body)."""

    def __init__(self, reason: Reason, text: str = "") -> None:
        super().__init__(reason, text)
        self.reason = reason
        self.text = text


def _make_ssl_context() -> ssl.SSLContext:
    """No certificate verification (the server has no certificate yet), TLS >= 1.2."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Dials the one address chosen by the policy, whatever host the URL names."""

    def __init__(self, dialer: Dialer, address: str, timeout: float, progress: _Progress):
        self._dialer = dialer
        self._address = address
        self._timeout = timeout
        self._progress = progress

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        self._progress.phase = _Phase.DIAL
        sock = await self._dialer.dial(self._address, port, self._timeout)
        self._progress.phase = _Phase.WAIT
        try:
            stream = await anyio.abc.SocketStream.from_socket(sock)
        except BaseException:
            sock.close()
            raise
        return _RecordingStream(AnyIOStream(stream), self._progress)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:  # pragma: no cover - never used
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - no retries
        await asyncio.sleep(seconds)


class _RecordingStream(httpcore.AsyncNetworkStream):
    """Keeps the first bytes the server sends, so that an error can say what they were."""

    def __init__(self, stream: httpcore.AsyncNetworkStream, progress: _Progress) -> None:
        self._stream = stream
        self._progress = progress

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = await self._stream.read(max_bytes, timeout)
        if len(self._progress.first_bytes) < 16:
            self._progress.first_bytes += data[: 16 - len(self._progress.first_bytes)]
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            return await self._stream.start_tls(ssl_context, server_hostname, timeout)
        except BaseException:
            # httpcore closes the socket on a failed handshake but not when the validation's
            # deadline cancels it mid-handshake; close it here so no socket is left behind.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._stream.aclose())
            raise

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport around a pool whose network backend is pinned.

    The parent's ``__init__`` is deliberately not called: it would build a connection
    pool (and TLS setup) only for it to be replaced; ``handle_async_request`` only
    needs ``_pool``, the one seam httpx does not expose.
    """

    def __init__(self, backend: _PinnedBackend, ssl_context: ssl.SSLContext) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=1,
            max_keepalive_connections=0,
            http1=True,
            http2=False,
            network_backend=backend,
        )


def _ssl_reason(exc: BaseException) -> tuple[Reason, str]:
    """Classify a failed TLS handshake. Only an alert from the peer is type ``tls``."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            name = (cause.reason or "").upper()
            if "ALERT" in name:
                alert = name.split("ALERT_", 1)[-1].replace("_", " ").lower()
                return Reason.TLS_ALERT, f"remote error: tls: {alert}"
            return Reason.TLS_ERROR, ""
        if isinstance(cause, ConnectionResetError):
            return Reason.CONNECTION_RESET, ""
        if isinstance(cause, OSError) and cause.errno == errno.ECONNRESET:
            return Reason.CONNECTION_RESET, ""
        cause = cause.__cause__ or cause.__context__
    return Reason.TLS_ERROR, ""


def _looks_like_http2(first: bytes) -> bool:
    """An HTTP/2 frame header (length, type SETTINGS) where an HTTP/1.1 status line belongs."""
    return len(first) >= 9 and first[3] == 0x04 and first[:1] == b"\x00"


def _classify(exc: Exception, first: bytes = b"") -> _Failed:
    if isinstance(exc, DialFailure):
        return _Failed(exc.reason, str(exc))
    if isinstance(exc, httpx.ConnectTimeout):
        return _Failed(Reason.TLS_HANDSHAKE_TIMEOUT)
    if isinstance(exc, httpx.ConnectError):
        reason, text = _ssl_reason(exc)
        return _Failed(reason, text)
    if isinstance(exc, httpx.RemoteProtocolError):
        if _looks_like_http2(first):
            return _Failed(Reason.HTTP2_OVER_HTTP)
        return _Failed(Reason.PROTOCOL_ERROR, str(exc))
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ConnectionResetError):
                return _Failed(Reason.CONNECTION_RESET)
            cause = cause.__cause__ or cause.__context__
        return _Failed(Reason.PROTOCOL_ERROR, str(exc))
    if isinstance(exc, httpx.TransportError | httpx.DecodingError | httpx.InvalidURL):
        return _Failed(Reason.PROTOCOL_ERROR, str(exc))
    raise exc


class _BodyError(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(slots=True)
class _Run:
    """The mutable state of one validation; Boulder's records/numRedirects closure."""

    url: str
    policy: Policy
    records: list[Record] = field(default_factory=list)
    redirects: int = 0
    fallback: bool = False
    current_url: str = ""
    location: str | None = None
    hop: int = 0
    progress: _Progress = field(default_factory=_Progress)
    first_responses: dict[str, _Response | _Failed] = field(default_factory=dict)
    probe_task: asyncio.Task[_Response | _Failed] | None = None


class _ChainError(Exception):
    def __init__(self, problem: Problem, hop: int, dial_failure: bool = False) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.hop = hop
        self.dial_failure = dial_failure


class Validator:
    """Validates domains the way Let's Encrypt does. One instance serves many validations."""

    def __init__(self, settings: Settings, resolver: Resolver, dialer: Dialer | None = None):
        self.settings = settings
        self.resolver = resolver
        self.dialer = dialer or Dialer()
        self._ssl = _make_ssl_context()
        self._headers = {
            "User-Agent": settings.user_agent,
            "Accept": "*/*",
            "Accept-Encoding": "gzip",
            "Connection": "close",
        }
        # The TLS handshake is bounded by the TLS timeout; everything after it only by the
        # validation's overall deadline (the dial has its own timeout, in the backend).
        self._extensions = {
            "timeout": {"connect": settings.tls_timeout, "read": None, "write": None, "pool": None}
        }

    # ------------------------------------------------------------------ one request

    async def _fetch(self, url: str, address: str, progress: _Progress) -> _Response:
        """One GET pinned to ``address``; the body only for a response that ends a chain."""
        backend = _PinnedBackend(self.dialer, address, self.settings.dial_timeout, progress)
        transport = _PinnedTransport(backend, self._ssl)
        request = httpx.Request("GET", url, headers=self._headers, extensions=self._extensions)
        try:
            response = await transport.handle_async_request(request)
            try:
                location = response.headers.get("location")
                if response.status_code != 200:
                    # Let's Encrypt reads the body of a 200 response only.
                    return _Response(response.status_code, location, b"")
                progress.phase = _Phase.BODY
                body = await _read_body(response)
                return _Response(response.status_code, location, bytes(body))
            finally:
                await response.aclose()
        except (_BodyError, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise _classify(exc, progress.first_bytes) from None

    async def _lookup(self, host: str) -> policy.Resolution | Problem:
        a, aaaa = await asyncio.gather(
            self.resolver.lookup(host, Family.IPV4), self.resolver.lookup(host, Family.IPV6)
        )
        return policy.resolve_verdict(host, a, aaaa, self.settings.addresses)

    # ------------------------------------------------------------------ the chain

    def _record(self, run: _Run, **changes: Any) -> None:
        run.records[-1] = dataclasses.replace(run.records[-1], **changes)

    async def _chain(self, run: _Run, start: policy.Resolution, address: str) -> _Response:
        """Follow one chain from the initial URL; per-hop retries happen inside."""
        url, target, hop = run.url, start, 0
        current_address = address
        while True:
            run.current_url, run.hop = url, hop
            try:
                response = await self._fetch(url, current_address, run.progress)
            except _Failed as failed:
                self._record(run, outcome=Outcome.FAILED, error=failed.reason)
                if hop == 0 and run.records[-1].url == run.url:
                    run.first_responses.setdefault(current_address, failed)
                if policy.may_fall_back(failed.reason):
                    action = policy.fallback_action(
                        run.policy,
                        hop=hop,
                        initial_has_unused_fallback=not run.fallback and start.fallback is not None,
                        hop_has_unused_fallback=(
                            target.fallback is not None and current_address != target.fallback
                        ),
                    )
                    if action is policy.FallbackAction.RETRY_HOP and target.fallback is not None:
                        run.fallback = True
                        current_address = target.fallback
                        run.records.append(
                            dataclasses.replace(
                                run.records[-1],
                                address_used=current_address,
                                outcome=Outcome.NOT_SENT,
                                error=None,
                            )
                        )
                        continue
                    if action is policy.FallbackAction.REPLAY_INITIAL:
                        raise _ChainError(
                            self._transport_problem(run, failed), hop, dial_failure=True
                        ) from None
                raise _ChainError(self._transport_problem(run, failed), hop) from None
            except _BodyError as body_error:
                self._record(run, outcome=Outcome.RESPONSE, error=Reason.BODY_READ_ERROR)
                problem = Problem(
                    ProblemType.UNAUTHORIZED,
                    Reason.BODY_READ_ERROR,
                    policy.ip_detail(
                        run.records[-1].address_used,
                        f"Error reading HTTP response body: {body_error.text}",
                    ),
                )
                raise _ChainError(problem, hop) from None
            if hop == 0 and run.records[-1].url == run.url:
                run.first_responses.setdefault(current_address, response)
            if response.location is None or response.status not in policy.GO_FOLLOWED_STATUSES:
                self._record(run, outcome=Outcome.RESPONSE, status=response.status)
                return response
            # A redirect: Let's Encrypt's checks, then a fresh lookup of the new host.
            used = run.records[-1].address_used
            run.location = response.location
            decision = policy.check_redirect(
                current_url=url,
                status=response.status,
                location=response.location,
                redirects_followed=run.redirects,
                seen_urls={r.url for r in run.records},
                addresses=self.settings.addresses,
            )
            run.redirects += 1
            if isinstance(decision, policy.RedirectRefusal):
                self._record(
                    run,
                    outcome=Outcome.REFUSED_REDIRECT,
                    status=response.status,
                    error=decision.reason,
                )
                detail = policy.ip_detail(used, f"Fetching {response.location}: {decision.message}")
                raise _ChainError(Problem(decision.type, decision.reason, detail), hop + 1)
            if decision.is_ip:
                resolved: policy.Resolution | Problem = policy.Resolution(
                    decision.host, (decision.host,), (decision.host,), v4=0, v6=0
                )
            else:
                run.progress.phase = _Phase.DNS
                resolved = await self._lookup(decision.host)
            if isinstance(resolved, Problem):
                self._record(
                    run,
                    outcome=Outcome.REFUSED_REDIRECT,
                    status=response.status,
                    error=resolved.reason,
                )
                detail = policy.ip_detail(used, f"Fetching {response.location}: {resolved.detail}")
                raise _ChainError(Problem(resolved.type, resolved.reason, detail), hop + 1)
            self._record(run, outcome=Outcome.REDIRECT, status=response.status)
            hop += 1
            url, target = decision.url, resolved
            current_address = resolved.candidates[0]
            run.records.append(
                Record(
                    url=url,
                    hostname=decision.host,
                    port=decision.port,
                    addresses_resolved=resolved.addresses,
                    address_used=current_address,
                    hop=hop,
                )
            )

    def _transport_problem(self, run: _Run, failed: _Failed) -> Problem:
        return policy.transport_problem(
            failed.reason,
            ip=run.records[-1].address_used,
            url=run.current_url,
            text=failed.text,
        )

    def _deadline_problem(self, run: _Run) -> tuple[Problem, int]:
        phase = run.progress.phase
        if phase is _Phase.BODY:
            self._record(run, outcome=Outcome.RESPONSE, error=Reason.BODY_READ_ERROR)
            return (
                Problem(
                    ProblemType.UNAUTHORIZED,
                    Reason.BODY_READ_ERROR,
                    policy.ip_detail(
                        run.records[-1].address_used,
                        "Error reading HTTP response body: context deadline exceeded",
                    ),
                ),
                run.hop,
            )
        if phase is _Phase.DNS and run.location is not None:
            # The deadline fired while looking up a redirect target.
            self._record(run, outcome=Outcome.REFUSED_REDIRECT, error=Reason.VALIDATION_TIMEOUT)
            problem = policy.transport_problem(
                Reason.VALIDATION_TIMEOUT, ip=run.records[-1].address_used, url=run.location
            )
            return problem, run.hop + 1
        reason = Reason.VALIDATION_TIMEOUT if phase is _Phase.DIAL else Reason.READ_TIMEOUT
        self._record(run, outcome=Outcome.FAILED, error=reason)
        failed = _Failed(reason)
        return self._transport_problem(run, failed), run.hop

    async def _validate_chain(
        self, run: _Run, start: policy.Resolution
    ) -> tuple[_Response | None, Problem | None, int | None]:
        """Returns the final response, or the problem and the failed hop."""
        try:
            try:
                return await self._chain(run, start, start.candidates[0]), None, None
            except _ChainError as first:
                if not first.dial_failure or start.fallback is None:
                    raise
                # boulder: the initial host moves to its IPv4 address; the chain is replayed.
                run.fallback = True
                run.records.append(
                    Record(
                        url=run.url,
                        hostname=start.host,
                        port=policy.HTTP_PORT,
                        addresses_resolved=start.addresses,
                        address_used=start.fallback,
                        hop=0,
                    )
                )
                run.location = None
                return await self._chain(run, start, start.fallback), None, None
        except _ChainError as error:
            return None, error.problem, error.hop

    # ------------------------------------------------------------------ family probes

    async def _probe(self, url: str, address: str) -> _Response | _Failed:
        try:
            async with asyncio.timeout(self.settings.validation_timeout):
                return await self._fetch(url, address, _Progress())
        except _Failed as failed:
            return failed
        except _BodyError:
            return _Failed(Reason.BODY_READ_ERROR)
        except TimeoutError:
            return _Failed(Reason.READ_TIMEOUT)

    def _family_probe(
        self, family: Family, address: str, outcome: _Response | _Failed, ka: str | None
    ) -> FamilyProbe:
        if isinstance(outcome, _Failed):
            return FamilyProbe(family, address, False, None, None, None, outcome.reason)
        matches: bool | None = None
        if ka is not None and outcome.status == 200:
            matches = policy.trim_right_space(outcome.body) == ka.encode()
        return FamilyProbe(family, address, True, outcome.status, outcome.location, matches, None)

    # ------------------------------------------------------------------ entry point

    async def validate(
        self,
        domain: str,
        *,
        token: str | None = None,
        key_authorization: str | None = None,
    ) -> ValidationResult:
        """Validate ``domain`` as Let's Encrypt would; never raises for a domain's fault.

        When a redirect hop's dial failed, the two fallback policies can disagree, so
        the other one is run too and its verdict kept in ``other_policy_success``.
        """
        canary = token is not None and key_authorization is not None
        if not canary:
            token, key_authorization = secrets.token_urlsafe(32), None
        assert token is not None
        primary = self.settings.policy
        result = await self._validate(domain, token, key_authorization, primary)
        if any(
            r.hop > 0 and r.error is not None and policy.may_fall_back(r.error)
            for r in result.records
        ):
            other = Policy.PER_HOP if primary is Policy.BOULDER else Policy.BOULDER
            alternative = await self._validate(domain, token, key_authorization, other)
            result = dataclasses.replace(
                result, other_policy=other, other_policy_success=alternative.success
            )
        return result

    async def _validate(
        self, domain: str, token: str, key_authorization: str | None, chosen: Policy
    ) -> ValidationResult:
        started = time.monotonic()
        mode = "reachability" if key_authorization is None else "canary"
        run = _Run(url=policy.challenge_url(domain, token), policy=chosen)
        empty = ValidationResult.unreached(domain, chosen, mode)
        try:
            return await self._validate_steps(run, domain, key_authorization, empty, started)
        finally:
            if run.probe_task is not None and not run.probe_task.done():
                run.probe_task.cancel()

    async def _validate_steps(
        self,
        run: _Run,
        domain: str,
        key_authorization: str | None,
        empty: ValidationResult,
        started: float,
    ) -> ValidationResult:
        settings = self.settings
        response: _Response | None = None
        problem: Problem | None = None
        failed_hop: int | None = None
        start: policy.Resolution | Problem
        try:
            async with asyncio.timeout(settings.validation_timeout):
                start = await self._lookup(domain)
                if isinstance(start, Problem):
                    return dataclasses.replace(
                        empty,
                        problem=start,
                        duration_seconds=time.monotonic() - started,
                        finished_at=time.time(),
                    )
                if start.fallback is not None:
                    run.probe_task = asyncio.create_task(self._probe(run.url, start.fallback))
                run.records.append(
                    Record(
                        url=run.url,
                        hostname=domain,
                        port=policy.HTTP_PORT,
                        addresses_resolved=start.addresses,
                        address_used=start.candidates[0],
                        hop=0,
                    )
                )
                response, problem, failed_hop = await self._validate_chain(run, start)
        except TimeoutError:
            if not run.records:
                problem = Problem(
                    ProblemType.DNS,
                    Reason.DNS_TIMEOUT,
                    f"DNS problem: query timed out looking up A for {domain}; "
                    f"DNS problem: query timed out looking up AAAA for {domain}",
                )
                return dataclasses.replace(
                    empty,
                    problem=problem,
                    duration_seconds=time.monotonic() - started,
                    finished_at=time.time(),
                )
            problem, failed_hop = self._deadline_problem(run)
        assert not isinstance(start, Problem)
        if response is not None and problem is None:
            last = run.records[-1]
            problem = policy.check_response(
                status=response.status,
                body=response.body,
                key_authorization=key_authorization,
                url=last.url,
                ip=last.address_used,
            )
            if problem is not None:
                failed_hop = last.hop
        families = self._families(run, start, key_authorization)
        if run.probe_task is not None:
            v4_outcome = await run.probe_task
            families.append(
                self._family_probe(Family.IPV4, start.candidates[1], v4_outcome, key_authorization)
            )
        mismatch = len(families) == 2 and families[0].signature() != families[1].signature()
        return dataclasses.replace(
            empty,
            success=problem is None,
            problem=problem,
            records=tuple(run.records),
            ipv4_fallback=run.fallback,
            failed_hop=failed_hop,
            redirects=sum(1 for r in run.records if r.outcome is Outcome.REDIRECT),
            aaaa_mismatch=mismatch,
            families=tuple(families),
            dns_addresses={Family.IPV4: start.v4, Family.IPV6: start.v6},
            duration_seconds=time.monotonic() - started,
            finished_at=time.time(),
        )

    def _families(self, run: _Run, start: policy.Resolution, ka: str | None) -> list[FamilyProbe]:
        """The first request to the first address, from the chain itself."""
        first = start.candidates[0]
        family = Family.IPV6 if ":" in first else Family.IPV4
        outcome = run.first_responses.get(first)
        if outcome is None:
            outcome = _Failed(run.records[0].error or Reason.READ_TIMEOUT)
        return [self._family_probe(family, first, outcome, ka)]


async def _read_body(response: httpx.Response) -> bytes:
    """At most MAX_RESPONSE_SIZE bytes of the body, never buffering more.

    Like Go's transport, a gzip body (which we asked for) is decoded, and decoded only
    as far as needed: a decompression bomb costs 128 bytes of output, not gigabytes.
    """
    limit = policy.MAX_RESPONSE_SIZE
    gzipped = response.headers.get("content-encoding", "").strip().lower() == "gzip"
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    body = bytearray()
    try:
        async for chunk in response.aiter_raw():
            if decoder is not None:
                chunk = decoder.decompress(chunk, limit - len(body))
            body += chunk[: limit - len(body)]
            if len(body) >= limit:
                break
    except (httpx.TransportError, httpx.DecodingError) as exc:
        raise _BodyError(_body_error_text(exc)) from None
    except zlib.error:
        raise _BodyError("gzip: invalid header") from None
    return bytes(body)


def _body_error_text(exc: Exception) -> str:
    """Go's io.ReadAll error text for what went wrong reading the body."""
    if isinstance(exc, httpx.RemoteProtocolError):
        return "unexpected EOF"
    if isinstance(exc, httpx.DecodingError):
        return "gzip: invalid header"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionResetError):
            return "connection reset by peer"
        cause = cause.__cause__ or cause.__context__
    return "unexpected EOF"
