"""The scheduler's rule, driven through its public interface by a fake clock: no sleeps.

Many seeded random cases (names, intervals, jitters, concurrency, run durations, a
change of the name set halfway) check what the module docstring promises; a few
scenarios check the rest (an overrun's run right after it, one wake-up per tick,
rescheduling, 50,000 names).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import heapq
import itertools
import math
import random
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from exporter.metrics import SelfMetrics
from exporter.scheduler import TICK, Scheduler

EPS = 1e-6


class FakeTimer:
    def __init__(self, callback: Callable[[], object]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Time that moves only when the test advances it; timers fire in order of time,
    ``early`` seconds before theirs (as uvloop's millisecond timers may)."""

    def __init__(self, now: float, *, early: float = 0.0) -> None:
        self.now = now
        self.early = early
        self.fired = 0
        self.waking = 0  # sleepers whose time came and that have not run yet
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object], /) -> FakeTimer:
        return self._at(when - self.early, callback)

    def _at(self, when: float, callback: Callable[[], object]) -> FakeTimer:
        timer = FakeTimer(callback)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._at(self.now + seconds, lambda: self._wake(future))
        await future
        self.waking -= 1

    def _wake(self, future: asyncio.Future[None]) -> None:
        if not future.done():
            self.waking += 1
            future.set_result(None)

    async def advance_to(self, end: float) -> None:
        """Fire the timers due by ``end`` in order, those due at one time together, and let
        what they woke run before the next."""
        await self.settle()
        while self._timers and self._timers[0][0] <= end:
            self.now = max(self.now, self._timers[0][0])
            for _ in range(100_000):
                if not self._timers or self._timers[0][0] > self.now:
                    break
                timer = heapq.heappop(self._timers)[2]
                if not timer.cancelled:
                    self.fired += 1
                    timer.callback()
            else:
                raise AssertionError(f"timers set again and again at {self.now}: a spin")
            await self.settle()
        self.now = max(self.now, end)

    async def settle(self) -> None:
        """Let what the timers woke run until it waits on the clock again: the sleepers
        resume (a run that ends may start others), then the tasks started meanwhile run
        their first step, up to their own sleep."""
        while self.waking:
            await asyncio.sleep(0)
        await asyncio.sleep(0)


@dataclasses.dataclass
class Run:
    name: str
    start: float
    late: float
    end: float = math.inf
    cancelled: bool = False


class Runs:
    """The fake callback: each run takes ``duration(name)`` seconds of the fake clock."""

    def __init__(self, clock: FakeClock, duration: Callable[[str], float]) -> None:
        self.clock = clock
        self.duration = duration
        self.all: list[Run] = []
        self.running: set[str] = set()
        self.peak = 0
        self.overlaps = 0

    async def __call__(self, name: str, late: float) -> None:
        run = Run(name, self.clock.now, late)
        self.all.append(run)
        self.overlaps += name in self.running
        self.running.add(name)
        self.peak = max(self.peak, len(self.running))
        try:
            duration = self.duration(name)
            if duration:
                await self.clock.sleep(duration)
        except asyncio.CancelledError:
            run.cancelled = True
            raise
        finally:
            run.end = self.clock.now
            self.running.discard(name)

    def of(self, name: str) -> list[Run]:
        return [run for run in self.all if run.name == name]

    def in_flight_at(self, when: float) -> list[Run]:
        return [run for run in self.all if run.start <= when < run.end]


async def stop(scheduler: Scheduler) -> None:
    """Stop it; it must cancel the runs in flight and wait for them, not for the clock."""
    await asyncio.wait_for(scheduler.stop(), timeout=5)


def on_grid(when: float) -> bool:
    return abs(when / TICK - round(when / TICK)) < EPS


