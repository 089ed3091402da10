"""The per-domain trigger: first run at once, then a fixed phase of the interval."""

from __future__ import annotations

import datetime as dt
import itertools

from exporter.scheduler import PhasedInterval

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
        assert base <= when <= base + 6 * S


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
