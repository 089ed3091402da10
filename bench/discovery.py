"""What Kubernetes discovery costs a running exporter: the first full set, memory, the API
server's requests, and how fast one change arrives.

    .venv/bin/python -m bench.discovery [--ingresses 2000 --certificates 1000] [--idle 60]

A real kube-apiserver and etcd (``tests/integration/kubeapi.py``, watch cache on, as in a
cluster; ``scripts/kube-servers.sh`` builds them once, or ``$KUBE_TEST_SERVERS`` names a
directory of them) holds N Ingresses of 3 hosts each and
M cert-manager Certificates of 4 DNS names each, issued by an ACME ClusterIssuer with an
HTTP-01 solver: 3N + 4M distinct names, ``n0.example.com`` on. The real exporter
(``python -m exporter``) then runs twice in this sitting:

1. with the same names as a static ``domains:`` list and no source: the time until
   ``acme_http01_domains`` counts them all, and RSS (VmRSS, VmHWM) from ``/proc``;
2. with ``sources.kubernetes`` (all namespaces, HTTPRoutes off) and no static domain:
   - the time from the process's start (and from its ``listening`` log line) until
     ``acme_http01_discovery_names`` of Ingress and Certificate sum to every name and
     ``acme_http01_domains`` counts them (``/metrics`` read every 50 ms), and RSS then;
   - the API server's requests for the four kinds it reads (``apiserver_request_total``
     by verb; a request counts when it ends), during that start and over an idle window,
     with the watches open (``apiserver_longrunning_requests``) and the exporter's
     established connections to the API server (its sockets in ``/proc``);
   - one change, ``--changes`` times: an Ingress with one new host created, the time
     until ``/domains/<host>`` knows it (the step that sets the domains writes its
     ``acme_http01_domain_source_info`` line too; checked in ``/metrics`` each time),
     then deleted, the time until it is gone; with the exporter's CPU per change, and the
     slowest ``/-/healthy`` (asked every 20 ms) meanwhile: how long the event loop was
     held by the recompute of the whole set that each change causes;
   - a burst: every Ingress's labels changed at once (its names stay): the exporter's
     CPU until it is quiet again, per event.

Loopback only: the names resolve through a nameserver on 127.0.0.1 at a port where nothing
listens (every lookup fails at once), with a 7-day interval and jitter, so validations are
few and cheap; certificate reading and CAA are off.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.lab.ports import free_port
from exporter.lab.process import cpu_seconds
from tests.kubeobjects import acme_cluster_issuer

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
POLL = 0.05
#: The kinds the exporter reads with certificates on and HTTPRoutes off (their resources).
RESOURCES = ("ingresses", "certificates", "issuers", "clusterissuers")
NAMESPACES = 10
HOSTS_PER_INGRESS = 3
NAMES_PER_CERTIFICATE = 4
WORKERS = 16
START_TIMEOUT = 600.0
CHANGE_TIMEOUT = 60.0


def _name(index: int) -> str:
    return f"n{index}.example.com"


# ----------------------------------------------------------------------- the cluster


def _servers() -> Path:
    configured = os.environ.get("KUBE_TEST_SERVERS")
    if configured:
        return Path(configured)
    print("scripts/kube-servers.sh (builds kube-apiserver once)...", file=sys.stderr, flush=True)
    done = subprocess.run(
        [str(ROOT / "scripts" / "kube-servers.sh")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    return Path(done.stdout.strip().splitlines()[-1])


def _ingress(namespace: str, name: str, hosts: list[str], labels: dict[str, str]) -> dict[str, Any]:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": host,
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
                for host in hosts
            ],
        },
    }


def _certificate(namespace: str, name: str, names: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "secretName": f"{name}-tls",
            "dnsNames": names,
            "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"},
        },
    }


CLUSTER_ISSUER = acme_cluster_issuer()


def _namespace(index: int) -> str:
    return f"bench-{index}"


def _ingress_object(index: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
    first = index * HOSTS_PER_INGRESS
    hosts = [_name(first + k) for k in range(HOSTS_PER_INGRESS)]
    return _ingress(_namespace(index % NAMESPACES), f"i{index}", hosts, labels or {"app": "web"})


def _certificate_object(index: int, offset: int) -> dict[str, Any]:
    first = offset + index * NAMES_PER_CERTIFICATE
    names = [_name(first + k) for k in range(NAMES_PER_CERTIFICATE)]
    return _certificate(_namespace(index % NAMESPACES), f"c{index}", names)


def _parallel(action: Callable[[Any], object], items: list[Any]) -> float:
    """Run ``action`` on each item in a pool of WORKERS threads; the seconds it took."""
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        for _ in pool.map(action, items):
            pass
    return time.perf_counter() - started


def populate(api: Any, ingresses: int, certificates: int) -> float:
    """The namespaces, the ClusterIssuer and every object; the seconds it took."""
    for index in range(NAMESPACES):
        api.create_namespace(_namespace(index))
    api.apply(CLUSTER_ISSUER)
    offset = ingresses * HOSTS_PER_INGRESS
    objects = [_ingress_object(i) for i in range(ingresses)]
    objects += [_certificate_object(i, offset) for i in range(certificates)]
    return _parallel(api.apply, objects)


def _api_metrics(api: Any) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """The API server's (verb, resource) request counts and open long-running requests,
    for the resources the exporter reads."""
    response = api.client().get("/metrics")
    response.raise_for_status()
    counts: dict[tuple[str, str], float] = {}
    open_: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            resource = sample.labels.get("resource", "")
            if resource not in RESOURCES:
                continue
            key = (sample.labels.get("verb", ""), resource)
            if sample.name == "apiserver_request_total":
                counts[key] = counts.get(key, 0.0) + sample.value
            elif sample.name == "apiserver_longrunning_requests":
                open_[key] = open_.get(key, 0.0) + sample.value
    return counts, open_


def _by_verb(
    before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]
) -> dict[str, dict[str, int]]:
    """{verb: {resource: requests}} made between two readings."""
    out: dict[str, dict[str, int]] = {}
    for key in sorted(set(before) | set(after)):
        delta = int(after.get(key, 0.0) - before.get(key, 0.0))
        if delta:
            verb, resource = key
            out.setdefault(verb, {})[resource] = delta
    return out


def _show(counts: dict[str, dict[str, int]]) -> str:
    if not counts:
        return "none"
    return "; ".join(
        f"{verb} {sum(per.values())} ("
        + ", ".join(f"{resource} {n}" for resource, n in per.items())
        + ")"
        for verb, per in sorted(counts.items())
    )


# ---------------------------------------------------------------------- the exporter


def _config(path: Path, dns_port: int, extra: dict[str, Any]) -> Path:
    document: dict[str, Any] = {
        "interval": "7d",
        "jitter": "7d",
        "resolver": {"nameservers": ["127.0.0.1"], "port": dns_port, "timeout": "1s"},
        "caa": {"enabled": False},
        "certificates": {"enabled": False},
        **extra,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        fields[key] = rest.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _connections(pid: int, port: int) -> int:
    """The established TCP connections of ``pid`` to 127.0.0.1:``port``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    remote = f"0100007F:{port:04X}"
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[2] == remote and parts[3] == "01" and parts[9] in inodes:
            count += 1
    return count