async def one_case(seed: int) -> tuple[bool, bool]:
    """One random case; returns whether its concurrency was saturated and whether a run
    outlasted its slot (so that the whole set can be checked to cover both)."""
    rng = random.Random(seed)
    count = rng.randint(1, 10)
    interval = rng.choice(
        [rng.uniform(1, 20), float(rng.randint(1, 20)), rng.randint(10, 99) * TICK]
    )
    jitter = rng.choice([0.0, rng.uniform(0, TICK), rng.uniform(0, interval), interval])
    bound = interval + max(jitter, TICK)  # the longest gap between two due times
    first_within = rng.choice([None, rng.uniform(0, 2 * interval)])
    spread = max(jitter if first_within is None else first_within, TICK)
    first = set(f"d{i}" for i in range(count))
    second = set(rng.sample(sorted(first), rng.randint(0, count))) | {
        f"n{i}" for i in range(rng.randint(0, 4))
    }
    everyone = first | second
    unlimited = rng.random() < 0.5
    concurrency = len(everyone) if unlimited else rng.randint(1, len(everyone))
    mean = interval * rng.choice([0.05, 0.3, 0.9])
    clock = FakeClock(1000 + rng.uniform(0, 10))
    runs = Runs(clock, lambda name: rng.expovariate(1 / mean))
    scheduler = Scheduler(runs, clock=clock, rng=random.Random(seed))
    start = clock.now
    sync = functools.partial(
        scheduler.sync,
        interval=interval,
        jitter=jitter,
        concurrency=concurrency,
        first_within=first_within,
    )
    await sync(sorted(first))
    scheduler.start()
    middle = start + 3 * interval
    await clock.advance_to(middle)
    await sync(sorted(second))
    end = middle + 3 * interval
    await clock.advance_to(end)
    await stop(scheduler)
    stopped = len(runs.all)
    await clock.advance_to(end + 3 * interval)

    assert len(runs.all) == stopped, "a run started after stop"
    assert not runs.running and all(run.end <= end for run in runs.all), "stop did not wait"
    assert runs.overlaps == 0, "two runs of one name at once"
    assert runs.peak <= concurrency
    for run in runs.all:
        assert run.late >= 0
        due = run.start - run.late
        # A run waits only for a slot, or for the name's own previous run.
        if run.late > EPS:
            busy = runs.in_flight_at(due + EPS / 2)
            assert len(busy) >= concurrency or run.name in {b.name for b in busy}
    outlasted = False
    for name in everyone:
        mine = runs.of(name)
        added = start if name in first else middle
        if name in first and name not in second:
            assert all(run.start <= middle + EPS for run in mine), f"{name} ran after removal"
        ran_until = end if name in second else middle
        assert all(run.start >= added - EPS for run in mine)
        if not unlimited:  # an overloaded schedule may starve a name (in turn)
            continue
        assert mine, f"{name} never ran"
        assert mine[0].start - added <= spread + EPS, "first run too late"
        for a, b in itertools.pairwise(mine):
            assert b.start <= max(a.start + bound, a.end) + EPS, (name, a, b)
            assert b.start >= a.end - EPS
            outlasted |= b.start == a.end
        for run in mine:
            assert on_grid(run.start) or any(run.start == other.end for other in mine)
        last = mine[-1]
        # Runs go on to the end: no name is left waiting longer than the bound.
        assert max(last.start + bound, last.end) >= ran_until - EPS, (name, last)
    return concurrency < len(everyone) and runs.peak == concurrency, outlasted


async def test_the_rule_holds_in_many_random_cases() -> None:
    saturated = outlasted = 0
    for seed in range(150):
        full, over = await one_case(seed)
        saturated += full
        outlasted += over
    # The cases cover the interesting parts: runs waiting for a slot, runs overrunning.
    assert saturated > 25 and outlasted > 25


