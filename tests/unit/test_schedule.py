"""The per-domain trigger (first run at once, then a fixed phase of the interval) and the
scheduler's handling of a run that comes due while the previous one is going."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools

import pytest
from prometheus_client import CollectorRegistry

from exporter.metrics import SelfMetrics
from exporter.scheduler import TICK, PhasedInterval, Scheduler

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
S = dt.timedelta(seconds=1)


def fire_times(trigger: PhasedInterval, count: int) -> list[dt.datetime]:
    times: list[dt.datetime] = []
    previous = None
    for _ in range(count):
        previous = trigger.get_next_fire_time(previous, T0)
        times.append(previous)
    return times


def test_first_run_then_anchored_phase() -> None:
    trigger = PhasedInterval(interval=60, jitter=0, first=T0 + 2 * S, anchor=T0 + 45 * S)
    assert fire_times(trigger, 4) == [T0 + 2 * S, T0 + 45 * S, T0 + 105 * S, T0 + 165 * S]


def test_no_gap_is_longer_than_the_interval() -> None:
    trigger = PhasedInterval(interval=60, jitter=0, first=T0 + 50 * S, anchor=T0 + 10 * S)
    assert fire_times(trigger, 3) == [T0 + 50 * S, T0 + 70 * S, T0 + 130 * S]
    for anchor in range(0, 60, 7):
        trigger = PhasedInterval(interval=60, jitter=0, first=T0 + 3 * S, anchor=T0 + anchor * S)
        times = fire_times(trigger, 5)
        assert all(S <= b - a <= 60 * S for a, b in itertools.pairwise(times))


def test_jitter_never_accumulates() -> None:
    trigger = PhasedInterval(interval=60, jitter=6, first=T0, anchor=T0 + 30 * S)
    times = fire_times(trigger, 50)
    for n, when in enumerate(times[1:]):
        base = T0 + 30 * S + n * 60 * S
        assert base <= when <= base + 6 * S + TICK


def test_fire_times_are_on_the_tick_grid_and_always_later() -> None:
    import random

    random.seed(11)
    first = T0 + dt.timedelta(seconds=0.123456)
    anchor = T0 + dt.timedelta(seconds=7.654321)
    trigger = PhasedInterval(interval=2.5, jitter=0.3, first=first, anchor=anchor)
    times = fire_times(trigger, 200)
    assert times[0] == T0 + dt.timedelta(seconds=0.2)  # rounded up, never earlier
    assert all((t - T0) % TICK == dt.timedelta(0) for t in times)
    assert all(dt.timedelta(0) < b - a <= 2.8 * S for a, b in itertools.pairwise(times[1:]))
    # Jitter and ticks never accumulate: run n is within its slot's jitter, the tick included.
    for n, when in enumerate(times[1:]):
        slot = anchor + (n - 2) * 2.5 * S  # the phase's slots run both ways from the anchor
        assert slot <= when <= slot + 0.3 * S


@pytest.mark.parametrize(("interval", "jitter", "least"), [(300, 30, 329), (60, 0.15, 60)])
def test_no_gap_is_longer_than_interval_plus_jitter_the_tick_included(
    interval: float, jitter: float, least: float
) -> None:
    import random

    random.seed(5)
    worst = dt.timedelta(0)
    for _ in range(200):
        anchor = T0 + dt.timedelta(seconds=random.uniform(0, interval))
        trigger = PhasedInterval(interval=interval, jitter=jitter, first=anchor, anchor=anchor)
        times = fire_times(trigger, 50)
        worst = max(worst, *(b - a for a, b in itertools.pairwise(times[1:])))
    # 9,800 gaps: the jitter is used, and the bound is never passed.
    assert least * S < worst <= (interval + jitter) * S


def test_phases_spread_the_load() -> None:
    import random

    random.seed(7)
    anchors = [random.uniform(0, 60) for _ in range(1000)]
    triggers = [PhasedInterval(interval=60, jitter=0, first=T0, anchor=T0 + a * S) for a in anchors]
    second_runs = [fire_times(t, 2)[1] for t in triggers]
    busiest = max(
        sum(1 for r in second_runs if T0 + k * 6 * S <= r < T0 + (k + 1) * 6 * S) for k in range(20)
    )
    assert busiest < 200  # no six-second window holds more than a fifth of the domains


async def test_a_run_that_comes_due_during_the_previous_one_runs_right_after_it() -> None:
    """The first run outlasts the gap to the domain's next slot: that slot's run is not
    dropped (a whole interval without a result), it starts as soon as the first ends."""
    loop = asyncio.get_running_loop()
    started: list[float] = []
    ended: list[float] = []

    async def run(name: str, due: dt.datetime | None) -> None:
        started.append(loop.time())
        await asyncio.sleep(1.0 if len(started) == 1 else 0.01)
        ended.append(loop.time())

    registry = CollectorRegistry(auto_describe=False)
    scheduler = Scheduler({"validation": run}, SelfMetrics(registry))
    await scheduler.sync("validation", ["a.example"], interval=3.0, jitter=0.0, reschedule=False)
    now = dt.datetime.now(dt.UTC)
    # First run at once; the domain's phase 0.4 s later, while the first still runs.
    trigger = PhasedInterval(interval=3.0, jitter=0.0, first=now, anchor=now + 0.4 * S)
    scheduler._scheduler.get_jobs()[0].modify(trigger=trigger)
    scheduler.start()
    try:
        for _ in range(100):
            if len(ended) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await scheduler.stop()
    assert len(ended) >= 2, "the second run waited for the next slot"
    assert started[1] - ended[0] < 0.2  # right after the first, not 3 s later
    skipped = registry.get_sample_value(
        "acme_http01_scheduler_skipped_runs_total", {"reason": "max_instances"}
    )
    assert skipped == 1
