"""Benchmarks: how many domains one replica keeps fresh, side by side with blackbox_exporter.

    .venv/bin/python -m bench.run [--sizes 1000,10000] [--quick] [--phases ...] [--profile DIR]

For each fleet size N it starts the lab fleet (``bench.fleet``, pinned to core 1)
and the real exporter process (pinned to core 0), and measures:

1. throughput: validations per second and exporter CPU-seconds per validation,
   demand set above what one core can do (mixed fleet, and healthy-only);
2. freshness: at interval T, the worst time since the last validation of any domain
   over 3 intervals, and the scheduler delay distribution;
3. peak RSS of the exporter (VmHWM);
4. ``/metrics`` latency (p50/p99 over 50 scrapes, gzip as Prometheus asks) and body
   size, while validations run;
5. Debian's prometheus-blackbox-exporter probing the same healthy first requests at
   the same concurrency: the ratio of CPU-seconds per HTTP request (ours/theirs);
6. isolation: healthy domains' validation latency and staleness with 10% of domains
   timing out on IPv6, against the same run with those replaced by healthy domains.

Everything talks to 127.0.0.1 and [::1] only; every loop is bounded in time.
Results go to stdout and ``bench/results.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import gzip
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.profile import summarise
from exporter.lab.ports import free_port
from exporter.lab.process import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
EXPORTER_CORE, LAB_CORE = "0", "1"
STAMP = 'acme_http01_last_validation_timestamp_seconds{domain="'
DURATION = 'acme_http01_validation_duration_seconds{domain="'
#: Validations a second asked of the exporter in the throughput runs, at every N.
RATE = 300.0
#: Extra exporter flags (--exporter-arg), for A/B runs of one build.
EXTRA_ARGS: list[str] = []


# ------------------------------------------------------------------------- processes


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def fleet(n: int, mix: str, work: Path) -> Iterator[dict[str, Any]]:
    out = work / f"fleet-{n}"
    proc = subprocess.Popen(
        [
            "taskset",
            "-c",
            LAB_CORE,
            PY,
            "-m",
            "bench.fleet",
            "--domains",
            str(n),
            "--mix",
            mix,
            "--out",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "ready").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the fleet lab did not start")
            time.sleep(0.1)
        info = yaml.safe_load((out / "fleet.yml").read_text())
        info["pid"] = proc.pid
        yield info
    finally:
        stop(proc)


@dataclass
class Exporter:
    proc: subprocess.Popen[bytes]
    base: str
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def get(self, path: str, gzip_ok: bool = False) -> tuple[bytes, float]:
        headers = {"Accept-Encoding": "gzip"} if gzip_ok else {}
        started = time.perf_counter()
        with urllib.request.urlopen(
            urllib.request.Request(self.base + path, headers=headers), timeout=60
        ) as response:
            body = response.read()
        return body, time.perf_counter() - started

    def samples(self) -> list[Any]:
        body, _ = self.get("/metrics")
        return [s for f in text_string_to_metric_families(body.decode()) for s in f.samples]


@contextmanager
def exporter(config: dict[str, Any], work: Path, name: str) -> Iterator[Exporter]:
    path = work / f"{name}.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    proc = subprocess.Popen(
        [
            "taskset",
            "-c",
            EXPORTER_CORE,
            PY,
            "-m",
            "exporter",
            "--config.file",
            str(path),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--log.level",
            "warn",
            *EXTRA_ARGS,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(work / f"{name}.log", "wb"),  # noqa: SIM115
    )
    exp = Exporter(proc, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                exp.get("/-/healthy")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"exporter did not start; see {work / name}.log") from None
                time.sleep(0.1)
        exp.started = time.monotonic()
        yield exp
    finally:
        stop(proc)


def config_for(info: dict[str, Any], domains: list[dict[str, str]], **over: Any) -> dict[str, Any]:
    document = dict(info["base"])
    document.update({"timeouts": {"dial": "10s", "validation": "20s"}})
    document.update(over)
    document["domains"] = domains
    return document


def names(info: dict[str, Any], prefixes: str) -> list[dict[str, str]]:
    from bench.fleet import domains

    counts = info["counts"]
    everything = domains(counts) + domains({**{k: 0 for k in counts}, "t": counts["t"]}, True)
    return [d for d in everything if d["name"][0] in prefixes]


def total(samples: list[Any], name: str) -> float:
    return sum(s.value for s in samples if s.name == name)


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def histogram_quantile(samples: list[Any], name: str, q: float) -> float:
    buckets = sorted(
        (float(s.labels["le"]), s.value) for s in samples if s.name == f"{name}_bucket"
    )
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    rank = q * buckets[-1][1]
    previous_le, previous_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return previous_le
            width = count - previous_count
            return previous_le + (le - previous_le) * (
                (rank - previous_count) / width if width else 0
            )
        previous_le, previous_count = le, count
    return previous_le


# --------------------------------------------------------------------------- phases


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    return found


def validations(body: bytes) -> float:
    """The validations counted in a text exposition (a string scan: no parser)."""
    prefix = b"acme_http01_validations_total"
    return sum(
        float(line.rsplit(b" ", 1)[1]) for line in body.splitlines() if line.startswith(prefix)
    )


def time_wait() -> int:
    """TCP connections in TIME_WAIT on this machine (every lab connection is on loopback)."""
    out = subprocess.run(
        ["ss", "-tanH", "state", "time-wait"], capture_output=True, text=True, check=False
    ).stdout
    return out.count("\n")


def throughput(
    info: dict[str, Any],
    work: Path,
    prefixes: str,
    seconds: float,
    profile: Path | None = None,
    warmup: float | None = None,
) -> dict[str, float]:
    """CPU per validation at a steady demand of RATE validations a second (every domain due
    every N/RATE seconds), the same at every N: what a validation costs, not what an
    overloaded scheduler wastes. Certificate readings are off (validations are counted)."""
    domains = names(info, prefixes)
    interval = len(domains) / RATE
    config = config_for(
        info,
        domains,
        interval=f"{interval}s",
        jitter="0s",
        concurrency=1000,
        certificates={"enabled": False},
    )
    with exporter(config, work, f"throughput-{prefixes}-{len(domains)}") as exp:
        # Warm up: every domain started at least once, and the TIME_WAIT sockets of a
        # steady load (60 s of connections, all to the lab's one address and port) built up.
        time.sleep(max(70.0, interval * 2) if warmup is None else warmup)
        # The opening scrape before the CPU reading: its rendering is not a validation's.
        # One scrape ahead of it renders every domain once (at 10,000 domains, 0.3 s
        # during which validations go on and are counted); the counted one then only
        # joins what is cached, and the CPU is read as soon as it has answered, before
        # the body is read (parsing 12 MB takes the bench seconds, when the exporter
        # goes on validating).
        exp.get("/metrics")
        body, _ = exp.get("/metrics")
        cpu0, t0 = cpu_seconds(exp.pid), time.monotonic()
        before = validations(body)
        waiting = time_wait()
        spy = None
        if profile is not None:
            spy = subprocess.Popen(
                ["taskset", "-c", LAB_CORE, _py_spy(), "record", "--pid", str(exp.pid),
                 "--duration", str(int(seconds)), "--rate", "200",
                 "--format", "raw", "--output", str(profile)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        time.sleep(seconds)
        if spy is not None:
            spy.wait(60)
        # The CPU first: the closing scrape's rendering is not a validation's.
        cpu1, t1 = cpu_seconds(exp.pid), time.monotonic()
        after = validations(exp.get("/metrics")[0])
        rss = peak_rss_mib(exp.pid)
    done = after - before
    return {
        "domains": len(domains),
        "validations": done,
        "per_second": done / (t1 - t0),
        "cpu_per_validation_ms": 1000 * (cpu1 - cpu0) / done if done else float("nan"),
        "cpu_utilisation": (cpu1 - cpu0) / (t1 - t0),
        "rss_mib": rss,
        "time_wait": waiting,
    }


def _low_priority() -> None:
    """Lower this thread's CPU priority (Linux: per thread), so the driver's parsing of a
    large exposition never takes the lab's core from the lab (it shares core 1)."""
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def _results(body: bytes) -> tuple[dict[str, tuple[float, float]], int]:
    """Each domain's (finished at, duration) in a gzip exposition (a string scan: no
    parser), and the exposition's size."""
    stamps: dict[str, float] = {}
    durations: dict[str, float] = {}
    text = gzip.decompress(body).decode()
    for line in text.splitlines():
        for prefix, into in ((STAMP, stamps), (DURATION, durations)):
            if line.startswith(prefix):
                domain = line[len(prefix) : line.index('"', len(prefix))]
                into[domain] = float(line.rsplit(" ", 1)[1])
    return {d: (stamp, durations.get(d, 0.0)) for d, stamp in stamps.items()}, len(text)


