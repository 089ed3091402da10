"""The exporter service: scheduled validations, the HTTP endpoints, reloads, shutdown.

Rule: orchestration only. Validations come from ``exporter.http01``, metrics
from ``exporter.metrics`` (rendered from a snapshot at scrape time), HTTP
transport from ``exporter.web``. Each configured domain is one APScheduler job
(first run right after start, spread by jitter; never two runs of one domain at
once; late runs coalesced); a semaphore bounds the validations in flight, so a
slow domain waits on its own timeouts without delaying any other. A job never
raises: an exporter bug becomes a failed result with reason ``internal``.

Endpoints: ``/`` (landing page), ``/metrics``, ``/domains/<name>``, ``/probe``,
``/config``, ``/-/healthy``, ``/-/ready``, ``POST /-/reload`` (and SIGHUP).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import gzip
import html
import json
import logging
import random
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

import yaml
from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.config import Config, ConfigError, DomainConfig, load, normalise_domain
from exporter.dial import Dialer
from exporter.http01 import Validator
from exporter.logs import setup_logging
from exporter.metrics import (
    DomainState,
    Exposition,
    ResultStore,
    SelfMetrics,
    ServiceState,
    render_domains,
)
from exporter.records import Policy, Problem, ProblemType, Reason, ValidationResult
from exporter.report import fix_hint, render, verdict
from exporter.shard import Shard, parse_index
from exporter.web import WebRequest, WebResponse, WebServer, parse_listen_address

__all__ = ["Exporter", "ipv6_capable", "run_service"]

log = logging.getLogger("exporter")

DEFAULT_LISTEN = ":9469"
DEMO_LISTEN = "127.0.0.1:9469"
#: A public IPv6 address used only to ask the kernel for a route (no packet is sent).
_IPV6_ROUTE_PROBE = "2001:4860:4860::8888"


def ipv6_capable(config: Config) -> bool:
    """Whether this host can route IPv6 to the targets, without sending any traffic.

    A UDP ``connect`` only asks the kernel for a route. A lab config whose IPv6 lab
    addresses live on ``[::1]`` asks about ``::1`` instead.
    """
    target = _IPV6_ROUTE_PROBE
    if config.lab.address_map or config.lab.allow_loopback:
        target = "::1"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.connect((target, 53))
    except OSError:
        return False
    return True


def _single_result(result: ValidationResult) -> bytes:
    """One validation's metrics, for ``/probe``."""
    state = DomainState(result=result, fallbacks=1 if result.ipv4_fallback else 0)
    state.validations["success" if result.success else "failure"] += 1
    if not result.success and (result.failed_hop or 0) > 0 and result.problem:
        state.hop_failures[str(result.problem.reason)] = 1
    return render_domains({result.domain: state}).encode()


class PhasedInterval(BaseTrigger):  # type: ignore[misc]
    """Every ``interval`` seconds at a fixed phase, plus up to ``jitter``; the first run at
    ``first``. With one random phase per domain the steady-state load is spread evenly over
    the interval, instead of every domain coming due in the same burst after a start."""

    def __init__(
        self, *, interval: float, jitter: float, first: dt.datetime, anchor: dt.datetime
    ) -> None:
        self.interval = dt.timedelta(seconds=interval)
        self.jitter = jitter
        self.first = first
        self.anchor = anchor

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime:
        if previous_fire_time is None:
            return self.first
        # The first slot of the phase after the previous run: no gap is ever longer than
        # the interval (plus jitter), the first one after a start may be shorter.
        periods = (previous_fire_time - self.anchor) // self.interval + 1
        due = self.anchor + periods * self.interval
        return due + dt.timedelta(seconds=random.uniform(0, self.jitter))

    def __str__(self) -> str:
        return f"phased interval[{self.interval}]"


