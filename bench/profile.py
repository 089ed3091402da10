"""Where the exporter's CPU goes: a py-spy profile summarised by layer.

    .venv/bin/python -m bench.profile FILE.txt   # py-spy's raw (collapsed) output

``bench.run --profile`` records the exporter with ``py-spy record --format raw``
during a throughput window. A sample is charged to the layer of its innermost
frame that is not the standard library's plumbing (so time in ``ssl`` under h11
counts as TLS, time in ``selectors`` as the event loop), and the summary lists the
layers and the functions with the most samples of their own.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

#: (layer, a pattern on a frame "function (file:line)"), first match wins.
LAYERS: list[tuple[str, re.Pattern[str]]] = [
    # py-spy names files relative to their sys.path entry: "(dns/message.py:..." is
    # dnspython, "(exporter/dns.py:..." ours.
    (name, re.compile(r"\((?:" + pattern + r")[/.]"))
    for name, pattern in [
        ("TLS (ssl)", r"ssl"),
        ("HTTP: httpx models", r"httpx"),
        ("HTTP: h11", r"h11"),
        ("DNS: dnspython", r"dns"),
        ("scheduler: APScheduler (the wake-up timer)", r"apscheduler"),
        ("scheduler: datetime/tz", r"tzlocal|datetime|zoneinfo"),
        ("metrics: prometheus_client", r"prometheus_client"),
        ("logging", r"logging"),
        ("exporter: fetch", r"exporter/fetch|exporter/connection"),
        ("exporter: dns", r"exporter/dns|exporter/dnswire"),
        ("exporter: dial", r"exporter/dial"),
        ("exporter: driver (http01)", r"exporter/http01"),
        ("exporter: policy/caa/records", r"exporter/(?:policy|caa|records|gocompat|iana)"),
        ("exporter: metrics/endpoints/web", r"exporter/(?:metrics|endpoints|web)"),
        ("exporter: schedule/service", r"exporter/(?:scheduler|service|cli)"),
        ("event loop (uvloop)", r"uvloop"),
        ("event loop (asyncio)", r"asyncio|selectors"),
        ("gzip/zlib", r"gzip"),
        ("socket", r"socket"),
        ("weakref/enum/other stdlib", r"weakref|enum|secrets|random|struct|ipaddress"),
    ]
]
#: Standard-library frames that are plumbing, not a layer of their own.
_PLUMBING = re.compile(r"\((?:contextlib|typing|abc|functools|dataclasses|copy|<frozen [^>]*>)[.:]")


#: Leaves of a thread that waits (py-spy samples idle threads too): the event loop in
#: its poll (uvloop polls in C, under Runner.run), thread-pool workers waiting for work.
_IDLE = re.compile(
    r"^(?:_worker \(concurrent/futures/thread|Runner\.run \(asyncio/runners"
    r"|\w*Selector\.select \(selectors|Condition\.wait \(threading|_wait_for_tstate_lock)"
)


def _frames(stack: str) -> list[str]:
    return [f for f in stack.split(";") if f]


def layer_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        if _PLUMBING.search(frame):
            continue
        for name, pattern in LAYERS:
            if pattern.search(frame):
                return name
        return "other"
    return "other"


def summarise(raw: str, top: int = 15) -> str:
    layers: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = idle = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        if not frames:
            continue
        if _IDLE.match(frames[-1]):
            idle += count
            continue
        total += count
        layers[layer_of(frames)] += count
        leaf = re.sub(r":\d+\)$", ")", frames[-1])
        own[leaf] += count
    if total == 0:
        return "(no samples)\n"
    lines = [
        f"{total} busy samples ({idle} idle ones left out: the loop's poll, waiting threads).",
        "C code is charged to the Python frame that called it (uvloop's socket calls to the",
        "exporter's function that awaited them).",
        "",
        "| layer | share of busy |",
        "|---|---|",
    ]
    lines += [f"| {name} | {100 * n / total:.1f}% |" for name, n in layers.most_common()]
    lines += ["", "| function (own samples) | share |", "|---|---|"]
    for name, n in own.most_common(top):
        short = re.sub(r"\(.*/(site-packages|lib/python3\.\d+)/", "(", name)
        lines.append(f"| `{short}` | {100 * n / total:.1f}% |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("raw", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    print(summarise(args.raw.read_text(), args.top), end="")


if __name__ == "__main__":
    main()
