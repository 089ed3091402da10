"""Basic auth under a password spray: does an authenticated scraper still get through?

    .venv/bin/python -m bench.auth_spray [--seconds 30] [--connections 200] [--rate 10]
                                         [--root DIR]

Starts the real exporter (the demo lab, ``--web.config.file`` with one user, a bcrypt hash
of cost 10 as ``htpasswd -nBC 10`` makes) pinned to core 0, and drives it from this process
on core 1. An authenticated scraper of ``/metrics`` (keep-alive, as Prometheus; one scrape
at a time, ``--rate`` a second) runs alone for ``--seconds``, then beside a spray of wrong
passwords (``--connections`` keep-alive connections, each sending its next request as soon
as the previous one is answered; half of them the real user with random passwords, half
random users) for as long again. Reported per phase: the scrape latency p50 / p99 / max,
the spray's requests answered a second and their statuses, the exporter's CPU.

The spray runs in a child process at low priority (nice 10), so that the scraper's
latency is the exporter's, not this driver's own event loop busy with the spray.

Everything is on 127.0.0.1; each phase stops by itself after ``--seconds`` (a request
unanswered after 30 s counts as failed, and the spray stops at ``--max-requests``).
``--root DIR`` runs the exporter from another checkout (say ``git worktree add /tmp/old
HEAD`` of an older commit) to compare within one sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import yaml

from bench.run import EXPORTER_CORE, LAB_CORE, PY, ROOT, cpu_seconds, quantile, stop
from exporter.lab.ports import free_port

USER = "prometheus"
TIMEOUT = 30.0


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Client:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str, authorization: str) -> tuple[int, int]:
        """(status, body bytes); raises OSError / TimeoutError / IncompleteReadError."""
        if self._streams is None:
            self._streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self._streams
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {authorization}\r\n"
                "\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if headers.get("connection") == "close":
                self.close()
            return status, len(body)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    scrape_failures: Counter[str] = field(default_factory=Counter)
    spray: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    cpu: float = 0.0

    def row(self) -> str:
        lat = self.latencies
        spray = sum(self.spray.values())
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.spray.items())) or "-"
        failed = ", ".join(f"{k}: {v}" for k, v in sorted(self.scrape_failures.items())) or "0"
        return (
            f"| {self.name} | {len(lat)} ({failed}) | {1000 * quantile(lat, 0.5):.1f} | "
            f"{1000 * quantile(lat, 0.99):.1f} | {1000 * max(lat, default=float('nan')):.1f} | "
            f"{spray / self.seconds:,.0f} ({statuses}) | {100 * self.cpu / self.seconds:.0f}% |"
        )


async def scraper(port: int, password: str, rate: float, until: float, phase: Phase) -> None:
    client = Client(port)
    authorization = basic(USER, password)
    period = 1 / rate
    next_at = time.monotonic()
    while (now := time.monotonic()) < until:
        if now < next_at:
            await asyncio.sleep(next_at - now)
        next_at = max(next_at + period, time.monotonic())
        started = time.perf_counter()
        try:
            status, _ = await asyncio.wait_for(client.get("/metrics", authorization), TIMEOUT)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            phase.scrape_failures[type(exc).__name__] += 1
            phase.latencies.append(time.perf_counter() - started)
            continue
        if status != 200:
            phase.scrape_failures[str(status)] += 1
        phase.latencies.append(time.perf_counter() - started)
    client.close()


async def sprayer(port: int, index: int, until: float, budget: list[int], phase: Phase) -> None:
    client = Client(port)
    while time.monotonic() < until and budget[0] > 0:
        budget[0] -= 1
        user = USER if index % 2 == 0 else f"user{secrets.randbelow(10**6)}"
        authorization = basic(user, secrets.token_urlsafe(12))
        try:
            status, _ = await asyncio.wait_for(client.get("/metrics", authorization), TIMEOUT)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            phase.spray[type(exc).__name__] += 1
            await asyncio.sleep(0.05)
            continue
        phase.spray[str(status)] += 1
    client.close()


async def run_phase(
    name: str, pid: int, port: int, password: str, args: argparse.Namespace
) -> Phase:
    phase = Phase(name)
    spray = None
    if name == "spray":
        spray = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bench.auth_spray", "--spray-port", str(port)),
            *("--seconds", str(args.seconds), "--connections", str(args.connections)),
            *("--max-requests", str(args.max_requests)),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            preexec_fn=lambda: os.nice(10),
        )
        assert spray.stdout is not None
        await spray.stdout.readline()  # connected
    cpu_before, started = cpu_seconds(pid), time.monotonic()
    await scraper(port, password, args.rate, started + args.seconds, phase)
    phase.seconds = time.monotonic() - started
    phase.cpu = cpu_seconds(pid) - cpu_before
    if spray is not None:
        out, _ = await asyncio.wait_for(spray.communicate(), 2 * TIMEOUT)
        phase.spray.update(json.loads(out))
    return phase


async def spray_only(port: int, args: argparse.Namespace) -> Counter[str]:
    """The spray alone, in this (child) process: counts by status, printed as JSON."""
    phase = Phase("spray")
    budget = [args.max_requests]
    print("ready", flush=True)
    until = time.monotonic() + args.seconds
    await asyncio.gather(*(sprayer(port, i, until, budget, phase) for i in range(args.connections)))
    return phase.spray


async def ready(port: int, password: str, proc: subprocess.Popen[bytes]) -> None:
    client = Client(port)
    deadline = time.monotonic() + 90
    while True:
        try:
            if (await client.get("/-/ready", basic(USER, password)))[0] == 200:
                break
        except (OSError, asyncio.IncompleteReadError):
            client.close()
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the exporter did not become ready")
        await asyncio.sleep(0.2)
    # Known before the spray, as a Prometheus that has been scraping is.
    assert (await client.get("/metrics", basic(USER, password)))[0] == 200
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="each phase")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="scrapes a second")
    parser.add_argument("--max-requests", type=int, default=3_000_000)
    parser.add_argument("--root", type=Path, default=ROOT, help="the exporter's checkout")
    parser.add_argument("--spray-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(LAB_CORE)})
    if args.spray_port:
        print(json.dumps(asyncio.run(spray_only(args.spray_port, args))), flush=True)
        return
    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as tmp:
        web = Path(tmp) / "web.yml"
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode()
        web.write_text(yaml.safe_dump({"basic_auth_users": {USER: hashed}}))
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(args.root.resolve())}
        proc = subprocess.Popen(
            [
                *("taskset", "-c", EXPORTER_CORE, PY, "-m", "exporter", "--demo"),
                *("--web.listen-address", f"127.0.0.1:{port}", "--web.config.file", str(web)),
                *("--log.level", "warn"),
            ],
            cwd=args.root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(Path(tmp) / "exporter.log", "wb"),  # noqa: SIM115
        )
        try:
            asyncio.run(ready(port, password, proc))
            phases = [
                asyncio.run(run_phase(name, proc.pid, port, password, args))
                for name in ("alone", "spray")
            ]
        finally:
            stop(proc)
            log = (Path(tmp) / "exporter.log").read_text(errors="replace").strip()
    commit = subprocess.run(
        ["git", "-C", str(args.root), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"exporter: {args.root} ({commit}); {os.cpu_count()} cores, exporter on core 0")
    print(
        f"spray: {args.connections} connections, wrong passwords; scraper: {args.rate:g}/s, "
        f"{args.seconds:g} s a phase\n"
    )
    print("| phase | scrapes (failed) | p50 ms | p99 ms | max ms | spray req/s (statuses) | CPU |")
    print("|---|---|---|---|---|---|---|")
    for phase in phases:
        print(phase.row())
    if log:
        lines = log.splitlines()
        print(f"\nexporter log ({len(lines)} lines), last:\n" + "\n".join(lines[-3:]))
    spray = phases[1].latencies
    if spray:
        print(f"\nscrape under spray: mean {1000 * statistics.fmean(spray):.1f} ms")


if __name__ == "__main__":
    main()
