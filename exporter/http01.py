"""The HTTP-01 validation driver: Let's Encrypt's validation, request by request.

Rule: this module follows the chain and nothing else. Every decision that is
Let's Encrypt policy (which address, whether to fall back, whether a redirect
is acceptable, what a response, a failure or a deadline means, and every word
of the verdict) is asked of ``exporter.policy``, and whether Let's Encrypt would
validate the name at all of ``exporter.names``; DNS goes through the
``Resolver`` seam and each request through the ``Fetcher`` seam
(``exporter.fetch``, where the failure classes are listed). Its only output is
a ``ValidationResult`` whose records list every request, one record each.

The shape is Boulder's (``va/http.go``): a :class:`Target` per host hands out
its next address; the driver loop sends one request, records it, and either
follows a redirect (a new Target), falls back as the policy says, or stops.
Two further steps read the chain's result: the AAAA-vs-A comparison (the first
request sent to the IPv4 address too, concurrently, no fallback, no redirects)
and, when a redirect hop's dial failed, the same validation under the other
fallback policy.

Timing is Let's Encrypt's: every dial is bounded by the dial timeout only; one
overall deadline covers the whole chain, the fallback included. When it fires
during a dial the result is "Timeout after connect" and there is no fallback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from exporter import caa, names, policy
from exporter.dial import Dialer
from exporter.dns import Resolver
from exporter.fetch import BodyError, Failed, Fetcher, Progress, Response
from exporter.policy import AddressPolicy, FallbackAction, Phase, Resolution
from exporter.records import (
    CaaCheck,
    DnsFamilyError,
    FallbackPolicy,
    Family,
    FamilyProbe,
    Mode,
    Outcome,
    Problem,
    Reason,
    Record,
    ValidationResult,
)

__all__ = ["Settings", "Target", "Validator"]


@dataclass(frozen=True, slots=True)
class Settings:
    """What a validator needs to know; built from the config (``exporter.compose``)."""

    policy: FallbackPolicy
    dial_timeout: float
    validation_timeout: float
    tls_timeout: float
    addresses: AddressPolicy
    #: Check CAA as Let's Encrypt does, as part of every validation.
    caa: bool
    #: The ACME account URIs a CAA ``accounturi`` may name (when a domain names none).
    account_uris: frozenset[str]
    #: URLs whose reading the fetcher keeps (about four per domain: see compose).
    remembered_urls: int = 4096


class Target:
    """One host of the chain and the addresses Let's Encrypt may still dial for it.

    Boulder's ``httpValidationTarget``: the first AAAA is current; :meth:`next_address`
    moves to the first A, once. A host with one family has nothing to move to.
    """

    __slots__ = ("_next", "current", "resolution")

    def __init__(self, resolution: Resolution) -> None:
        self.resolution = resolution
        self.current = resolution.candidates[0]
        self._next = list(resolution.candidates[1:])

    @property
    def has_next(self) -> bool:
        return bool(self._next)

    def next_address(self) -> str:
        """Move to the next address (the caller checked :attr:`has_next`)."""
        self.current = self._next.pop(0)
        return self.current


class _ChainError(Exception):
    """The chain ended without a final response: ``problem`` on ``hop``."""

    def __init__(self, problem: Problem, hop: int, *, replay: bool = False) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.hop = hop
        self.replay = replay  # boulder: replay the chain from the initial host's IPv4


@dataclass(slots=True)
class _Chain:
    """One validation's requests so far: Boulder's ``records``/``numRedirects`` closure."""

    url: str  # the initial URL
    policy: FallbackPolicy
    records: list[Record] = field(default_factory=list)
    redirects: int = 0
    fell_back: bool = False
    current_url: str = ""
    hop: int = 0
    #: the Location whose host is being looked up (a deadline then blames it)
    location: str | None = None
    progress: Progress = field(default_factory=Progress)
    #: the outcome of the first request to each address of the initial URL
    first_outcomes: dict[str, Response | Failed] = field(default_factory=dict)
    #: one family's lookup errors that Let's Encrypt drops, per hop
    family_errors: list[DnsFamilyError] = field(default_factory=list)

    def resolved(self, resolution: Resolution, hop: int) -> None:
        """Keep what Let's Encrypt hides of ``hop``'s lookup (a replay looks up again)."""
        for hidden in resolution.hidden:
            error = DnsFamilyError(
                hop, resolution.host, hidden.family, hidden.reason, hidden.detail
            )
            if error not in self.family_errors:
                self.family_errors.append(error)

    def begin(self, url: str, hostname: str, port: int, target: Target, hop: int) -> None:
        """A new record for the request about to be sent to ``target.current``."""
        self.records.append(
            Record(
                url=url,
                hostname=hostname,
                port=port,
                addresses_resolved=target.resolution.addresses,
                address_used=target.current,
                hop=hop,
            )
        )

    def retry(self, address: str) -> None:
        """The same request again, to ``address`` (a per-hop fallback)."""
        self.records.append(
            dataclasses.replace(
                self.records[-1], address_used=address, outcome=Outcome.NOT_SENT, error=None
            )
        )

    def finish(
        self, outcome: Outcome, *, status: int | None = None, error: Reason | None = None
    ) -> None:
        """Set the outcome of the request in progress (the last record)."""
        self.records[-1] = dataclasses.replace(
            self.records[-1], outcome=outcome, status=status, error=error
        )

    @property
    def ip(self) -> str:
        return self.records[-1].address_used


class Fetch(Protocol):
    """The fetch seam as the validator uses it (``exporter.fetch.Fetcher``)."""

    async def fetch(self, url: str, address: str, progress: Progress) -> Response: ...


class Validator:
    """Validates domains the way Let's Encrypt does. One instance serves many validations.

    Its seams: ``resolver`` (DNS), ``dialer`` (TCP), and the fetcher built over the
    dialer, which a test may replace with its own ``fetcher``.
    """

    def __init__(
        self,
        settings: Settings,
        resolver: Resolver,
        dialer: Dialer,
        *,
        fetcher: Fetch | None = None,
    ) -> None:
        self.settings = settings
        self.resolver = resolver
        self.fetcher: Fetch = fetcher or Fetcher(
            dialer,
            dial_timeout=settings.dial_timeout,
            tls_timeout=settings.tls_timeout,
            user_agent=policy.USER_AGENT,
            remembered_urls=settings.remembered_urls,
        )

    # ------------------------------------------------------------------ entry point

    async def validate(
        self,
        domain: str,
        *,
        token: str | None = None,
        key_authorization: str | None = None,
        account_uris: frozenset[str] | None = None,
    ) -> ValidationResult:
        """Validate ``domain`` as Let's Encrypt would; never raises for a domain's fault.

        The CAA check runs beside the HTTP-01 fetch (``account_uris``: the domain's own,
        else the settings'); the verdict is Let's Encrypt's: both must pass, and the
        problem is the fetch's if it failed, else CAA's. When a redirect hop's dial
        failed, the two fallback policies can disagree, so the other one is run too
        and its verdict kept in ``other_policy_success``.

        A name Let's Encrypt's policy refuses (``exporter.names.refusal``) is never
        validated: the verdict is that refusal, with no DNS query and no connection.
        """
        started = time.monotonic()
        if key_authorization is None or token is None:
            token, key_authorization = secrets.token_urlsafe(32), None
        refused = names.refusal(domain)
        if refused is not None:
            return _unreached(
                domain, self.settings.policy, Mode.of(key_authorization), refused, started
            )
        check: asyncio.Task[CaaCheck] | None = None
        if self.settings.caa:
            check = asyncio.create_task(self.check_caa(domain, account_uris))
        try:
            primary = self.settings.policy
            result = await self._validate(domain, token, key_authorization, primary, compare=True)
            other_success: bool | None = None
            other: FallbackPolicy | None = None
            if policy.policies_may_disagree(result.records):
                other = (
                    FallbackPolicy.PER_HOP
                    if primary is FallbackPolicy.BOULDER
                    else FallbackPolicy.BOULDER
                )
                alternative = await self._validate(
                    domain, token, key_authorization, other, compare=False
                )
                other_success = alternative.success
            caa_check = None if check is None else await check
        finally:
            _settle(check)
        combined = policy.combine_caa(
            result, caa_check, other_policy=other, other_policy_success=other_success
        )
        # The fetch and the CAA lookups run side by side: the validation took the longer.
        elapsed = time.monotonic() - started
        if caa_check is not None and elapsed > combined.duration_seconds:
            combined = dataclasses.replace(combined, duration_seconds=elapsed)
        return combined

    async def check_caa(self, domain: str, account_uris: frozenset[str] | None = None) -> CaaCheck:
        """Let's Encrypt's CAA check of ``domain``: every name up to the TLD, at once."""
        names = caa.caa_names(domain)
        answers = await asyncio.gather(*(self.resolver.lookup_caa(name) for name in names))
        uris = self.settings.account_uris if account_uris is None else account_uris
        return caa.check_caa(domain, answers, account_uris=uris)

    async def _validate(
        self,
        domain: str,
        token: str,
        key_authorization: str | None,
        chosen: FallbackPolicy,
        *,
        compare: bool,
    ) -> ValidationResult:
        """One validation under ``chosen``; with ``compare``, the AAAA-vs-A comparison too."""
        started = time.monotonic()
        mode = Mode.of(key_authorization)
        chain = _Chain(url=policy.challenge_url(domain, token), policy=chosen)
        probe: asyncio.Task[Response | Failed] | None = None
        try:
            response: Response | None = None
            problem: Problem | None = None
            failed_hop: int | None = None
            start: Resolution | Problem | None = None
            try:
                async with asyncio.timeout(self.settings.validation_timeout):
                    start = await self._lookup(domain)
                    if isinstance(start, Problem):
                        return _unreached(domain, chosen, mode, start, started)
                    chain.resolved(start, 0)
                    if compare and start.fallback is not None:
                        probe = asyncio.create_task(self._probe(chain.url, start.fallback))
                    response, problem, failed_hop = await self._run(chain, Target(start))
            except TimeoutError:
                if not isinstance(start, Resolution):
                    problem = policy.dns_deadline_problem(domain)
                    return _unreached(domain, chosen, mode, problem, started)
                deadline = policy.deadline_verdict(
                    chain.progress.phase,
                    ip=chain.ip,
                    url=chain.current_url,
                    redirect_location=chain.location,
                )
                chain.finish(deadline.outcome, error=deadline.error)
                problem, failed_hop = deadline.problem, chain.hop + deadline.hop_offset
            if response is not None and problem is None:
                last = chain.records[-1]
                problem = policy.check_response(
                    status=response.status,
                    body=response.body,
                    key_authorization=key_authorization,
                    url=last.url,
                    ip=last.address_used,
                )
                if problem is not None:
                    failed_hop = last.hop
            families: tuple[FamilyProbe, ...] = ()
            if compare:
                families = await self._compare_families(chain, start, probe, key_authorization)
        finally:
            _settle(probe)
        return ValidationResult(
            domain=domain,
            policy=chosen,
            mode=mode,
            success=problem is None,
            problem=problem,
            records=tuple(chain.records),
            ipv4_fallback=chain.fell_back,
            failed_hop=failed_hop,
            redirects=sum(1 for r in chain.records if r.outcome is Outcome.REDIRECT),
            aaaa_mismatch=len(families) == 2 and families[0].signature() != families[1].signature(),
            families=families,
            dns_addresses={Family.IPV4: start.v4, Family.IPV6: start.v6},
            dns_family_errors=tuple(chain.family_errors),
            duration_seconds=time.monotonic() - started,
            finished_at=time.time(),
        )

    async def _lookup(self, host: str) -> Resolution | Problem:
        a, aaaa = await asyncio.gather(
            self.resolver.lookup(host, Family.IPV4), self.resolver.lookup(host, Family.IPV6)
        )
        return policy.resolve_verdict(host, a, aaaa, self.settings.addresses)

    # ------------------------------------------------------------------ the chain

    async def _run(
        self, chain: _Chain, initial: Target
    ) -> tuple[Response | None, Problem | None, int | None]:
        """Follow the chain, replaying it once from the IPv4 address when boulder says so.

        Returns the final response, or the problem and the hop it happened on.
        """
        chain.begin(chain.url, initial.resolution.host, policy.HTTP_PORT, initial, 0)
        try:
            try:
                return await self._follow(chain, initial), None, None
            except _ChainError as error:
                if not error.replay:
                    raise
                # boulder: the initial host moves to its IPv4 address; the chain is replayed.
                chain.fell_back = True
                initial.next_address()
                chain.begin(chain.url, initial.resolution.host, policy.HTTP_PORT, initial, 0)
                chain.location = None
                return await self._follow(chain, initial), None, None
        except _ChainError as error:
            return None, error.problem, error.hop

    async def _follow(self, chain: _Chain, initial: Target) -> Response:
        """The driver loop: request, record, then redirect, fall back or stop."""
        url, target, hop = chain.url, initial, 0
        while True:
            chain.current_url, chain.hop = url, hop
            outcome = await self._request(chain, url, target.current, hop)
            if isinstance(outcome, Failed):
                action = policy.fallback_action(
                    chain.policy,
                    reason=outcome.reason,
                    initial_has_unused_fallback=initial.has_next,
                    hop_has_unused_fallback=target.has_next,
                )
                if action is FallbackAction.RETRY_HOP:
                    chain.fell_back = True
                    chain.retry(target.next_address())
                    continue
                problem = policy.transport_problem(
                    outcome.reason, ip=chain.ip, url=url, text=outcome.text
                )
                raise _ChainError(problem, hop, replay=action is FallbackAction.REPLAY_INITIAL)
            if not policy.is_followed_redirect(outcome.status, outcome.location):
                chain.finish(Outcome.RESPONSE, status=outcome.status)
                return outcome
            assert outcome.location is not None
            redirect, target = await self._redirect(chain, url, outcome.status, outcome.location)
            hop, url = hop + 1, redirect.url
            chain.begin(url, redirect.host, redirect.port, target, hop)

    async def _request(self, chain: _Chain, url: str, address: str, hop: int) -> Response | Failed:
        """One request; a failure is recorded and returned, a body error ends the chain."""
        try:
            if not policy.is_dialable_host(chain.records[-1].hostname):
                raise Failed(Reason.PROTOCOL_ERROR)  # Go dials another name than it resolved
            response = await self.fetcher.fetch(url, address, chain.progress)
        except Failed as failed:
            chain.finish(Outcome.FAILED, error=failed.reason)
            if hop == 0 and url == chain.url:
                chain.first_outcomes.setdefault(address, failed)
            return failed
        except BodyError as error:
            chain.finish(Outcome.RESPONSE, error=Reason.BODY_READ_ERROR)
            raise _ChainError(policy.body_read_problem(chain.ip, error.text), hop) from None
        if hop == 0 and url == chain.url:
            chain.first_outcomes.setdefault(address, response)
        return response

    async def _redirect(
        self, chain: _Chain, url: str, status: int, location: str
    ) -> tuple[policy.RedirectTarget, Target]:
        """Let's Encrypt's redirect checks, then a fresh lookup of the new host."""
        decision = policy.check_redirect(
            current_url=url,
            status=status,
            location=location,
            redirects_followed=chain.redirects,
            seen_urls={r.url for r in chain.records},
            addresses=self.settings.addresses,
        )
        chain.redirects += 1
        refusal: policy.RedirectRefusal | Problem
        if isinstance(decision, policy.RedirectRefusal):
            refusal = decision
        else:
            if decision.is_ip:
                resolved: Resolution | Problem = Resolution(
                    decision.host, (decision.host,), (decision.host,), v4=0, v6=0
                )
            else:
                chain.location = policy.valid_utf8(location)  # a deadline names it
                chain.progress.phase = Phase.DNS
                resolved = await self._lookup(decision.host)
            if isinstance(resolved, Resolution):
                chain.resolved(resolved, chain.hop + 1)
                chain.finish(Outcome.REDIRECT, status=status)
                return decision, Target(resolved)
            refusal = resolved
        chain.finish(Outcome.REFUSED_REDIRECT, status=status, error=refusal.reason)
        problem = policy.redirect_problem(ip=chain.ip, location=location, refusal=refusal)
        raise _ChainError(problem, chain.hop + 1)

    # ------------------------------------------------------------------ AAAA vs A

    async def _probe(self, url: str, address: str) -> Response | Failed:
        """The first request, sent to the IPv4 address: no fallback, no redirects."""
        try:
            async with asyncio.timeout(self.settings.validation_timeout):
                return await self.fetcher.fetch(url, address, Progress())
        except Failed as failed:
            return failed
        except BodyError:
            return Failed(Reason.BODY_READ_ERROR)
        except TimeoutError:
            return Failed(Reason.READ_TIMEOUT)

    async def _compare_families(
        self,
        chain: _Chain,
        start: Resolution | Problem | None,
        probe: asyncio.Task[Response | Failed] | None,
        key_authorization: str | None,
    ) -> tuple[FamilyProbe, ...]:
        """The first request to each family's first address, from the chain and the probe."""
        if not isinstance(start, Resolution):
            return ()
        first = start.candidates[0]
        outcome = chain.first_outcomes.get(first)
        if outcome is None:
            outcome = Failed(chain.records[0].error or Reason.READ_TIMEOUT)
        family = Family.of(first)
        families = [_family_probe(family, first, outcome, key_authorization)]
        if probe is not None:
            families.append(
                _family_probe(Family.IPV4, start.candidates[1], await probe, key_authorization)
            )
        return tuple(families)


def _family_probe(
    family: Family, address: str, outcome: Response | Failed, key_authorization: str | None
) -> FamilyProbe:
    if isinstance(outcome, Failed):
        return FamilyProbe(family, address, False, None, None, None, outcome.reason)
    matches: bool | None = None
    if key_authorization is not None and outcome.status == 200:
        matches = policy.body_matches(outcome.body, key_authorization)
    return FamilyProbe(family, address, True, outcome.status, outcome.location, matches, None)


def _unreached(
    domain: str, chosen: FallbackPolicy, mode: Mode, problem: Problem, started: float
) -> ValidationResult:
    """A validation that ended before any request: the policy refused the name, or the
    initial lookup failed or timed out."""
    return dataclasses.replace(
        ValidationResult.unreached(domain, chosen, mode, problem),
        duration_seconds=time.monotonic() - started,
        finished_at=time.time(),
    )


def _settle(task: asyncio.Task[Any] | None) -> None:
    """A side task the validation no longer needs: cancelled if still running, its
    exception (an ExporterResourceError, say) retrieved if it ended in one, so that asyncio
    never logs it as never retrieved."""
    if task is None:
        return
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()