async def started(
    names: list[str],
    duration: Callable[[str], float],
    *,
    seed: int,
    interval: float,
    jitter: float,
    concurrency: int,
    registry: CollectorRegistry | None = None,
    now: float = 0.0,
) -> tuple[FakeClock, Runs, Scheduler]:
    """A scheduler on a fake clock at ``now``, its names synced and started."""
    clock = FakeClock(now)
    runs = Runs(clock, duration)
    metrics = None if registry is None else SelfMetrics(registry)
    scheduler = Scheduler(runs, metrics, clock=clock, rng=random.Random(seed))
    await scheduler.sync(names, interval=interval, jitter=jitter, concurrency=concurrency)
    scheduler.start()
    return clock, runs, scheduler


def skipped(registry: CollectorRegistry, reason: str) -> float | None:
    return registry.get_sample_value("acme_http01_scheduler_skipped_runs_total", {"reason": reason})


async def test_a_run_that_comes_due_during_the_previous_one_runs_right_after_it() -> None:
    """A first run outlasts the gap to the name's next slot: that slot's run is not dropped
    (a whole interval without a result), it starts as soon as the first ends, counted as a
    skipped slot, and told how late it is."""
    durations = itertools.chain([3.05], itertools.repeat(0.5))
    registry = CollectorRegistry(auto_describe=False)
    clock, runs, scheduler = await started(
        ["a.example"],
        lambda name: next(durations),
        seed=3,
        interval=3.0,
        jitter=0.0,
        concurrency=10,
        registry=registry,
        now=100.0,
    )
    await clock.advance_to(120.0)
    await stop(scheduler)
    first, second, third = runs.all[:3]
    assert first.start == 100.0 and first.end == 103.05
    assert second.start == 103.05 and 0 < second.late < 3.05
    assert third.start - second.start <= 3.0 + TICK
    assert skipped(registry, "max_instances") == 1


async def test_runs_due_together_share_one_wake_up_and_phases_spread_the_load() -> None:
    names = [f"d{i}.example" for i in range(1000)]
    clock, runs, scheduler = await started(
        names, lambda name: 0.0, seed=5, interval=60.0, jitter=1.0, concurrency=1000
    )
    await clock.advance_to(60.0 * 2)
    await stop(scheduler)
    starts = [run.start for run in runs.all]
    assert len(starts) >= 2000
    # One wake-up starts every run due on its tick: at most one a tick, none for nothing.
    assert clock.fired == len(set(starts)) <= 2 * 600 + 1
    # The first runs are spread over the jitter (ten ticks), not one burst.
    first: dict[str, float] = {}
    for run in runs.all:
        first.setdefault(run.name, run.start)
    per_tick = collections.Counter(first.values())
    assert max(first.values()) <= 1.0 + EPS and max(per_tick.values()) < 200
    # Each name runs at its own phase: no six seconds of an interval hold a fifth.
    later = [start % 60 for start in starts if start >= 60.0]
    assert max(sum(1 for t in later if k * 6 <= t < (k + 1) * 6) for k in range(10)) < 200


async def test_a_timer_that_fires_a_little_early_starts_its_tick_once() -> None:
    clock = FakeClock(0.0, early=0.001)
    runs = Runs(clock, lambda name: 0.5)
    scheduler = Scheduler(runs, clock=clock, rng=random.Random(8))
    await scheduler.sync(["a", "b"], interval=10.0, jitter=3.0, concurrency=2)
    scheduler.start()
    await clock.advance_to(100.0)
    await stop(scheduler)
    starts = [run.start for run in runs.all]
    assert len(starts) >= 18 and all(on_grid(start + 0.001) for start in starts)
    assert all(run.late == 0.0 for run in runs.all)


async def test_slots_that_pass_while_the_loop_is_blocked_are_one_late_run() -> None:
    registry = CollectorRegistry(auto_describe=False)
    clock, runs, scheduler = await started(
        ["a"],
        lambda name: 0.5,
        seed=6,
        interval=10.0,
        jitter=0.0,
        concurrency=1,
        registry=registry,
    )
    await clock.advance_to(1.0)
    clock.now = 45.0  # the event loop was blocked, no timer fired, for 44 s
    await clock.advance_to(100.0)
    await stop(scheduler)
    starts = [run.start for run in runs.all]
    assert starts[:2] == [0.0, 45.0] and runs.all[1].late > 34.0
    assert all(b - a <= 10.0 + TICK for a, b in itertools.pairwise(starts[1:]))
    assert skipped(registry, "missed") == 3  # four slots passed: one runs late, three folded