class Exporter:
    def __init__(
        self,
        config: Config,
        config_file: str | None = None,
        *,
        shard: Shard | None = None,
        perspective: str = "",
    ) -> None:
        self.config_file = config_file
        self.shard = shard or Shard()
        self.registry = CollectorRegistry(auto_describe=False)
        self.store = ResultStore()
        self.state = ServiceState()
        self.metrics = SelfMetrics(self.registry)
        self.exposition = Exposition(self.store, self.state, self.registry)
        self.scheduler = AsyncIOScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=dt.UTC,
        )
        self.scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self.scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        self._scheduled: dict[str, dt.datetime] = {}
        self._reload_lock = asyncio.Lock()
        self._stopping = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.config = config
        self._semaphore = asyncio.Semaphore(config.concurrency)
        self._probe_semaphore = asyncio.Semaphore(max(1, min(config.concurrency, 20)))
        self.validator = self._validator(config)
        self.state.perspective = perspective
        self.state.shard = self.shard.index
        self.state.shards = self.shard.count
        self.store.set_domains(d.name for d in self.mine(config))
        self.state.reload_success_timestamp = time.time()
        self.state.interval = config.interval
        self._check_vantage()

    # ------------------------------------------------------------------ config

    def mine(self, config: Config) -> list[DomainConfig]:
        """The configured domains this replica validates (all of them unless sharded)."""
        return [d for d in config.domains if self.shard.owns(d.name)]

    def _validator(self, config: Config, policy: Policy | None = None) -> Validator:
        return Validator(config.settings(policy), config.resolver_client(), Dialer(config.routes()))

    def _check_vantage(self) -> None:
        self.state.ipv6_capable = ipv6_capable(self.config)
        if not self.state.ipv6_capable:
            log.warning(
                "this host cannot route IPv6: Let's Encrypt dials IPv6 first, so verdicts for "
                "domains with AAAA records cannot be measured from here; run the exporter "
                "where IPv6 works",
            )

    def _schedule_all(self, reschedule: bool) -> None:
        config = self.config
        mine = self.mine(config)
        wanted = {d.name for d in mine}
        for job in self.scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
        existing = {job.id: job for job in self.scheduler.get_jobs()}
        now = dt.datetime.now(dt.UTC)
        jitter = config.effective_jitter
        for domain in mine:
            job = existing.get(domain.name)
            if job is not None:
                if reschedule:
                    # A new interval keeps each domain's place in the cycle (or comes
                    # sooner, spread out, when the new interval is shorter): no burst.
                    first = job.next_run_time
                    if first is None or first > now + dt.timedelta(seconds=config.interval):
                        first = now + dt.timedelta(seconds=random.uniform(0, config.interval))
                    self.scheduler.reschedule_job(
                        domain.name,
                        trigger=PhasedInterval(
                            interval=config.interval, jitter=jitter, first=first, anchor=first
                        ),
                    )
                continue
            trigger = PhasedInterval(
                interval=config.interval,
                jitter=jitter,
                first=now + dt.timedelta(seconds=random.uniform(0, jitter)),
                anchor=now + dt.timedelta(seconds=random.uniform(0, config.interval)),
            )
            self.scheduler.add_job(
                self._run, trigger=trigger, args=[domain.name], id=domain.name, name=domain.name
            )

    async def reload(self) -> tuple[bool, str]:
        """Re-read the config file; a bad file is rejected and the running config kept."""
        async with self._reload_lock:
            if self.config_file is None:
                return True, "no config file (demo): nothing to reload"
            try:
                new = await asyncio.to_thread(load, self.config_file)
            except ConfigError as exc:
                self.state.reload_successful = False
                self.metrics.reloads.labels("failure").inc()
                log.error(
                    "config reload rejected; the running config is kept",
                    extra={"fields": {"file": self.config_file, "problems": str(exc)}},
                )
                return False, str(exc)
            old = self.config
            self.config = new
            self.validator = self._validator(new)
            if new.concurrency != old.concurrency:
                self._semaphore = asyncio.Semaphore(new.concurrency)
            self.store.set_domains(d.name for d in self.mine(new))
            changed = (new.interval, new.effective_jitter) != (old.interval, old.effective_jitter)
            self._schedule_all(reschedule=changed)
            self.state.reload_successful = True
            self.state.reload_success_timestamp = time.time()
            self.state.interval = new.interval
            self.metrics.reloads.labels("success").inc()
            self._check_vantage()
            log.info(
                "config reloaded",
                extra={"fields": {"file": self.config_file, "domains": len(self.mine(new))}},
            )
            return True, "config reloaded"

    # --------------------------------------------------------------- scheduling

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        if event.scheduled_run_times:
            self._scheduled[event.job_id] = event.scheduled_run_times[-1]

    def _on_skipped(self, event: JobEvent) -> None:
        reason = "max_instances" if event.code == EVENT_JOB_MAX_INSTANCES else "missed"
        self.metrics.skipped_runs.labels(reason).inc()
        log.debug("run skipped", extra={"fields": {"domain": event.job_id, "reason": reason}})

    async def _run(self, name: str) -> None:
        """One scheduled validation of ``name``; never raises."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            async with self._semaphore:
                scheduled = self._scheduled.pop(name, None)
                if scheduled is not None:
                    delay = (dt.datetime.now(dt.UTC) - scheduled).total_seconds()
                    self.metrics.scheduler_delay.observe(max(0.0, delay))
                domain = self.config.domain(name)
                if domain is None:  # removed by a reload while waiting
                    return
                result = await self._validate(domain, self.validator)
            previous = self.store.record(result)
            self._log_result(result, previous)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _validate(self, domain: DomainConfig, validator: Validator) -> ValidationResult:
        self.metrics.in_flight.inc()
        started = time.monotonic()
        try:
            return await validator.validate(
                domain.name, token=domain.token, key_authorization=domain.key_authorization
            )
        except Exception as exc:
            log.exception("validation crashed", extra={"fields": {"domain": domain.name}})
            problem = Problem(
                ProblemType.SERVER_INTERNAL,
                Reason.INTERNAL,
                f"internal error: {type(exc).__name__}: {exc}",
            )
            mode = "canary" if domain.token else "reachability"
            return dataclasses.replace(
                ValidationResult.unreached(domain.name, validator.settings.policy, mode, problem),
                duration_seconds=time.monotonic() - started,
                finished_at=time.time(),
            )
        finally:
            self.metrics.in_flight.dec()
            self.metrics.latency.observe(time.monotonic() - started)

    def _log_result(self, result: ValidationResult, previous: ValidationResult | None) -> None:
        reason = result.problem.reason if result.problem else Reason.NONE
        old_reason = (
            None
            if previous is None
            else previous.problem.reason
            if previous.problem
            else Reason.NONE
        )
        changed = previous is None or previous.success != result.success or old_reason != reason
        fields = {
            "domain": result.domain,
            "success": result.success,
            "type": result.problem.type if result.problem else "none",
            "reason": reason,
            "ipv4_fallback": result.ipv4_fallback,
            "aaaa_mismatch": result.aaaa_mismatch,
            "failed_hop": "" if result.failed_hop is None else result.failed_hop,
            "duration": f"{result.duration_seconds:.3f}",
        }
        if result.problem is not None:
            fields["detail"] = result.problem.detail
        message = "verdict changed" if changed else "validation finished"
        log.log(logging.INFO if changed else logging.DEBUG, message, extra={"fields": fields})

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._schedule_all(reschedule=False)
        self.scheduler.start()

    async def stop(self) -> None:
        self._stopping = True
        # Shutting down cancels the validations in flight on purpose; APScheduler would log
        # each cancelled job (even one not yet started) as an error.
        logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------ endpoints

    async def handle(self, request: WebRequest) -> WebResponse:
        path = request.path
        if path == "/-/reload":
            if request.method not in ("POST", "PUT"):
                return WebResponse(405, b"use POST\n", headers=(("Allow", "POST"),))
            ok, message = await self.reload()
            return WebResponse.text(200 if ok else 500, message + "\n")
        if request.method not in ("GET", "HEAD"):
            return WebResponse(405, b"method not allowed\n", headers=(("Allow", "GET, HEAD"),))
        if path == "/metrics":
            return await self._metrics(request)
        if path == "/-/healthy":
            return WebResponse.text(200, "Healthy\n")
        if path == "/-/ready":
            if self.store.complete():
                return WebResponse.text(200, "Ready\n")
            return WebResponse.text(503, "Not ready: waiting for every domain's first result\n")
        if path == "/":
            return WebResponse(200, self._landing().encode(), "text/html; charset=utf-8")
        if path.startswith("/domains/"):
            return self._domain(path.removeprefix("/domains/"))
        if path == "/probe":
            return await self._probe(request)
        if path == "/config":
            document = self.config.model_dump(mode="json")
            return WebResponse(
                200, yaml.safe_dump(document, sort_keys=False).encode(), "text/yaml; charset=utf-8"
            )
        return WebResponse.text(404, "not found\n")

    async def _metrics(self, request: WebRequest) -> WebResponse:
        # Always the text format 0.0.4, which every Prometheus accepts; rendered in a
        # thread so that a large scrape never stalls the validations' event loop.
        content_type = "text/plain; version=0.0.4; charset=utf-8"
        self.state.tasks = len(asyncio.all_tasks())
        body = await asyncio.to_thread(self.exposition.render)
        headers: tuple[tuple[str, str], ...] = ()
        if "gzip" in request.headers.get("accept-encoding", ""):
            body = await asyncio.to_thread(gzip.compress, body, 1)
            headers = (("Content-Encoding", "gzip"),)
        return WebResponse(200, body, content_type, headers)

    def _domain(self, raw: str) -> WebResponse:
        try:
            name = normalise_domain(raw)
        except ValueError:
            return _json(404, {"error": f"{raw!r} is not a configured domain"})
        state = self.store.get(name)
        if state is None:
            return _json(404, {"error": f"{name} is not a configured domain"})
        if state.result is None:
            return _json(503, {"error": f"{name} has not been validated yet"})
        return _json(200, state.result.to_json())

    async def _probe(self, request: WebRequest) -> WebResponse:
        target = request.arg("target")
        if not target:
            return WebResponse.text(400, "missing ?target=<domain>\n")
        try:
            name = normalise_domain(target)
            policy_arg = request.arg("policy")
            policy = Policy(policy_arg) if policy_arg else None
        except ValueError as exc:
            return WebResponse.text(400, f"{exc}\n")
        domain = self.config.domain(name)
        if domain is None:
            if not self.config.probe.allow_any_target:
                self.metrics.probes.labels("refused").inc()
                return WebResponse.text(
                    403,
                    f"{name} is not a configured domain (set probe.allow_any_target to allow)\n",
                )
            domain = DomainConfig(name=name)
        validator = self.validator if policy is None else self._validator(self.config, policy)
        if self._probe_semaphore.locked():
            self.metrics.probes.labels("refused").inc()
            return WebResponse.text(503, "too many /probe requests in flight; retry later\n")
        async with self._probe_semaphore:
            result = await self._validate(domain, validator)
        self.metrics.probes.labels("success" if result.success else "failure").inc()
        if request.arg("debug") == "true":
            text = render(result) + "\n\n" + json.dumps(result.to_json(), indent=2) + "\n"
            return WebResponse.text(200, text)
        return WebResponse(200, _single_result(result), "text/plain; version=0.0.4")

    def _landing(self) -> str:
        rows = []
        for name, state in self.store.snapshot().items():
            result = state.result
            link = f'<a href="/domains/{html.escape(name)}">trace</a>'
            probe = f'<a href="/probe?target={html.escape(name)}&amp;debug=true">run now</a>'
            if result is None:
                cells = [name, "pending", "", "", "", "", "", f"{link} {probe}"]
            else:
                problem = result.problem
                cells = [
                    name,
                    "OK" if result.success else "FAIL",
                    "" if problem is None else f"{problem.type}/{problem.reason}: {problem.detail}",
                    "yes" if result.ipv4_fallback else "",
                    "yes" if result.aaaa_mismatch else "",
                    "yes" if not result.success and (result.failed_hop or 0) > 0 else "",
                    time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(result.finished_at)),
                    f"{link} {probe}",
                ]
            hint = fix_hint(result) if result is not None else None
            title = html.escape(verdict(result) if result else "")
            escaped = [html.escape(str(c)) for c in cells[:-1]] + [cells[-1]]
            css = "" if result is None else ("ok" if result.success else "fail")
            row = f'<tr class="{css}" title="{title}">' + "".join(f"<td>{c}</td>" for c in escaped)
            rows.append(row + "</tr>")
            if hint:
                rows.append(
                    f'<tr class="hint"><td></td><td colspan="7">{html.escape(hint)}</td></tr>'
                )
        warning = ""
        if not self.state.ipv6_capable:
            warning = (
                '<p class="warn">This host cannot route IPv6. Let\'s Encrypt dials IPv6 first, '
                "so verdicts for domains with AAAA records are not measured here.</p>"
            )
        if not self.state.reload_successful:
            warning += '<p class="warn">The last config reload failed; see the log.</p>'
        return _LANDING.format(
            version=__version__,
            policy=html.escape(str(self.config.policy)),
            interval=self.config.interval,
            warning=warning,
            rows="\n".join(rows),
        )


_LANDING = """<!doctype html>
<html><head><meta charset="utf-8"><title>acme-http01-exporter</title>
<style>
body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}
tr.ok td:nth-child(2){{color:#186a1e;font-weight:bold}}
tr.fail td:nth-child(2){{color:#b00020;font-weight:bold}}
tr.hint td{{color:#555;font-size:90%;border-top:none}} .warn{{background:#fde8e8;padding:8px}}
</style></head><body>
<h1>acme-http01-exporter {version}</h1>
<p>Let's Encrypt HTTP-01 validation, predicted with the CA's own IPv6/IPv4 fallback and
redirect rules (policy <b>{policy}</b>, every {interval:g}s).
<a href="/metrics">Metrics</a> &middot; <a href="/config">Config</a> &middot;
<a href="/-/ready">Ready</a></p>
{warning}
<table><tr><th>domain</th><th>verdict</th><th>problem</th><th>IPv4 fallback</th>
<th>AAAA mismatch</th><th>redirect-hop failure</th><th>last run</th><th></th></tr>
{rows}
</table></body></html>
"""


def _json(status: int, data: object) -> WebResponse:
    body = json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"
    return WebResponse(status, body, "application/json")


# -------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acme-http01-exporter",
        description="Prometheus exporter: Let's Encrypt HTTP-01 validation outcomes, predicted "
        "with the CA's own IPv6/IPv4 fallback and redirect rules. Subcommands: check, lab.",
    )
    parser.add_argument(
        "--config.file", dest="config_file", metavar="FILE", help="configuration file (YAML)"
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen",
        metavar="ADDR",
        help=f"address to listen on (default {DEFAULT_LISTEN}; {DEMO_LISTEN} with --demo)",
    )
    parser.add_argument(
        "--log.level", dest="log_level", default="info", choices=["debug", "info", "warn", "error"]
    )
    parser.add_argument(
        "--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"]
    )
    parser.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the config file, print every problem, exit 0 or 1",
    )
    parser.add_argument(
        "--shard.index",
        dest="shard_index",
        default="0",
        metavar="N",
        help="this replica's shard: a number, or a StatefulSet pod name ending in -N (default 0)",
    )
    parser.add_argument(
        "--shard.count",
        dest="shard_count",
        type=int,
        default=1,
        metavar="N",
        help="number of replicas sharing the domain list (default 1)",
    )
    parser.add_argument(
        "--perspective",
        default="",
        metavar="NAME",
        help="name of this vantage point (region, cluster), a label of acme_http01_exporter_info",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start the built-in loopback lab and watch its showcase domains",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def run_service(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    if args.log_level == "warn":
        args.log_level = "warning"
    if args.config_check:
        if not args.config_file:
            print("--config.check needs --config.file", file=sys.stderr)
            return 2
        try:
            config = load(args.config_file)
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        print(f"{args.config_file}: OK ({len(config.domains)} domains)")
        return 0
    if not args.config_file and not args.demo:
        print(
            "acme-http01-exporter: need --config.file FILE or --demo (see --help)", file=sys.stderr
        )
        return 2
    try:
        Shard(parse_index(args.shard_index), args.shard_count)
    except ValueError as exc:
        print(f"acme-http01-exporter: {exc}", file=sys.stderr)
        return 2
    listen = args.listen or (DEMO_LISTEN if args.demo else DEFAULT_LISTEN)
    host, port = parse_listen_address(listen)
    setup_logging(args.log_level, args.log_format)
    try:
        return asyncio.run(_serve(args, host, port))
    except ConfigError as exc:
        log.error("invalid configuration", extra={"fields": {"problems": str(exc)}})
        return 1


async def _serve(args: argparse.Namespace, host: str | None, port: int) -> int:
    showcase = None
    if args.demo:
        from exporter.showcase import SHOWCASE, start_showcase

        showcase = await start_showcase()
        config, config_file = showcase.config, None
    else:
        config = await asyncio.to_thread(load, args.config_file)
        config_file = args.config_file
    exporter = Exporter(
        config,
        config_file,
        shard=Shard(parse_index(args.shard_index), args.shard_count),
        perspective=args.perspective,
    )
    server = WebServer(exporter.handle, host, port)
    try:
        await server.start()
    except OSError as exc:
        log.error("cannot listen", extra={"fields": {"address": args.listen, "error": exc}})
        if showcase is not None:
            await showcase.stop()
        return 1
    exporter.start()
    for bound_host, bound_port in server.addresses:
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        log.info("listening", extra={"fields": {"address": f"http://{shown}:{bound_port}/"}})
    if showcase is not None:
        bound_host, bound_port = server.addresses[0]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        base = f"http://{shown}:{bound_port}"
        print(
            f"\nacme-http01-exporter demo: {len(SHOWCASE)} showcase domains on a loopback lab",
            file=sys.stderr,
        )
        for domain in SHOWCASE:
            print(f"  {domain.name:34} {domain.description}", file=sys.stderr)
        print(
            f"\nopen {base}/  (landing page)\n     {base}/metrics\n"
            f"     {base}/domains/aaaa-timeout-https.example.com\n",
            file=sys.stderr,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    reloads: set[asyncio.Task[Any]] = set()

    def on_hup() -> None:
        task = loop.create_task(exporter.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    await stop.wait()
    log.info("shutting down")
    await server.stop()
    await exporter.stop()
    for task in list(reloads):
        task.cancel()
    if showcase is not None:
        await showcase.stop()
    with contextlib.suppress(Exception):
        logging.shutdown()
    return 0