def freshness(
    info: dict[str, Any],
    work: Path,
    prefixes: str,
    interval: float,
    scrapes: int = 50,
    warmup: float | None = None,
) -> dict[str, Any]:
    domains = names(info, prefixes)
    jitter = interval * 0.1
    config = config_for(
        info, domains, interval=f"{interval}s", jitter=f"{jitter}s", concurrency=1000
    )
    # A domain's staleness peaks just before its next result lands, at the gap between
    # its two results: the gaps between consecutive stamps (every result is seen, a gap
    # is at least 0.9 T and the scrapes are 0.06 T apart) and, for a result not yet
    # replaced, its age when the scrape was sent (the time Prometheus stamps a scrape
    # with). The age when the (gzip) answer has been read and parsed is kept to show the
    # scrape's own latency; it is not a domain's staleness.
    # Start gaps (a result's end less its duration) tell the schedule's share of a gap
    # from the validations' own: the schedule keeps starts within T + jitter.
    stale: dict[str, float] = {}
    gaps: dict[str, float] = {}
    start_gaps: dict[str, float] = {}
    received_age = 0.0
    last: dict[str, tuple[float, float]] = {}
    parser = concurrent.futures.ThreadPoolExecutor(1, initializer=_low_priority)
    latencies: list[float] = []
    sizes: list[tuple[int, int]] = []
    healthy_durations: list[float] = []
    with exporter(config, work, f"fresh-{prefixes}-{len(domains)}") as exp:
        # Warm-up: one interval plus the longest validation (dial 10 s + fallback), or
        # as long as asked (long enough for every domain's first run: they start within
        # the jitter, and no gap after a first run is longer than the interval).
        time.sleep(interval + jitter + 25 if warmup is None else warmup)
        cpu0, t0 = cpu_seconds(exp.pid), time.monotonic()
        window = 3 * interval
        step = window / scrapes
        for i in range(scrapes):
            target = t0 + i * step
            time.sleep(max(0.0, target - time.monotonic()))
            sent = time.time()
            body, elapsed = exp.get("/metrics", gzip_ok=True)
            latencies.append(elapsed)
            results, size = parser.submit(_results, body).result()
            sizes.append((len(body), size))
            received = time.time()
            for domain, (stamp, duration) in results.items():
                previous = last.get(domain)
                if previous is not None and stamp != previous[0]:
                    gaps[domain] = max(gaps.get(domain, 0.0), stamp - previous[0])
                    start_gap = (stamp - duration) - (previous[0] - previous[1])
                    start_gaps[domain] = max(start_gaps.get(domain, 0.0), start_gap)
                last[domain] = (stamp, duration)
                stale[domain] = max(stale.get(domain, 0.0), sent - stamp)
                received_age = max(received_age, received - stamp)
        parser.shutdown()
        for domain, gap in gaps.items():
            stale[domain] = max(stale[domain], gap)
        cpu1, t1 = cpu_seconds(exp.pid), time.monotonic()
        final = exp.samples()
        for s in final:
            if s.name == "acme_http01_validation_duration_seconds" and s.labels["domain"][0] == "h":
                healthy_durations.append(s.value)
        rss = peak_rss_mib(exp.pid)
    healthy_stale = [v for k, v in stale.items() if k[0] == "h"]
    return {
        "domains": len(domains),
        "interval": interval,
        "jitter": jitter,
        "worst_stale": max(stale.values()),
        "worst_stale_healthy": max(healthy_stale),
        "worst_gap": max(gaps.values(), default=float("nan")),
        "worst_start_gap": max(start_gaps.values(), default=float("nan")),
        "over_limit": sum(1 for v in stale.values() if v > interval + jitter),
        "worst_age_received": received_age,
        "missing": len(domains) - len(stale),
        "delay_p50": histogram_quantile(final, "acme_http01_scheduler_delay_seconds", 0.5),
        "delay_p99": histogram_quantile(final, "acme_http01_scheduler_delay_seconds", 0.99),
        "skipped": total(final, "acme_http01_scheduler_skipped_runs_total"),
        "scrape_p50": quantile(latencies, 0.5),
        "scrape_p99": quantile(latencies, 0.99),
        "body_gzip": statistics.mean(b for b, _ in sizes),
        "body": statistics.mean(t for _, t in sizes),
        "cpu_utilisation": (cpu1 - cpu0) / (t1 - t0),
        "rss_mib": rss,
        "healthy_p50": quantile(healthy_durations, 0.5),
        "healthy_p99": quantile(healthy_durations, 0.99),
    }


