"""What a large config costs a running exporter: a reload to 100,000 domains, ``/config``,
and a shrink back, with the event loop's stalls and the memory given back.

    .venv/bin/python -m bench.config_scale [--domains 100000] [--source DIR ...]

The real exporter (``python -m exporter`` in each ``--source`` tree, default this one, so
two commits compare in one sitting) starts with 10 domains, then is reloaded to N domains
(the file replaced by rename), asked for ``/config`` twice, and reloaded back to 10. A
thread asks ``/-/healthy`` every 20 ms throughout: its slowest answer in each phase is
the longest the event loop was kept from answering. RSS is read from ``/proc``.

Loopback only: the domains resolve through a nameserver on 127.0.0.1 at a port where
nothing listens (every lookup fails at once), with a 7-day interval and jitter, so
validations are few and cheap; certificate reading and CAA are off.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

from exporter.lab.ports import free_port

ROOT = Path(__file__).resolve().parents[1]


def _config(n: int, dns_port: int) -> str:
    document = {
        "interval": "7d",
        "jitter": "7d",
        "resolver": {"nameservers": ["127.0.0.1"], "port": dns_port, "timeout": "1s"},
        "caa": {"enabled": False},
        "certificates": {"enabled": False},
        "domains": [f"d{i}.example.com" for i in range(n)],
    }
    return yaml.safe_dump(document, sort_keys=False)


def _replace(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        fields[key] = rest.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Heartbeat:
    """``/-/healthy`` every 20 ms on its own thread; the latencies of each phase."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.requests: list[tuple[float, float]] = []  # (sent, answered), perf_counter
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            sent = time.perf_counter()
            with urllib.request.urlopen(self.base + "/-/healthy", timeout=120) as response:
                response.read()
            self.requests.append((sent, time.perf_counter()))
            self._stop.wait(0.02)

    def slowest(self, start: float, end: float) -> float:
        """The slowest heartbeat that was waiting at some time between start and end."""
        overlapping = [b - a for a, b in self.requests if a <= end and b >= start]
        return max(overlapping, default=float("nan"))

    def phase(self, action: Callable[[], object]) -> tuple[float, float, object]:
        """Run ``action``; (its seconds, the slowest heartbeat meanwhile, its result)."""
        started = time.perf_counter()
        result = action()
        ended = time.perf_counter()
        time.sleep(0.2)  # the heartbeat in flight at the end has answered
        while self.requests and self.requests[-1][1] < ended:
            time.sleep(0.05)
        return ended - started, self.slowest(started, ended), result

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(130)


def _request(base: str, path: str, method: str = "GET") -> bytes:
    request = urllib.request.Request(base + path, method=method)
    with urllib.request.urlopen(request, timeout=300) as response:
        return bytes(response.read())


def measure(source: Path, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yml"
        dns_port = free_port()
        _replace(path, _config(10, dns_port))
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                "--config.file",
                str(path),
                "--web.listen-address",
                f"127.0.0.1:{port}",
                "--log.level",
                "error",
            ],
            cwd=source,
            env={**os.environ, "PYTHONPATH": str(source)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    _request(base, "/-/healthy")
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("the exporter did not start") from None
                    time.sleep(0.1)
            time.sleep(1)
            out: dict[str, float] = {"rss_start": _rss_mib(proc.pid)[0]}
            beat = Heartbeat(base)
            try:
                _replace(path, _config(n, dns_port))
                out["grow_s"], out["grow_stall"], _ = beat.phase(
                    lambda: _request(base, "/-/reload", "POST")
                )
                out["config_s"], out["config_stall"], body = beat.phase(
                    lambda: _request(base, "/config")
                )
                out["config_mb"] = len(body) / 1e6  # type: ignore[arg-type]
                out["config_again_s"], _, _ = beat.phase(lambda: _request(base, "/config"))
                out["rss_large"], _ = _rss_mib(proc.pid)
                _replace(path, _config(10, dns_port))
                out["shrink_s"], out["shrink_stall"], _ = beat.phase(
                    lambda: _request(base, "/-/reload", "POST")
                )
                time.sleep(2)
                out["rss_after"], out["rss_peak"] = _rss_mib(proc.pid)
                idle = time.perf_counter()
                time.sleep(2)
                out["idle_p50"] = statistics.median(b - a for a, b in beat.requests if a >= idle)
            finally:
                beat.stop()
        finally:
            proc.terminate()
            proc.wait(30)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domains", type=int, default=100_000)
    parser.add_argument(
        "--source", action="append", type=Path, help="a source tree to run (default: this one)"
    )
    args = parser.parse_args()
    sources = args.source or [ROOT]
    print(f"{args.domains:,} domains; times in seconds, stalls = slowest /-/healthy meanwhile")
    header = (
        "| source | reload 10→N | its stall | /config | its stall | again | size MB | "
        "reload N→10 | its stall | RSS start / at N / after shrink / peak MiB |"
    )
    print(header)
    print("|" + "---|" * 10)
    for source in sources:
        r = measure(source, args.domains)
        print(
            f"| {source} | {r['grow_s']:.2f} | {r['grow_stall']:.2f} | {r['config_s']:.2f} | "
            f"{r['config_stall']:.2f} | {r['config_again_s']:.3f} | {r['config_mb']:.1f} | "
            f"{r['shrink_s']:.2f} | {r['shrink_stall']:.2f} | {r['rss_start']:.0f} / "
            f"{r['rss_large']:.0f} / {r['rss_after']:.0f} / {r['rss_peak']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
