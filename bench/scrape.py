"""What one ``/metrics`` scrape costs at N domains, part by part, in this process.

    .venv/bin/python -m bench.scrape [--sizes 1000,10000]

Real results first (one validation of each fleet kind against the loopback lab: healthy,
AAAA timing out, wrong AAAA, HTTP→HTTPS), copied to N domains in the fleet's mix; then
the exposition is rendered (a) right after every domain got a new result (each domain's
lines rendered anew), (b) again with nothing changed (the cached lines only joined),
and the text is gzipped at level 1, as a scrape asks. CPU time of this process, median
of 5.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gzip
import statistics
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from prometheus_client import CollectorRegistry

from bench.fleet import build, split
from exporter.compose import build_validator
from exporter.config import parse
from exporter.metrics import Exposition, ResultStore, SelfMetrics, ServiceState
from exporter.records import ValidationResult


async def _samples() -> dict[str, ValidationResult]:
    with TemporaryDirectory() as tmp:
        lab = await build(4, (0.25, 0.25, 0.25, 0.25), Path(tmp))
        try:
            import yaml

            base = yaml.safe_load((Path(tmp) / "fleet.yml").read_text())["base"]
            config = parse({**base, "timeouts": {"dial": "1s", "validation": "5s"}, "domains": []})
            validator = build_validator(config)
            out = {}
            for prefix in ("h", "t", "w", "r"):
                out[prefix] = await validator.validate(f"{prefix}-0.example.com")
            return out
        finally:
            await lab.stop()


def _cpu(action: object) -> float:
    times = []
    for _ in range(5):
        started = time.process_time()
        action()  # type: ignore[operator]
        times.append(time.process_time() - started)
    return statistics.median(times)


def measure(n: int, samples: dict[str, ValidationResult]) -> dict[str, float]:
    counts = split(n, (0.7, 0.1, 0.1, 0.1))
    store = ResultStore()
    names = [f"{p}-{i}.example.com" for p in ("h", "t", "w", "r") for i in range(counts[p])]
    store.set_domains(names)
    exposition = Exposition(store, ServiceState(), CollectorRegistry(auto_describe=False))
    SelfMetrics(exposition.registry)

    def refresh() -> None:
        for name in names:
            store.record(dataclasses.replace(samples[name[0]], domain=name))

    def cold() -> None:
        refresh()
        exposition.render()

    refresh_only = _cpu(refresh)
    body = exposition.render()
    return {
        "domains": n,
        "body_mb": len(body) / 1e6,
        "render_new_ms": 1000 * (_cpu(cold) - refresh_only),
        "render_cached_ms": 1000 * _cpu(exposition.render),
        "gzip_ms": 1000 * _cpu(lambda: gzip.compress(body, 1)),
        "gzip_kb": len(gzip.compress(body, 1)) / 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    args = parser.parse_args()
    samples = asyncio.run(_samples())
    for n in (int(x) for x in args.sizes.split(",")):
        print(measure(n, samples), flush=True)


if __name__ == "__main__":
    main()