def blackbox(
    info: dict[str, Any], work: Path, probes: int, concurrency: int, *, by_name: bool = False
) -> dict[str, float]:
    """blackbox_exporter probing the healthy IPv4 server: given its address (no DNS), or
    with ``by_name`` a name it resolves (one A lookup a probe, through the lab's DNS on
    127.0.0.53:53, which a private mount namespace's /etc/resolv.conf names)."""
    binary = shutil.which("prometheus-blackbox-exporter")
    if binary is None:
        raise RuntimeError("prometheus-blackbox-exporter is not installed (see README)")
    host, port = info["endpoints"]["healthy_v4"]
    (work / "bb.yml").write_text(
        yaml.safe_dump(
            {
                "modules": {
                    "canary": {
                        "prober": "http",
                        "timeout": "10s",
                        "http": {
                            "preferred_ip_protocol": "ip4",
                            "ip_protocol_fallback": False,
                            "valid_status_codes": [200],
                            "headers": {"Accept": "*/*"},
                        },
                    }
                }
            }
        )
    )
    bb_port = free_port()
    command = [
        "taskset",
        "-c",
        EXPORTER_CORE,
        binary,
        f"--config.file={work / 'bb.yml'}",
        f"--web.listen-address=127.0.0.1:{bb_port}",
    ]
    if by_name:
        resolv = work / "resolv.conf"
        resolv.write_text(f"nameserver {info['system_dns']}\n")
        mount = f'mount --bind {resolv} /etc/resolv.conf && exec "$@"'
        command = ["unshare", "-m", "--propagation", "private", "sh", "-c", mount, "sh", *command]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        base = f"http://127.0.0.1:{bb_port}"
        while True:
            try:
                urllib.request.urlopen(base + "/-/healthy", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("blackbox_exporter did not start") from None
                time.sleep(0.1)
        domains = [d["name"] for d in names(info, "h")]
        if by_name:
            urls = [
                f"{base}/probe?module=canary&target=http://b-{i % len(domains)}.example.com:"
                f"{port}/.well-known/acme-challenge/lab-canary"
                for i in range(probes)
            ]
        else:
            urls = [
                f"{base}/probe?module=canary&hostname={domains[i % len(domains)]}&target="
                f"http://{host}:{port}/.well-known/acme-challenge/lab-canary"
                for i in range(probes)
            ]
        ok = asyncio.run(_drive(urls[: min(200, probes)], concurrency))  # warm-up
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        ok = asyncio.run(_drive(urls, concurrency))
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    return {
        "probes": probes,
        "successes": ok,
        "per_second": probes / (t1 - t0),
        "cpu_per_request_ms": 1000 * (cpu1 - cpu0) / probes,
    }


async def _drive(urls: list[str], concurrency: int) -> int:
    import httpx

    semaphore = asyncio.Semaphore(concurrency)
    successes = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits, trust_env=False) as client:

        async def one(url: str) -> None:
            nonlocal successes
            async with semaphore:
                response = await client.get(url)
                if "probe_success 1" in response.text:
                    successes += 1

        await asyncio.gather(*(one(u) for u in urls))
    return successes


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--quick", action="store_true", help="short windows (a smoke run)")
    parser.add_argument(
        "--phases", default="throughput,fresh,blackbox", help="throughput,fresh,blackbox"
    )
    parser.add_argument(
        "--exporter-arg", action="append", default=[], help="an extra exporter flag (repeat)"
    )
    parser.add_argument("--interval", type=float, help="the freshness runs' interval (s)")
    parser.add_argument("--warmup", type=float, help="the freshness runs' warm-up (s)")
    parser.add_argument(
        "--no-isolation", action="store_true", help="skip the run without AAAA timeouts"
    )
    parser.add_argument("--output", type=Path, help="where the table goes (bench/results.md)")
    parser.add_argument("--window", type=float, help="seconds of each throughput window")
    parser.add_argument(
        "--profile", type=Path, help="record py-spy profiles of the throughput runs into DIR"
    )
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(LAB_CORE)})
    EXTRA_ARGS.extend(args.exporter_arg)
    sizes = [int(x) for x in args.sizes.split(",")]
    window = args.window or (8.0 if args.quick else 20.0)
    report: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    }
    with tempfile.TemporaryDirectory(prefix="acme-bench-") as tmp:
        work = Path(tmp)
        for n in sizes:
            print(f"== N={n}", flush=True)
            with fleet(n, "0.7,0.1,0.1,0.1", work) as info:
                entry: dict[str, Any] = {}
                if "throughput" in args.phases:
                    for key, prefixes in (("mix", "htwr"), ("healthy", "hx")):
                        spy = None
                        if args.profile is not None:
                            args.profile.mkdir(parents=True, exist_ok=True)
                            spy = args.profile / f"{key}-{n}.txt"
                        entry[f"throughput_{key}"] = throughput(info, work, prefixes, window, spy)
                        print(f"throughput ({key})", entry[f"throughput_{key}"], flush=True)
                        if spy is not None and spy.exists():
                            print(summarise(spy.read_text()), flush=True)
                if "blackbox" in args.phases and n == sizes[0]:
                    probes = 2000 if args.quick else 10000
                    report["blackbox"] = blackbox(info, work, probes, 100)
                    print("blackbox", report["blackbox"], flush=True)
                    if info.get("system_dns"):
                        report["blackbox_dns"] = blackbox(info, work, probes, 100, by_name=True)
                        print("blackbox (names)", report["blackbox_dns"], flush=True)
                report[n] = entry
                if "fresh" not in args.phases:
                    continue
                interval = args.interval or (
                    (20.0 if n <= 1000 else 60.0) if not args.quick else 10.0
                )
                entry["fresh_mix"] = freshness(info, work, "htwr", interval, warmup=args.warmup)
                print("freshness (mix)", entry["fresh_mix"], flush=True)
                if args.no_isolation:
                    continue
                entry["fresh_clean"] = freshness(info, work, "hxwr", interval)
                print("freshness (no IPv6 timeouts)", entry["fresh_clean"], flush=True)
    text = render(report)
    print(text)
    (args.output or ROOT / "bench" / "results.md").write_text(text)


