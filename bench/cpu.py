"""CPU per HTTP request and per validation: two checkouts side by side, in one sitting.

    .venv/bin/python -m bench.cpu --commits A,B [--quick] [--rounds 5] [--seconds 1.0]
    .venv/bin/python -m bench.cpu --root /path/to/other/checkout [--quick]

A and B are two checkouts of the exporter: with ``--commits``, each commit checked out
into a temporary worktree (``git worktree add --detach``; the same commit twice is
allowed); with ``--root PATH``, A is the checkout at PATH (say ``git worktree add
/tmp/old d9e2d89``) and B this checkout's working tree as it is. Each is measured by a
worker process run with ``cwd`` and ``PYTHONPATH`` set to its checkout: this file,
copied to a temporary directory (nothing is written into either checkout), run as a
script. The worker imports only interfaces both sides have: ``exporter.fetch.Fetcher``
(``.fetch(url, address, Progress())``), ``exporter.fetch.Progress``,
``exporter.dial.Dialer`` and ``exporter.compose.load_bundle`` (a config file becomes a
validator and a certificate reader, as for ``check``, ``/probe`` and the service); it
checks that ``exporter`` was imported from its checkout. Its event loop is the
service's default (uvloop where installed; ``--loop asyncio`` for the standard one).

One lab process, built from this checkout's ``exporter.lab``, serves both workers on
loopback (127.0.0.1 and [::1]; DNS from the lab's own server, a config that names it:
nothing goes to the system resolver). The workers and the lab are pinned to different
cores, and only the worker's own CPU is counted (``time.process_time``: user + system,
all threads), never the lab's. One "op" is, per case:

* ``http``: ``Fetcher.fetch`` of the challenge URL, plain HTTP, pinned to a lab address
  whose port 80 is a server on 127.0.0.1 answering 200 with the key authorization
  (80 bytes): one dial, one request, one response read, the connection closed.
* ``https``: the same over TLS to the lab's port 443 server on 127.0.0.1 (a fresh TLS
  handshake each time, the lab's ECDSA P-256 certificate, not verified, as Let's Encrypt).
* ``redirect``: the same as ``http``, answered ``301`` with a ``Location`` and no body
  (the redirect is reported, not followed).
* ``validation``: ``Validator.validate`` of a healthy dual-stack name (canary token and
  key authorization) built by ``load_bundle`` from a config with ``caa.enabled: false``
  (no certificate read either): the A and AAAA queries to the lab DNS server (2 UDP
  queries), the request to the AAAA address and the AAAA-vs-A comparison request to the
  A address (2 plain HTTP requests, both 200), the driver, the policy and the result.
* ``validation+``: what the service does for one name: the same validation with CAA on
  (3 more queries: the name, ``example.com``, ``com``, all without CAA records) and,
  beside it (``asyncio.gather``, as ``check`` does), the bundle's certificate reading of
  the name (A and AAAA again, 2 queries, and one TLS handshake with the AAAA address whose
  chain verifies against the lab certificate given as ``certificates.ca_file``): 7 DNS
  queries, 2 HTTP requests and 1 handshake in all. (The service reads certificates on
  their own schedule, hourly by default, so this is the upper bound of a validation's
  share.)

Each round gives each checkout each case in turn (A then B, B then A in the next round,
and so on, so that the machine's noise falls on both alike): ``--concurrency`` ops in
flight (20), a warm-up, then ops until ``--seconds`` of the worker's CPU are spent (all
ops started then are finished and counted). The table gives, per case, the median over
the rounds of the CPU milliseconds per op of A and of B (with the fastest and slowest
round), B/A as the ratio of the medians and the range of the per-round ratios; an op
that failed (an exception, a validation that did not succeed, a status not the expected
one) is counted and shown. ``--quick`` is a short run (3 rounds of 0.3 s, about 30 s of
wall time on two cores); the default is 5 rounds of 1 s (5 s of CPU per case and checkout).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "healthy.example.com"

#: (case, what one op is), in the order they run.
CASES: tuple[tuple[str, str], ...] = (
    ("http", "one fetch, HTTP, 200 + 80-byte body"),
    ("https", "one fetch, HTTPS (fresh handshake), 200"),
    ("redirect", "one fetch, HTTP, 301 + Location"),
    ("validation", "validate(): 2 DNS, 2 HTTP; no CAA, no certificate"),
    ("validation+", "validate() + CAA (3 DNS) + certificate read (2 DNS, 1 TLS)"),
)


# ----------------------------------------------------------------------------- the lab


async def serve_lab(out: Path) -> None:
    """The lab (this checkout's ``exporter.lab``) until SIGTERM; ``out/lab.json`` says
    where everything is."""
    import yaml

    from exporter.lab import servers as L
    from exporter.lab.showcase import lab_config
    from exporter.lab.tls import lab_certificate

    lab = L.Lab()
    await lab.start()
    try:
        v6 = await lab.host(6, L.serve(), L.serve())
        v4 = await lab.host(4, L.serve(), L.serve())
        moved = await lab.host(4, L.redirect("https://{host}{path}"), "refused")
        lab.zone.add(DOMAIN, a=[v4], aaaa=[v6])
        # The lab servers' own certificate (made once per process), trusted as a root.
        ca_file = out / "lab-ca.pem"
        ca_file.write_bytes(lab_certificate()[0])
        domains = [{"name": DOMAIN, "token": L.CANARY_TOKEN, "key_authorization": L.CANARY_KA}]
        configs = {
            "validation": lab_config(
                lab, domains, caa={"enabled": False}, certificates={"enabled": False}
            ),
            "validation+": lab_config(
                lab, domains, caa={"enabled": True}, certificates={"ca_file": str(ca_file)}
            ),
        }
        for name, document in configs.items():
            (out / f"{name}.yml").write_text(yaml.safe_dump(document, sort_keys=False))
        path = f"/.well-known/acme-challenge/{L.CANARY_TOKEN}"
        info = {
            "endpoints": {
                address: {str(port): list(endpoint) for port, endpoint in ports.items()}
                for address, ports in lab.routes.endpoints.items()
            },
            "fetches": {
                "http": [f"http://{DOMAIN}{path}", v4, 200],
                "https": [f"https://{DOMAIN}{path}", v4, 200],
                "redirect": [f"http://{DOMAIN}{path}", moved, 301],
            },
            "domain": DOMAIN,
            "token": L.CANARY_TOKEN,
            "key_authorization": L.CANARY_KA,
            "configs": {name: str(out / f"{name}.yml") for name in configs},
        }
        (out / "lab.json.tmp").write_text(json.dumps(info))
        (out / "lab.json.tmp").rename(out / "lab.json")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await stop.wait()
    finally:
        await lab.stop()


# -------------------------------------------------------------------------- the worker
# Runs inside the checkout under test: the standard library and that checkout's exporter
# only (never ``bench``), through interfaces both checkouts have.


class _Routes:
    """A router (``exporter.dial.Router``) that sends the lab's addresses to its servers."""

    def __init__(self, endpoints: dict[str, dict[str, list[Any]]]) -> None:
        self._endpoints = {
            (address, int(port)): (str(host), int(real))
            for address, ports in endpoints.items()
            for port, (host, real) in ports.items()
        }

    def route(self, address: str, port: int) -> tuple[str, int] | None:
        return self._endpoints.get((address, port))


Op = Callable[[], Awaitable[bool]]


async def _ops(info: dict[str, Any]) -> dict[str, Op]:
    """One op per case, each returning whether it went as the lab says it must."""
    from exporter.compose import load_bundle
    from exporter.dial import Dialer
    from exporter.fetch import Fetcher, Progress

    fetcher = Fetcher(
        Dialer(_Routes(info["endpoints"])),
        dial_timeout=10.0,
        tls_timeout=10.0,
        user_agent="bench.cpu",
    )
    ops: dict[str, Op] = {}
    for case, (url, address, expected) in info["fetches"].items():

        async def fetch(url: str = url, address: str = address, expected: int = expected) -> bool:
            response = await fetcher.fetch(url, address, Progress())
            return bool(response.status == expected)

        ops[case] = fetch
    domain, token, ka = info["domain"], info["token"], info["key_authorization"]
    bare = load_bundle(info["configs"]["validation"]).validator
    full = load_bundle(info["configs"]["validation+"])

    async def validation() -> bool:
        result = await bare.validate(domain, token=token, key_authorization=ka)
        return bool(result.success)

    async def validation_plus() -> bool:
        result, check = await asyncio.gather(
            full.validator.validate(domain, token=token, key_authorization=ka),
            full.certificates.read(domain),
        )
        cert = check.certificate
        return bool(result.success and cert is not None and cert.chain_valid)

    ops["validation"] = validation
    ops["validation+"] = validation_plus
    return ops


@dataclass
class Window:
    ops: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    cpu: float = 0.0
    wall: float = 0.0


async def _window(op: Op, cpu_seconds: float, concurrency: int) -> Window:
    """``concurrency`` ops in flight until ``cpu_seconds`` of this process's CPU are spent;
    every op started is finished, and counted."""
    window = Window()
    started, wall = time.process_time(), time.perf_counter()
    until = started + cpu_seconds

    async def loop() -> None:
        while time.process_time() < until:
            try:
                ok = await op()
            except Exception as exc:
                window.errors[type(exc).__name__] += 1
                ok = False
            window.ops += 1
            window.failed += not ok

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    window.cpu = time.process_time() - started
    window.wall = time.perf_counter() - wall
    return window


def worker(info_path: Path, loop_choice: str) -> None:
    """Answer one measurement a line on stdin with one JSON line, until EOF."""
    protocol: TextIO = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed goes to stderr, never into the answers
    info = json.loads(info_path.read_text())
    factory = None
    if loop_choice != "asyncio":
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            if loop_choice == "uvloop":
                raise
    import exporter

    with asyncio.Runner(loop_factory=factory) as runner:
        ops = runner.run(_ops(info))
        loop_name = type(runner.get_loop()).__module__.split(".")[0]
        hello = {"exporter": exporter.__file__, "loop": loop_name}
        print(json.dumps(hello), file=protocol, flush=True)
        for line in sys.stdin:
            ask = json.loads(line)
            op = ops[ask["case"]]
            runner.run(_window(op, ask["warmup"], ask["concurrency"]))
            gc.collect()
            window = runner.run(_window(op, ask["seconds"], ask["concurrency"]))
            answer = {
                "ops": window.ops,
                "failed": window.failed,
                "errors": dict(window.errors),
                "cpu": window.cpu,
                "wall": window.wall,
            }
            print(json.dumps(answer), file=protocol, flush=True)


# -------------------------------------------------------------------------- the driver


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def _pinned(core: int | None) -> Callable[[], None] | None:
    if core is None:
        return None
    return lambda: os.sched_setaffinity(0, {core})


@dataclass
class Checkout:
    label: str
    path: Path
    proc: subprocess.Popen[str] | None = None
    loop: str = ""

    def ask(self, **request: Any) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker of {self.label} ended (see its stderr above)")
        answer: dict[str, Any] = json.loads(line)
        return answer


@contextlib.contextmanager
def _worktrees(commits: list[str], work: Path) -> Iterator[list[Checkout]]:
    made: list[Path] = []
    try:
        checkouts = []
        for side, commit in zip("ab", commits, strict=True):
            tree = work / f"{side}-{commit}"
            _git("worktree", "add", "--detach", str(tree), commit)
            made.append(tree)
            subject = _git("log", "-1", "--format=%s", commit)
            subject = subject if len(subject) <= 70 else subject[:69] + "…"
            checkouts.append(Checkout(f"`{commit}` {subject}", tree))
        yield checkouts
    finally:
        for tree in made:
            _git("worktree", "remove", "--force", str(tree))


@contextlib.contextmanager
def _lab(work: Path, core: int | None) -> Iterator[Path]:
    """The lab process, pinned to ``core``; yields the path of its ``lab.json``."""
    out = work / "lab"
    out.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.cpu", "--lab", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "lab.log", "wb"),  # noqa: SIM115
        preexec_fn=_pinned(core),
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / "lab.json").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (work / "lab.log").read_text(errors="replace")
                raise RuntimeError(f"the lab did not start:\n{log[-2000:]}")
            time.sleep(0.05)
        yield out / "lab.json"
    finally:
        from bench.run import stop  # the driver's own bench (a worker never gets here)

        stop(proc)