async def test_jitter_never_accumulates() -> None:
    clock, runs, scheduler = await started(
        ["a", "b", "c"], lambda name: 0.01, seed=7, interval=10.0, jitter=2.0, concurrency=3
    )
    await clock.advance_to(1000.0)
    await stop(scheduler)
    for name in "abc":
        starts = [run.start for run in runs.of(name)]
        assert len(starts) >= 99
        spread = [start - starts[1] - n * 10.0 for n, start in enumerate(starts[1:])]
        assert all(abs(s) <= 2.0 + EPS for s in spread)
        assert max(spread) - min(spread) > 1.0  # the jitter is drawn afresh each time


async def test_a_new_interval_keeps_each_name_in_its_place_or_brings_it_sooner() -> None:
    names = [f"d{i}" for i in range(50)]
    clock, runs, scheduler = await started(
        names, lambda name: 0.01, seed=9, interval=300.0, jitter=0.0, concurrency=50
    )
    await clock.advance_to(400.0)
    before = {name: runs.of(name)[-1].start for name in names}
    await scheduler.sync(names, interval=30.0, jitter=0.0, concurrency=50, reschedule=True)
    await clock.advance_to(700.0)
    await stop(scheduler)
    kept = 0
    for name in names:
        after = [run.start for run in runs.of(name) if run.start > 400.0]
        assert after[0] <= 430.0 + TICK  # within the new interval
        if before[name] + 300.0 <= 430.0:  # it was due within it anyway: it kept its place
            assert abs(after[0] - (before[name] + 300.0)) <= TICK
            kept += 1
        assert all(b - a <= 30.0 + TICK for a, b in itertools.pairwise(after))
    assert kept > 0


async def test_a_higher_concurrency_starts_the_waiting_runs_at_once() -> None:
    names = [f"d{i}" for i in range(10)]
    clock, runs, scheduler = await started(
        names, lambda name: 50.0, seed=1, interval=100.0, jitter=1.0, concurrency=2
    )
    await clock.advance_to(10.0)
    assert len(runs.running) == 2
    await scheduler.sync(names, interval=100.0, jitter=1.0, concurrency=6)
    await clock.advance_to(10.0)
    assert len(runs.running) == 6
    await stop(scheduler)
    assert all(run.cancelled for run in runs.all)


async def test_a_crashing_run_is_logged_and_the_schedule_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(name: str) -> float:
        raise RuntimeError("boom")

    clock, runs, scheduler = await started(
        ["a"], boom, seed=2, interval=5.0, jitter=0.0, concurrency=1
    )
    await clock.advance_to(20.0)
    await stop(scheduler)
    assert len(runs.all) == 5
    assert caplog.text.count("scheduled run crashed") == 5


async def test_fifty_thousand_names_in_and_out() -> None:
    names = [f"d{i}.example" for i in range(50_000)]
    clock, runs, scheduler = await started(
        names, lambda name: 0.01, seed=4, interval=300.0, jitter=30.0, concurrency=100
    )
    await clock.advance_to(0.3)
    await scheduler.sync(names[:3], interval=300.0, jitter=30.0, concurrency=100)
    await clock.advance_to(700.0)
    await stop(scheduler)
    first = [run for run in runs.all if run.start <= 0.3]
    later = [run for run in runs.all if run.start > 0.3]
    assert 0 < len(first) < 50_000 * 0.4 / 30  # the first runs spread over the jitter
    assert {run.name for run in later} == set(names[:3]) and len(later) >= 3 * 2