def render(report: dict[str, Any]) -> str:
    lines = [
        f"Machine: {report['machine']}. Exporter pinned to core {EXPORTER_CORE}, "
        f"lab and driver on core {LAB_CORE}.",
        "",
    ]
    lines += [
        f"| N | validations/s (mix, asked {RATE:.0f}) | CPU ms/validation (mix) "
        "| CPU ms/validation (healthy) | TIME_WAIT sockets (healthy run) | peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for n, entry in report.items():
        if not isinstance(n, int) or "throughput_mix" not in entry:
            continue
        tm, th = entry["throughput_mix"], entry["throughput_healthy"]
        lines.append(
            f"| {n:,} | {tm['per_second']:.0f} | {tm['cpu_per_validation_ms']:.2f} "
            f"| {th['cpu_per_validation_ms']:.2f} | {th['time_wait']:,} "
            f"| {max(tm['rss_mib'], th['rss_mib']):.0f} MiB |"
        )
    lines += [
        "",
        "Freshness (the mixed fleet at interval T, jitter T/10, three intervals, 50 gzip "
        "scrapes; staleness: the longest gap between two results of one domain, or the age "
        "of a result not yet replaced when a scrape was sent; in brackets, the domains over "
        "the limit, the longest gap between two starts of one domain, and the largest age "
        "when an answer had been read and parsed, the scrape's latency included):",
        "",
        "| N | interval T | worst staleness (≤ T + jitter?) | scheduler delay p50 / p99 "
        "| /metrics p50 / p99 | body (gzip) | CPU busy | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, entry in report.items():
        if not isinstance(n, int) or "fresh_mix" not in entry:
            continue
        fm = entry["fresh_mix"]
        limit = fm["interval"] + fm["jitter"]
        verdict = "yes" if fm["worst_stale"] <= limit and fm["missing"] == 0 else "NO"
        lines.append(
            f"| {n:,} | {fm['interval']:.0f} s "
            f"| {fm['worst_stale']:.2f} s ({verdict}, limit {limit:.0f} s; "
            f"{fm['over_limit']} over; starts {fm['worst_start_gap']:.2f} s; "
            f"read {fm['worst_age_received']:.2f} s) "
            f"| {fm['delay_p50']:.3f} / {fm['delay_p99']:.3f} s "
            f"| {1000 * fm['scrape_p50']:.0f} / {1000 * fm['scrape_p99']:.0f} ms "
            f"| {fm['body'] / 1e6:.1f} MB ({fm['body_gzip'] / 1e3:.0f} kB) "
            f"| {100 * fm['cpu_utilisation']:.0f}% | {fm['rss_mib']:.0f} MiB |"
        )
    lines += [
        "",
        "Isolation (healthy domains, run with 10% AAAA timeouts ÷ run without):",
        "",
        "| N | healthy latency p50 | p99 | healthy worst staleness |",
        "|---|---|---|---|",
    ]
    for n, entry in report.items():
        if not isinstance(n, int) or "fresh_clean" not in entry:
            continue
        a, b = entry["fresh_mix"], entry["fresh_clean"]
        lines.append(
            f"| {n:,} | {a['healthy_p50'] * 1000:.1f} ms ÷ {b['healthy_p50'] * 1000:.1f} ms "
            f"= {a['healthy_p50'] / b['healthy_p50']:.2f} "
            f"| {a['healthy_p99'] * 1000:.1f} ÷ {b['healthy_p99'] * 1000:.1f} ms "
            f"= {a['healthy_p99'] / b['healthy_p99']:.2f} "
            f"| {a['worst_stale_healthy']:.1f} ÷ {b['worst_stale_healthy']:.1f} s "
            f"= {a['worst_stale_healthy'] / b['worst_stale_healthy']:.2f} |"
        )
    if "blackbox" in report:
        first = next(v for k, v in report.items() if isinstance(k, int))
        ours = first["throughput_healthy"]["cpu_per_validation_ms"] / 2
        lines += [
            "",
            "CPU per HTTP request (blackbox_exporter at concurrency 100, as fast as it goes; "
            f"ours at {RATE:.0f} validations a second): ours **{ours:.2f} ms**, half a healthy "
            "validation with all its CPU counted (2 HTTP requests, 5 DNS queries: A, AAAA and "
            "CAA up the tree, the schedule, the result).",
            "",
            "| blackbox_exporter probing | probes (succeeded) | CPU ms per probe | ours ÷ theirs |",
            "|---|---|---|---|",
        ]
        for key, what in (
            ("blackbox", "the address (no DNS)"),
            ("blackbox_dns", "the name (one A query a probe)"),
        ):
            if key in report:
                bb = report[key]
                theirs = bb["cpu_per_request_ms"]
                lines.append(
                    f"| {what} | {bb['probes']} ({bb['successes']}) "
                    f"| {theirs:.3f} | **{ours / theirs:.2f}×** |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