class Exporter:
    """``python -m exporter`` on a free port, its log read for the ``listening`` line."""

    def __init__(self, config: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.listening: float | None = None
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                "--config.file",
                str(config),
                "--web.listen-address",
                f"127.0.0.1:{self.port}",
                "--log.level",
                "info",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.http = httpx.Client(base_url=self.base, trust_env=False, timeout=120)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            if self.listening is None and "msg=listening" in line:
                self.listening = time.perf_counter()
            self.log.append(line)

    def metrics(self) -> str:
        return self.http.get("/metrics").text

    def wait(self, condition: Callable[[str], bool], timeout: float) -> float:
        """Read /metrics every POLL seconds until ``condition(body)``; the time since start."""
        deadline = time.perf_counter() + timeout
        while True:
            try:
                if condition(self.metrics()):
                    return time.perf_counter() - self.started
            except httpx.TransportError:
                pass
            self.alive()
            if time.perf_counter() > deadline:
                raise RuntimeError("timed out; the exporter's log:\n" + "".join(self.log[-30:]))
            time.sleep(POLL)

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"the exporter exited ({self.proc.returncode}):\n" + "".join(self.log[-30:])
            )

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@contextmanager
def exporter(config: Path) -> Iterator[Exporter]:
    running = Exporter(config)
    try:
        yield running
    finally:
        running.stop()