def _start(checkout: Checkout, code: Path, info: Path, loop: str, core: int | None) -> None:
    checkout.proc = subprocess.Popen(
        [sys.executable, str(code), "--worker", str(info), "--loop", loop],
        cwd=checkout.path,
        env={**os.environ, "PYTHONPATH": str(checkout.path)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_pinned(core),
    )
    assert checkout.proc.stdout is not None
    line = checkout.proc.stdout.readline()
    if not line:
        raise RuntimeError(f"the worker of {checkout.label} did not start (see stderr above)")
    hello = json.loads(line)
    imported = Path(hello["exporter"]).resolve()
    if not imported.is_relative_to(checkout.path.resolve()):
        raise RuntimeError(f"{checkout.label}: exporter imported from {imported}")
    checkout.loop = hello["loop"]


def _stop(checkout: Checkout) -> None:
    if checkout.proc is None:
        return
    assert checkout.proc.stdin is not None
    checkout.proc.stdin.close()
    try:
        checkout.proc.wait(30)
    except subprocess.TimeoutExpired:
        checkout.proc.kill()
        checkout.proc.wait(10)


def _span(values: list[float], digits: int = 3) -> str:
    return f"{min(values):.{digits}f}–{max(values):.{digits}f}"


def render(checkouts: list[Checkout], found: dict[str, list[list[dict[str, Any]]]]) -> str:
    a, b = checkouts
    lines = [
        f"A: {a.label}",
        f"B: {b.label}",
        "",
        "| case | one op | A ms CPU/op (rounds) | B ms CPU/op (rounds) | B/A "
        "| B/A per round | ops/round A, B | failed A, B |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case, what in CASES:
        per = [[1000 * w["cpu"] / w["ops"] for w in side] for side in found[case]]
        ratios = [pb / pa for pa, pb in zip(*per, strict=True)]
        medians = [statistics.median(values) for values in per]
        ops = [round(statistics.mean(w["ops"] for w in side)) for side in found[case]]
        failed = [sum(w["failed"] for w in side) for side in found[case]]
        lines.append(
            f"| {case} | {what} "
            f"| {medians[0]:.3f} ({_span(per[0])}) | {medians[1]:.3f} ({_span(per[1])}) "
            f"| **{medians[1] / medians[0]:.3f}** | {_span(ratios)} "
            f"| {ops[0]:,}, {ops[1]:,} | {failed[0]}, {failed[1]} |"
        )
    errors: Counter[str] = Counter()
    for case, _ in CASES:
        for checkout, side in zip(checkouts, found[case], strict=True):
            for window in side:
                for name, count in window["errors"].items():
                    errors[f"{case} {checkout.label.split()[0]}: {name}"] += count
    if errors:
        lines += ["", "Errors: " + ", ".join(f"{k} ×{v}" for k, v in sorted(errors.items()))]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--commits", help="A,B: two commits (any git revisions)")
    which.add_argument("--root", type=Path, help="A: another checkout (B: this one)")
    parser.add_argument("--quick", action="store_true", help="a short run: 3 rounds of 0.3 s")
    parser.add_argument("--rounds", type=int, help="rounds (5; quick: 3)")
    parser.add_argument("--seconds", type=float, help="worker CPU per case a round (1.0)")
    parser.add_argument("--concurrency", type=int, default=20, help="ops in flight")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto")
    parser.add_argument("--lab", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lab is not None:
        import uvloop  # the lab must outpace the worker on its own core

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve_lab(args.lab))
        return
    if args.worker is not None:
        worker(args.worker, args.loop)
        return
    if (args.commits is None) == (args.root is None):
        parser.error("give --commits A,B or --root PATH")
    rounds = args.rounds or (3 if args.quick else 5)
    seconds = args.seconds or (0.3 if args.quick else 1.0)
    warmup = max(0.1, seconds / 4)
    cores = sorted(os.sched_getaffinity(0))
    worker_core, lab_core = (cores[0], cores[-1]) if len(cores) >= 2 else (None, None)
    if lab_core is not None:
        os.sched_setaffinity(0, {lab_core})  # the driver waits beside the lab
    began = time.monotonic()
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="acme-cpu-")))
        if args.commits is not None:
            commits = [_git("rev-parse", "--short", c) for c in args.commits.split(",")]
            if len(commits) != 2:
                parser.error("--commits takes two revisions: A,B")
            checkouts = stack.enter_context(_worktrees(commits, work))
        else:
            root = args.root.resolve()
            checkouts = [Checkout(f"{root}", root), Checkout(f"{ROOT} (this checkout)", ROOT)]
        code = work / "code" / "cpu.py"
        code.parent.mkdir()
        shutil.copyfile(Path(__file__), code)
        info = stack.enter_context(_lab(work, lab_core))
        for checkout in checkouts:
            stack.callback(_stop, checkout)
            _start(checkout, code, info, args.loop, worker_core)
        print(
            f"{rounds} rounds × {seconds:g} s of worker CPU per case and checkout "
            f"(warm-up {warmup:g} s), {args.concurrency} in flight, "
            f"event loop {checkouts[0].loop}/{checkouts[1].loop}; "
            f"worker on core {worker_core}, lab on core {lab_core}",
            flush=True,
        )
        found: dict[str, list[list[dict[str, Any]]]] = {case: [[], []] for case, _ in CASES}
        for r in range(rounds):
            order = (0, 1) if r % 2 == 0 else (1, 0)
            for case, _ in CASES:
                for i in order:
                    window = checkouts[i].ask(
                        case=case, seconds=seconds, warmup=warmup, concurrency=args.concurrency
                    )
                    found[case][i].append(window)
                    print(
                        f"round {r + 1} {case:<11} {'AB'[i]}: "
                        f"{1000 * window['cpu'] / window['ops']:.3f} ms CPU/op, "
                        f"{window['ops']} ops, {window['ops'] / window['wall']:.0f}/s, "
                        f"{window['failed']} failed",
                        flush=True,
                    )
    print()
    print(render(checkouts, found))
    print(f"\nwall time: {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
