"""A lab fleet of N domains on loopback, served until SIGTERM; writes exporter configs.

Names (``h-``, ``t-``, ``w-``, ``r-`` and ``x-`` prefixes):

* ``h-<i>.example.com``: healthy dual-stack (both families serve the canary);
* ``t-<i>.example.com``: the AAAA times out (blackholed), the A serves: succeeds via fallback;
* ``w-<i>.example.com``: the AAAA answers 404 (another virtual host): fails, no fallback;
* ``r-<i>.example.com``: port 80 redirects to HTTPS on the same name (both families serve);
* ``x-<i>.example.com``: more healthy names, standing in for ``t-`` in the no-broken run;
* ``b-<i>.example.com``: the healthy IPv4 server's own address, for blackbox_exporter.

All names share a handful of lab addresses and endpoints; what the exporter does per
domain (two lookups, pinned requests, the AAAA/A comparison) is the same as with
distinct addresses.

    python -m bench.fleet --domains 10000 --out DIR
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

import uvloop
import yaml

from exporter.lab import servers as L
from exporter.lab.showcase import lab_config


def split(n: int, mix: tuple[float, float, float, float]) -> dict[str, int]:
    healthy, timeout, wrong, redirect = mix
    counts = {"t": round(n * timeout), "w": round(n * wrong), "r": round(n * redirect)}
    counts["h"] = n - sum(counts.values())
    assert healthy >= 0
    return counts


def domains(counts: dict[str, int], replace_timeouts: bool = False) -> list[dict[str, str]]:
    out = []
    for prefix in ("h", "t", "w", "r"):
        shown = "x" if prefix == "t" and replace_timeouts else prefix
        for i in range(counts[prefix]):
            out.append(
                {
                    "name": f"{shown}-{i}.example.com",
                    "token": L.CANARY_TOKEN,
                    "key_authorization": L.CANARY_KA,
                }
            )
    return out


SYSTEM_DNS = "127.0.0.53"


async def build(n: int, mix: tuple[float, float, float, float], out: Path) -> L.Lab:
    lab = L.Lab()
    await lab.start()
    good6 = await lab.host(6, L.serve(), L.serve())
    good4 = await lab.host(4, L.serve(), L.serve())
    dead6 = await lab.host(6, "timeout", "timeout")
    wrong6 = await lab.host(6, L.status(404), L.status(404))
    redir6 = await lab.host(6, L.redirect("https://{host}{path}"), L.serve())
    redir4 = await lab.host(4, L.redirect("https://{host}{path}"), L.serve())
    counts = split(n, mix)
    for i in range(counts["h"]):
        lab.zone.add(f"h-{i}.example.com", a=[good4], aaaa=[good6])
    for i in range(counts["t"]):
        lab.zone.add(f"t-{i}.example.com", a=[good4], aaaa=[dead6])
        lab.zone.add(f"x-{i}.example.com", a=[good4], aaaa=[good6])
    for i in range(counts["w"]):
        lab.zone.add(f"w-{i}.example.com", a=[good4], aaaa=[wrong6])
    for i in range(counts["r"]):
        lab.zone.add(f"r-{i}.example.com", a=[redir4], aaaa=[redir6])
    # For blackbox_exporter resolving names like the exporter does: b-<i> has one A
    # record, the healthy IPv4 server's loopback address, served on 127.0.0.53:53 too
    # (Go's resolver reads /etc/resolv.conf and asks port 53; bench.run points a mount
    # namespace's resolv.conf there).
    healthy_v4 = lab.routes.endpoints[good4][80]
    for i in range(counts["h"]):
        lab.zone.add(f"b-{i}.example.com", a=[healthy_v4[0]])
    system_dns = None
    try:
        await L.LabDNS(lab.zone, host=SYSTEM_DNS).start(53)
        system_dns = SYSTEM_DNS
    except OSError:  # not root: the name-resolving blackbox run is skipped
        pass
    base: dict[str, Any] = lab_config(lab, [])
    base.pop("interval", None)
    base.pop("timeouts", None)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fleet.yml").write_text(
        yaml.safe_dump(
            {
                "base": base,
                "counts": counts,
                "endpoints": {"healthy_v4": list(healthy_v4)},
                "system_dns": system_dns,
            }
        )
    )
    return lab


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--domains", type=int, required=True)
    parser.add_argument("--mix", default="0.7,0.1,0.1,0.1", help="healthy,timeout,wrong,redirect")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    mix = tuple(float(x) for x in args.mix.split(","))
    assert len(mix) == 4
    lab = await build(args.domains, mix, args.out)  # type: ignore[arg-type]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    (args.out / "ready").write_text("1")
    await stop.wait()
    await lab.stop()


if __name__ == "__main__":
    # On uvloop: the lab must outpace the exporter on its own core.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