_SAMPLE = re.compile(r"^(\w+)(?:\{([^}]*)\})? (\S+)$")


def _samples(body: str, name: str) -> list[tuple[str, float]]:
    """(label text, value) of every sample of ``name``."""
    out = []
    for line in body.splitlines():
        if line.startswith(name) and (m := _SAMPLE.match(line)) and m.group(1) == name:
            out.append((m.group(2) or "", float(m.group(3))))
    return out


def _domains(body: str) -> float:
    return sum(v for _, v in _samples(body, "acme_http01_domains"))


def _discovered(body: str) -> float:
    return sum(
        v
        for labels, v in _samples(body, "acme_http01_discovery_names")
        if 'kind="Ingress"' in labels or 'kind="Certificate"' in labels
    )


class Heartbeat:
    """``/-/healthy`` every 20 ms on its own thread: the longest the event loop kept it."""

    def __init__(self, base: str) -> None:
        self.requests: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._client = httpx.Client(base_url=base, trust_env=False, timeout=120)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            sent = time.perf_counter()
            self._client.get("/-/healthy")
            self.requests.append((sent, time.perf_counter()))
            self._stop.wait(0.02)

    def slowest(self, start: float, end: float) -> float:
        overlapping = [b - a for a, b in self.requests if a <= end and b >= start]
        return max(overlapping, default=float("nan"))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(130)
        self._client.close()


def _wait_quiet(
    pid: int, since: float, idle_share: float, quiet: float = 2.0, timeout: float = 600.0
) -> float:
    """Wait until ``pid`` has used no more than when idle (``idle_share`` of a core, + 4%)
    for ``quiet`` seconds; the time from ``since`` until its busy period ended."""
    deadline = time.perf_counter() + timeout
    last_busy = time.perf_counter()
    cpu = cpu_seconds(pid)
    while time.perf_counter() < deadline:
        time.sleep(0.25)
        now_cpu = cpu_seconds(pid)
        if now_cpu - cpu > 0.25 * (idle_share + 0.04) + 1 / TICK:
            last_busy = time.perf_counter()
        cpu = now_cpu
        if time.perf_counter() - last_busy >= quiet:
            break
    return last_busy - since


# ---------------------------------------------------------------------------- phases


def measure_static(tmp: Path, names: list[str], dns_port: int) -> dict[str, Any]:
    """The exporter started with ``names`` as its ``domains:`` list. Should that start fail,
    the list is loaded by a reload after a start with none (``loaded``: how it was)."""
    config = _config(tmp / "static.yml", dns_port, {"domains": names})
    try:
        with exporter(config) as running:
            full = running.wait(lambda body: _domains(body) == len(names), START_TIMEOUT)
            time.sleep(2)
            running.alive()
            rss, hwm = _rss_mib(running.proc.pid)
            assert running.listening is not None
            return {
                "loaded": "at start",
                "full_s": full,
                "from_listening_s": full - (running.listening - running.started),
                "rss": rss,
                "hwm": hwm,
            }
    except RuntimeError as exc:
        print(f"the exporter started with {len(names):,} domains failed: {exc}", file=sys.stderr)
    _config(config, dns_port, {"domains": []})
    with exporter(config) as running:
        running.wait(lambda body: _domains(body) == 0, START_TIMEOUT)
        _config(config, dns_port, {"domains": names})
        started = time.perf_counter()
        running.http.post("/-/reload", timeout=300).raise_for_status()
        running.wait(lambda body: _domains(body) == len(names), START_TIMEOUT)
        full = time.perf_counter() - started
        time.sleep(2)
        running.alive()
        rss, hwm = _rss_mib(running.proc.pid)
        return {
            "loaded": "by a reload",
            "full_s": full,
            "from_listening_s": float("nan"),
            "rss": rss,
            "hwm": hwm,
        }


