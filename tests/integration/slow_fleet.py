"""A lab process for the hostile suite: N domains on one server that never answers.

python -m tests.integration.slow_fleet --domains 10000 --out DIR
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import yaml

from exporter.lab import servers as L
from exporter.lab.showcase import lab_config


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--domains", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    lab = L.Lab()
    await lab.start()
    slow = await lab.host(4, L.hang(), "refused")
    healthy = await lab.host(4, L.serve(), L.serve())
    for i in range(args.domains):
        lab.zone.add(f"slow{i}.example.com", a=[slow])
    lab.zone.add("healthy.example.net", a=[healthy])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lab.yml").write_text(yaml.safe_dump(lab_config(lab, [])))
    (args.out / "ready").write_text("1")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await lab.stop()


if __name__ == "__main__":
    asyncio.run(main())
