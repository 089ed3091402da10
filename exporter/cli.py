"""Command line: the exporter service, ``check`` (one-shot diagnosis) and ``lab``.

Rule: wiring only. Every command line is parsed here, the config loaded, and
the serve loop (web server, exporter, signals: SIGTERM/SIGINT stop, SIGHUP
reloads) run here; every behaviour lives in the modules it calls. The lab is
imported only by ``--demo``, ``check --demo`` and ``lab``.

    acme-http01-exporter [--config.file FILE] [--web.listen-address ADDR] ...
    acme-http01-exporter check DOMAIN... [--config FILE] [--policy P] [--json] [--demo]
    acme-http01-exporter lab [--write-config FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from exporter import __version__, gocompat
from exporter.compose import (
    Bundle,
    build_bundle,
    build_certificate_reader,
    build_validator,
    load_bundle,
)
from exporter.config import Config, ConfigError, DomainConfig, normalise_domain, parse_duration
from exporter.discovery.kinds import Origin, acme_server_label, origin_json
from exporter.discovery.manager import discover_once
from exporter.discovery.status import StatusBook
from exporter.endpoints import Endpoints, Routes, external_url, route_prefix, telemetry_path
from exporter.logs import setup_logging
from exporter.records import CertificateCheck, FallbackPolicy, ValidationResult
from exporter.report import render, resolver_warning
from exporter.resources import ExporterResourceError, raise_nofile_limit
from exporter.scheduler import guarded
from exporter.service import Exporter
from exporter.shard import Shard, parse_index
from exporter.web import DEFAULT_MAX_CONNECTIONS, WebServer, parse_listen_address
from exporter.webconfig import WebConfig, WebConfigWatcher, load_web_config

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

log = logging.getLogger("exporter")

DEFAULT_LISTEN = ":9469"
DEMO_LISTEN = "127.0.0.1:9469"


# ------------------------------------------------------------------------------- check


def _check_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acme-http01-exporter check",
        description=(
            "Validate domains once, exactly as Let's Encrypt's HTTP-01 validation would, "
            "and explain the outcome. Exit 0 if all would succeed, 1 if any would fail, "
            "2 for usage or config errors."
        ),
    )
    parser.add_argument("domains", nargs="*", metavar="DOMAIN", help="domain names to validate")
    parser.add_argument(
        "--config", metavar="FILE", help="config file (resolver, timeouts, canaries)"
    )
    parser.add_argument(
        "--policy",
        choices=[p.value for p in FallbackPolicy],
        help="fallback policy: boulder (Let's Encrypt today) or per-hop (its proposed change)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per domain per line")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start the built-in loopback lab and check its showcase domains",
    )
    return parser


async def _discovered(
    bundle: Bundle, static: set[str], origins: dict[str, list[tuple[Origin, str]]]
) -> list[DomainConfig]:
    """The config's sources read once: the names they add to ``static`` (where each came from
    goes to ``origins``); what is skipped, and sources that failed, are said on stderr."""
    sources = bundle.config.sources
    if not sources.files and sources.kubernetes is None:
        return []
    book = StatusBook()
    found = await discover_once(sources.files, sources.kubernetes, bundle.kubeconfig, book)
    for status in book.all():
        if status.last_error:
            print(
                f"warning: source {status.source} {status.kind}: {status.last_error}",
                file=sys.stderr,
            )
    added: dict[str, DomainConfig] = {}
    for item in found:
        if item.skipped is not None:
            origin = item.origin
            where = f"{origin.kind} {origin.namespace}/{origin.name}".replace(" /", " ")
            print(f"skipped: {item.name} ({item.skipped}; {where})", file=sys.stderr)
            continue
        origins.setdefault(item.name, []).append((item.origin, acme_server_label(item.acme_server)))
        if item.name not in static and item.name not in added:
            added[item.name] = DomainConfig.model_construct(
                name=item.name, token=None, key_authorization=None, account_uris=None
            )
    return list(added.values())


async def _check(args: argparse.Namespace) -> int:
    showcase = None
    bundle: Bundle | None = None
    if args.demo:
        from exporter.lab.showcase import start_showcase

        showcase = await start_showcase()
        config = showcase.config
    elif args.config:
        bundle = load_bundle(args.config)
        config = bundle.config
    else:
        config = Config()
    origins: dict[str, list[tuple[Origin, str]]] = {}
    try:
        targets: list[DomainConfig] = []
        for name in args.domains:
            normalised = normalise_domain(name)
            targets.append(config.domain(normalised) or DomainConfig(name=normalised))
        if not targets:
            targets = list(config.domains)
            if bundle is not None:
                targets += await _discovered(bundle, {d.name for d in targets}, origins)
        if not targets:
            print("check: no domains given (name some, or use --config or --demo)", file=sys.stderr)
            return EXIT_USAGE
        policy = FallbackPolicy(args.policy) if args.policy else None
        validator = build_validator(config, policy)
        if not await validator.resolver.validating():
            print(f"warning: {resolver_warning(config)}", file=sys.stderr)
        semaphore = asyncio.Semaphore(config.concurrency)
        reader = build_certificate_reader(config) if config.certificates.enabled else None

        async def one(domain: DomainConfig) -> tuple[ValidationResult, CertificateCheck | None]:
            async with semaphore:
                if reader is None:
                    return await guarded(validator, domain, None), None
                return await asyncio.gather(
                    guarded(validator, domain, None), reader.read(domain.name)
                )

        outcomes = await asyncio.gather(*(one(d) for d in targets))
    finally:
        if showcase is not None:
            await showcase.stop()
    for result, certificate in outcomes:
        if args.json:
            document = result.to_json()
            document["certificate"] = None if certificate is None else certificate.to_json()
            document["sources"] = [
                origin_json(origin, server) for origin, server in origins.get(result.domain, ())
            ]
            print(json.dumps(document, sort_keys=True))
        else:
            print(render(result, certificate))
            print()
    return EXIT_OK if all(result.success for result, _ in outcomes) else EXIT_FAILED


# --------------------------------------------------------------------------------- lab


def _lab_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acme-http01-exporter lab",
        description=(
            "Serve the loopback lab (DNS and web servers with every pitfall) until "
            "interrupted, and write a config file that points at it."
        ),
    )
    parser.add_argument(
        "--write-config", metavar="FILE", default="lab.yml", help="where to write the config"
    )
    return parser


async def _lab(args: argparse.Namespace) -> int:
    from exporter.lab.showcase import SHOWCASE, start_showcase

    showcase = await start_showcase()
    try:
        document = showcase.config.model_dump(mode="json", exclude_defaults=True)
        # Whole or not at all: a reader polling for the file never sees it half written.
        target = Path(args.write_config)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(yaml.safe_dump(document, sort_keys=False))
        partial.replace(target)
        print(f"lab DNS on {showcase.lab.dns.host}:{showcase.lab.dns.port}")
        print(f"config written to {args.write_config}; showcase domains:")
        for domain in SHOWCASE:
            print(f"  {domain.name:34} {domain.description}")
        print(f"try: acme-http01-exporter check --config {args.write_config}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await showcase.stop()
    return EXIT_OK


# ----------------------------------------------------------------------------- service


def _service_parser() -> argparse.ArgumentParser:
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
        "--web.config.file",
        dest="web_config_file",
        metavar="FILE",
        help="TLS, basic auth and headers for every endpoint, in the Prometheus "
        "exporter-toolkit format (re-read when it changes)",
    )
    parser.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        default="/metrics",
        metavar="PATH",
        help="path under which to expose the metrics, below the route prefix (default /metrics)",
    )
    parser.add_argument(
        "--web.external-url",
        dest="external_url",
        default="",
        metavar="URL",
        help="the URL under which the exporter is reached from outside (e.g. behind a reverse "
        "proxy: https://tools.example.net/acme/); its path is the default route prefix",
    )
    parser.add_argument(
        "--web.route-prefix",
        dest="route_prefix",
        default="",
        metavar="PATH",
        help="prefix of every endpoint's path (default: the path of --web.external-url, "
        "or / without one)",
    )
    parser.add_argument(
        "--web.max-connections",
        dest="max_connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="at most this many open connections to the exporter; one more is answered 503 "
        f"(default {DEFAULT_MAX_CONNECTIONS}, as Prometheus; 0: no limit)",
    )
    parser.add_argument(
        "--log.level", dest="log_level", default="info", choices=["debug", "info", "warn", "error"]
    )
    parser.add_argument(
        "--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"]
    )
    parser.add_argument(
        "--config.auto-reload-interval",
        dest="auto_reload_interval",
        default="0s",
        metavar="DURATION",
        help="check the config file's content this often and reload when it changed "
        "(e.g. 30s; default 0s: only on SIGHUP or POST /-/reload)",
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
    parser.add_argument(
        "--runtime.event-loop",
        dest="event_loop",
        default="auto",
        choices=list(EVENT_LOOPS),
        help="the asyncio event loop: uvloop (about half the CPU per validation), asyncio "
        "(the standard library's), or auto (uvloop where it is installed; the default)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def run_service(argv: Sequence[str]) -> int:
    args = _service_parser().parse_args(list(argv))
    if args.log_level == "warn":
        args.log_level = "warning"
    if args.config_check:
        if not args.config_file:
            print("--config.check needs --config.file", file=sys.stderr)
            return 2
        try:
            # The very build a start or a reload runs: OK here means a reload would apply.
            config = load_bundle(args.config_file).config
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        sources = [
            what
            for what, on in (
                (f"{len(config.sources.files)} file source(s)", config.sources.files),
                ("Kubernetes", config.sources.kubernetes is not None),
            )
            if on
        ]
        also = f", and names from {' and '.join(sources)}" if sources else ""
        print(f"{args.config_file}: OK ({len(config.domains)} domains{also})")
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
    if args.max_connections < 0:
        print("acme-http01-exporter: --web.max-connections must be 0 or more", file=sys.stderr)
        return 2
    try:
        args.auto_reload_interval = parse_duration(args.auto_reload_interval, allow_zero=True)
    except ValueError as exc:
        print(f"acme-http01-exporter: --config.auto-reload-interval: {exc}", file=sys.stderr)
        return 2
    listen = args.listen or (DEMO_LISTEN if args.demo else DEFAULT_LISTEN)
    host, port = parse_listen_address(listen)
    try:
        args.routes = _routes(args, port)
    except ValueError as exc:
        print(f"acme-http01-exporter: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.log_level, args.log_format)
    limits = raise_nofile_limit()
    if limits is not None:
        log.debug("file descriptor limit", extra={"fields": {"was": limits[0], "now": limits[1]}})
    web_config = None
    if args.web_config_file:
        try:
            web_config = load_web_config(args.web_config_file)
        except ConfigError as exc:
            log.error("invalid web configuration", extra={"fields": {"problems": str(exc)}})
            return 1
    try:
        return run(_serve(args, host, port, web_config), args.event_loop)
    except ConfigError as exc:
        log.error("invalid configuration", extra={"fields": {"problems": str(exc)}})
        return 1


def _routes(args: argparse.Namespace, port: int) -> Routes:
    """``--web.external-url``, ``--web.route-prefix`` and ``--web.telemetry-path``, as
    Prometheus reads the first two (ValueError: the flag and what is wrong)."""
    try:
        external = external_url(args.external_url, port)
    except ValueError as exc:
        raise ValueError(f"--web.external-url: {exc}") from None
    try:
        telemetry = telemetry_path(args.telemetry_path)
    except ValueError as exc:
        raise ValueError(f"--web.telemetry-path: {exc}") from None
    return Routes(external, route_prefix(args.route_prefix, external), telemetry)


async def _serve(
    args: argparse.Namespace, host: str | None, port: int, web_config: WebConfig | None = None
) -> int:
    showcase = None
    if args.demo:
        from exporter.lab.showcase import SHOWCASE, start_showcase

        showcase = await start_showcase()
        bundle = build_bundle(showcase.with_demo_files())
    else:
        bundle = await asyncio.to_thread(load_bundle, args.config_file)
    exporter = Exporter(
        bundle,
        shard=Shard(parse_index(args.shard_index), args.shard_count),
        perspective=args.perspective,
    )
    watcher = None
    if web_config is not None:
        watcher = WebConfigWatcher(args.web_config_file, web_config, exporter.registry)
    server = WebServer(
        Endpoints(exporter, args.routes).handle,
        host,
        port,
        watcher,
        max_connections=args.max_connections,
        registry=exporter.registry,
    )
    scheme = "https" if web_config is not None and web_config.ssl_context else "http"
    # The handlers come before the listening socket: a SIGTERM or a SIGHUP sent as soon
    # as the address is logged must not meet the default action (the process's end). A
    # SIGHUP before the exporter has started is kept and served once it has.
    stop = asyncio.Event()
    early_reload: list[bool] = []
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, early_reload.append, True)
    try:
        await server.start()
    except OSError as exc:
        log.error("cannot listen", extra={"fields": {"address": args.listen, "error": exc}})
        if showcase is not None:
            await showcase.stop()
        return 1
    await exporter.start(auto_reload_interval=args.auto_reload_interval)
    # A SIGHUP while a reload waits to start joins it (exporter.request_reload).
    loop.add_signal_handler(signal.SIGHUP, exporter.request_reload)
    if early_reload:
        exporter.request_reload()
    # What exists now (modules, the config, the schedule) lives as long as the process:
    # moved out of the cyclic collector's sight, full collections scan only what the
    # validations made since.
    gc.freeze()
    log.info("started", extra={"fields": {"event_loop": event_loop_name()}})
    routes: Routes = args.routes
    fields = {"external_url": routes.external, "route_prefix": routes.prefix}
    log.info("routes", extra={"fields": {**fields, "telemetry_path": routes.telemetry}})
    for bound_host, bound_port in server.addresses:
        shown = gocompat.join_host_port(bound_host, bound_port)
        log.info("listening", extra={"fields": {"address": f"{scheme}://{shown}/"}})
    if showcase is not None:
        bound_host, bound_port = server.addresses[0]
        base = f"{scheme}://{gocompat.join_host_port(bound_host, bound_port)}"
        base += routes.prefix.rstrip("/")
        print(
            f"\nacme-http01-exporter demo: {len(SHOWCASE)} showcase domains on a loopback lab",
            file=sys.stderr,
        )
        for domain in SHOWCASE:
            print(f"  {domain.name:34} {domain.description}", file=sys.stderr)
        print(
            f"\nopen {base}/  (landing page)\n     {base}{routes.telemetry}\n"
            f"     {base}/domains/aaaa-timeout-https.example.com\n",
            file=sys.stderr,
        )
    await stop.wait()
    log.info("shutting down")
    await server.stop()
    await exporter.stop()
    if showcase is not None:
        await showcase.stop()
    with contextlib.suppress(Exception):
        logging.shutdown()
    return 0


# -------------------------------------------------------------------------- event loop

#: ``--runtime.event-loop`` choices.
EVENT_LOOPS = ("auto", "uvloop", "asyncio")

_T = TypeVar("_T")


def loop_factory(choice: str = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or ``None`` for the standard library's loop.

    uvloop implements the same asyncio interface (the tests run the exporter on it, and
    the in-process suites on the standard loop); it halves the event loop's share of a
    validation's CPU.
    """
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ValueError("--runtime.event-loop=uvloop: uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, _T], choice: str = "auto") -> _T:
    """Run ``main`` on the chosen event loop."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)


def event_loop_name() -> str:
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


# -------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list[:1] == ["check"]:
            return run(_check(_check_parser().parse_args(args_list[1:])))
        if args_list[:1] == ["lab"]:
            return run(_lab(_lab_parser().parse_args(args_list[1:])))
        return run_service(args_list)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ExporterResourceError as exc:
        print(f"error: the checker ran out of its own resources: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