def measure_kubernetes(
    tmp: Path, api: Any, total: int, dns_port: int, args: argparse.Namespace
) -> dict[str, Any]:
    kubeconfig = api.kubeconfig(tmp / "kubeconfig")
    config = _config(
        tmp / "kube.yml",
        dns_port,
        {
            "sources": {
                "kubernetes": {"kubeconfig": str(kubeconfig), "httproute": {"enabled": False}}
            }
        },
    )
    out: dict[str, Any] = {}
    before, _ = _api_metrics(api)
    with exporter(config) as running:
        pid = running.proc.pid
        out["full_s"] = running.wait(
            lambda body: _discovered(body) == total and _domains(body) == total, START_TIMEOUT
        )
        assert running.listening is not None
        out["from_listening_s"] = out["full_s"] - (running.listening - running.started)
        at_full, watches = _api_metrics(api)
        out["start_requests"] = _by_verb(before, at_full)
        out["watches_open"] = {r: int(n) for (verb, r), n in watches.items() if verb == "WATCH"}
        out["connections"] = _connections(pid, api.port)
        out["scrape_s"] = _scrape_seconds(running)
        time.sleep(2)
        out["rss"], out["hwm"] = _rss_mib(pid)

        beat = Heartbeat(running.base)
        try:
            # The idle window: no change in the cluster.
            idle_from, _ = _api_metrics(api)
            cpu0, t0 = cpu_seconds(pid), time.perf_counter()
            time.sleep(args.idle)
            cpu1, t1 = cpu_seconds(pid), time.perf_counter()
            idle_to, watches = _api_metrics(api)
            out["idle_requests"] = _by_verb(idle_from, idle_to)
            out["idle_watches_open"] = {
                r: int(n) for (verb, r), n in watches.items() if verb == "WATCH"
            }
            out["idle_connections"] = _connections(pid, api.port)
            out["idle_cpu_share"] = (cpu1 - cpu0) / (t1 - t0)
            out["idle_stall"] = beat.slowest(t0, t1)
            out["rss_idle"], _ = _rss_mib(pid)

            # One change at a time: timed (``/domains/<host>`` asked every 5 ms), then
            # its CPU, on a change of its own that nothing polls.
            adds: list[float] = []
            removes: list[float] = []
            stalls: list[float] = []
            for k in range(args.changes):
                host = _name(total + k)
                obj = _ingress(_namespace(0), f"change-{k}", [host], {"app": "change"})
                for present in (True, False):
                    start = time.perf_counter()
                    _change(api, obj, present)
                    seconds = _until(running, host, present=present)
                    ended = time.perf_counter()
                    (adds if present else removes).append(seconds)
                    time.sleep(0.3)  # the change's work (merge, schedule) is done
                    stalls.append(beat.slowest(start, ended + 0.3))
                    line = f'acme_http01_domain_source_info{{domain="{host}",'
                    if (line in running.metrics()) != present:
                        raise RuntimeError(f"{host}: /domains and /metrics disagree")
            cpu_per: list[float] = []
            for k in range(args.changes):
                host = _name(total + args.changes + k)
                obj = _ingress(_namespace(0), f"quiet-{k}", [host], {"app": "change"})
                for present in (True, False):
                    cpu_a, start = cpu_seconds(pid), time.perf_counter()
                    _change(api, obj, present)
                    time.sleep(1.0)
                    idle = out["idle_cpu_share"] * (time.perf_counter() - start)
                    cpu_per.append(cpu_seconds(pid) - cpu_a - idle)
            out["add_s"], out["remove_s"] = adds, removes
            out["cpu_per_change"] = statistics.mean(cpu_per)
            out["change_stall"] = max(stalls)

            # A burst: every Ingress relabelled at once, its names unchanged.
            ingresses = args.ingresses
            cpu_a, start = cpu_seconds(pid), time.perf_counter()
            out["burst_apply_s"] = _parallel(
                api.apply,
                [_ingress_object(i, {"app": "web", "rev": "2"}) for i in range(ingresses)],
            )
            busy = _wait_quiet(pid, start, out["idle_cpu_share"])
            ended = start + busy
            out["burst_busy_s"] = busy
            out["burst_cpu_s"] = (
                cpu_seconds(pid) - cpu_a - out["idle_cpu_share"] * (time.perf_counter() - start)
            )
            out["burst_stall"] = beat.slowest(start, ended)
            out["burst_events"] = ingresses
        finally:
            beat.stop()
        if _domains(running.metrics()) != total:
            raise RuntimeError("the burst changed the set of names")
        running.alive()
        out["log_lines"] = len(running.log)
        out["request_log_lines"] = sum("logger=httpx2" in line for line in running.log)
    return out


