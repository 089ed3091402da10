"""Command line: the exporter service, ``check`` (one-shot diagnosis) and ``lab``.

Rule: wiring only. Parsing arguments, loading the config and choosing what to
run happen here; every behaviour lives in the modules it calls.

    acme-http01-exporter [--config.file FILE] [--web.listen-address ADDR] ...
    acme-http01-exporter check DOMAIN... [--config FILE] [--policy P] [--json] [--demo]
    acme-http01-exporter lab [--write-config FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from exporter.config import Config, ConfigError, DomainConfig, load, normalise_domain
from exporter.dial import Dialer
from exporter.http01 import Validator
from exporter.records import Policy, ValidationResult
from exporter.report import render

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


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
        choices=[p.value for p in Policy],
        help="fallback policy: boulder (Let's Encrypt today) or per-hop (its proposed change)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per domain per line")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start the built-in loopback lab and check its showcase domains",
    )
    return parser


async def _check(args: argparse.Namespace) -> int:
    showcase = None
    if args.demo:
        from exporter.showcase import start_showcase

        showcase = await start_showcase()
        config = showcase.config
    elif args.config:
        config = load(args.config)
    else:
        config = Config()
    try:
        targets: list[DomainConfig] = []
        for name in args.domains:
            normalised = normalise_domain(name)
            targets.append(config.domain(normalised) or DomainConfig(name=normalised))
        if not targets:
            targets = list(config.domains)
        if not targets:
            print("check: no domains given (name some, or use --config or --demo)", file=sys.stderr)
            return EXIT_USAGE
        policy = Policy(args.policy) if args.policy else None
        validator = Validator(
            config.settings(policy), config.resolver_client(), Dialer(config.routes())
        )
        semaphore = asyncio.Semaphore(config.concurrency)

        async def one(domain: DomainConfig) -> ValidationResult:
            async with semaphore:
                return await validator.validate(
                    domain.name, token=domain.token, key_authorization=domain.key_authorization
                )

        results = await asyncio.gather(*(one(d) for d in targets))
    finally:
        if showcase is not None:
            await showcase.stop()
    for result in results:
        if args.json:
            print(json.dumps(result.to_json(), sort_keys=True))
        else:
            print(render(result))
            print()
    return EXIT_OK if all(r.success for r in results) else EXIT_FAILED


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
    from exporter.showcase import SHOWCASE, start_showcase

    showcase = await start_showcase()
    try:
        document = showcase.config.model_dump(mode="json", exclude_defaults=True)
        Path(args.write_config).write_text(yaml.safe_dump(document, sort_keys=False))
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


# -------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list[:1] == ["check"]:
            return asyncio.run(_check(_check_parser().parse_args(args_list[1:])))
        if args_list[:1] == ["lab"]:
            return asyncio.run(_lab(_lab_parser().parse_args(args_list[1:])))
        from exporter.service import run_service

        return run_service(args_list)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