def _change(api: Any, obj: dict[str, Any], present: bool) -> None:
    if present:
        api.apply(obj)
    else:
        api.delete(obj)


def _scrape_seconds(running: Exporter) -> float:
    """The median of 5 /metrics reads (the resolution of the start-up timing)."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        running.metrics()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _until(running: Exporter, host: str, *, present: bool) -> float:
    """Seconds until ``/domains/<host>`` knows the name (any answer but 404), or not."""
    started = time.perf_counter()
    deadline = started + CHANGE_TIMEOUT
    while True:
        known = running.http.get(f"/domains/{host}").status_code != 404
        if known == present:
            return time.perf_counter() - started
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{host} {'never came' if present else 'never went'}")
        time.sleep(0.005)


# ------------------------------------------------------------------------------ main


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ingresses", type=int, default=2000)
    parser.add_argument("--certificates", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of the idle window")
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()

    from tests.integration.kubeapi import KubeAPI

    servers = _servers()
    total = args.ingresses * HOSTS_PER_INGRESS + args.certificates * NAMES_PER_CERTIFICATE
    names = [_name(i) for i in range(total)]
    dns_port = free_port()  # nothing listens there
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        with KubeAPI(tmp / "kube", watch_cache=True, servers=servers) as api:
            created = populate(api, args.ingresses, args.certificates)
            static = measure_static(tmp, names, dns_port)
            kube = measure_kubernetes(tmp, api, total, dns_port, args)

    pages = -(-args.ingresses // 500) + -(-args.certificates // 500) + 2
    print(
        f"\n{args.ingresses:,} Ingresses × {HOSTS_PER_INGRESS} hosts + {args.certificates:,} "
        f"Certificates × {NAMES_PER_CERTIFICATE} names = {total:,} names in {NAMESPACES} "
        f"namespaces (created in {created:.1f} s, {WORKERS} threads); watch cache on\n"
    )
    static_note = (
        "" if static["loaded"] == "at start" else "loaded by a reload, timed from it (see stderr)"
    )
    rows = [
        ("Time to the full set (from the process's start)", None, None),
        ("  static `domains:` list", f"{static['full_s']:.2f} s", static_note),
        ("  Kubernetes discovery", f"{kube['full_s']:.2f} s", ""),
        (
            "  … from the `listening` log line: static",
            f"{static['from_listening_s']:.2f} s" if static["loaded"] == "at start" else "n/a",
            static_note,
        ),
        ("  … from the `listening` log line: discovery", f"{kube['from_listening_s']:.2f} s", ""),
        ("  one /metrics read at the full set (median of 5)", _ms(kube["scrape_s"]), ""),
        ("Memory once the set is full (VmRSS / VmHWM)", None, None),
        ("  static `domains:` list", f"{static['rss']:.0f} / {static['hwm']:.0f} MiB", static_note),
        ("  Kubernetes discovery", f"{kube['rss']:.0f} / {kube['hwm']:.0f} MiB", ""),
        (
            "  what discovery costs",
            f"{kube['rss'] - static['rss']:+.0f} / {kube['hwm'] - static['hwm']:+.0f} MiB",
            "",
        ),
        (
            f"  discovery after the {args.idle:.0f} s idle window (VmRSS)",
            f"{kube['rss_idle']:.0f} MiB",
            "",
        ),
        ("API server requests (the exporter's kinds)", None, None),
        (
            "  during the start",
            _show(kube["start_requests"]),
            f"{pages} LIST pages expected (issuers and clusterissuers: 1 each)",
        ),
        (f"  over {args.idle:.0f} s idle", _show(kube["idle_requests"]), "0 LIST, 0 GET expected"),
        (
            "  watches open (apiserver_longrunning_requests), after idle",
            ", ".join(f"{r} {n}" for r, n in sorted(kube["idle_watches_open"].items())) or "none",
            f"{sum(kube['watches_open'].values())} at the full set",
        ),
        (
            "  the exporter's connections to the API server",
            f"{kube['connections']} at the full set, {kube['idle_connections']} after idle",
            "",
        ),
        (
            "  the exporter's CPU while idle",
            f"{kube['idle_cpu_share'] * 100:.1f}% of a core",
            "heartbeat included",
        ),
        ("  slowest /-/healthy while idle", _ms(kube["idle_stall"]), ""),
        (f"One change ({args.changes} times)", None, None),
        (
            "  Ingress created → its name known (p50 / max)",
            f"{_ms(statistics.median(kube['add_s']))} / {_ms(max(kube['add_s']))}",
            "",
        ),
        (
            "  Ingress deleted → its name gone (p50 / max)",
            f"{_ms(statistics.median(kube['remove_s']))} / {_ms(max(kube['remove_s']))}",
            "",
        ),
        ("  the exporter's CPU per change", _ms(kube["cpu_per_change"]), "idle CPU subtracted"),
        ("  slowest /-/healthy around a change", _ms(kube["change_stall"]), ""),
        (f"A burst: {kube['burst_events']:,} Ingresses relabelled (names unchanged)", None, None),
        ("  applied in", f"{kube['burst_apply_s']:.1f} s", f"{WORKERS} threads"),
        ("  the exporter busy for", f"{kube['burst_busy_s']:.1f} s", ""),
        (
            "  its CPU (per event)",
            f"{kube['burst_cpu_s']:.1f} s ({_ms(kube['burst_cpu_s'] / kube['burst_events'])})",
            "",
        ),
        ("  slowest /-/healthy meanwhile", _ms(kube["burst_stall"]), ""),
    ]
    print(
        f"(the exporter logged {kube['log_lines']} lines at info level, "
        f"{kube['request_log_lines']} of them httpx2's per-request lines)",
        file=sys.stderr,
    )
    print("| | measured | note |")
    print("|---|---|---|")
    for label, value, note in rows:
        if value is None:
            print(f"| **{label}** | | |")
        else:
            print(f"| {label} | {value} | {note} |")
    print(
        "\nchanges, add (s): "
        + " ".join(f"{s:.3f}" for s in kube["add_s"])
        + "\nchanges, remove (s): "
        + " ".join(f"{s:.3f}" for s in kube["remove_s"]),
        flush=True,
    )


if __name__ == "__main__":
    main()
