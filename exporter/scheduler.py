"""The schedule: when each domain's runs start, and the guard around every validation.

Rule: timing and isolation only. A :class:`Scheduler` runs one kind of run (the
validations; the certificate readings, on their own slower schedule, are a second
one) for each name it was given:

* a name's first run is due within ``first_within`` (default: the jitter; at least a
  tick) of when it was added, so the first runs after a start are spread, not a burst;
* then once an interval, at the name's own phase (a random point of the interval, so
  the load is even) plus up to the jitter, drawn afresh each time (it never
  accumulates): no two runs of a name are due more than ``interval + jitter`` apart
  (``interval`` plus a tick when the jitter is under a tick);
* never two runs of one name at once: a run that comes due while the name's previous
  one is still going starts as soon as that one ends (once, however many slots it
  outlasted; each such slot counts in ``acme_http01_scheduler_skipped_runs_total``
  with reason ``max_instances``; a slot that passed while the scheduler could not wake,
  the event loop blocked, is folded into the late run and counts as ``missed``);
* at most ``concurrency`` runs in flight (after a lower limit, new runs wait until
  the runs in flight are under it): a due run waits for a slot, in the order runs
  came due, and its callback is told how late it started (the validations'
  ``acme_http01_scheduler_delay_seconds``, waiting for a slot included).

Due times are on a grid of :data:`TICK`, so that the runs due together start in one
wake-up: one timer, at the earliest due time, for all the names. :meth:`Scheduler.sync`
adds and removes names to match a list (a run in flight for a removed name ends on its
own); :meth:`Scheduler.start` and :meth:`Scheduler.stop` are symmetric: stop cancels
the runs in flight and waits for them. Time is read from a :class:`Clock`: the running
event loop, or a fake one that a test advances.

APScheduler keeps the time: in production the one timer is a date job of an
``AsyncIOScheduler`` (:class:`APSchedulerClock`), a one-off wake-up as the library means
it, on the event loop (with a backstop on the loop's monotonic clock, since
APScheduler's is the wall clock, which can step backwards). The rule itself is this
module's, not APScheduler's jobs', because 3.x cannot keep it: it starts every due job
with no bound on how many are in flight; ``max_instances=1`` drops a run that comes due
during the previous one instead of running it right after (a first run that met a 10 s
dial timeout would leave the domain a whole interval without a result); the stock
interval trigger's jitter puts fire times off any grid; and a job per name makes a
wake-up per name. Keeping the rule on top of per-name jobs took a custom trigger,
listeners feeding bookkeeping beside it, and its logger silenced; here a heap of due
times keeps the rule directly, and a test's fake clock stands in for APScheduler and the
loop.

:func:`guarded` wraps one validation: an exporter bug becomes a failed result with
reason ``internal``; it raises only :class:`~exporter.resources.ExporterResourceError`
(the exporter out of descriptors or buffers: no result at all, the caller's to count).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import heapq
import itertools
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from exporter.records import Mode, Problem, ProblemType, Reason, ValidationResult
from exporter.resources import ExporterResourceError

if TYPE_CHECKING:  # annotations only: the scheduler alone imports no HTTP, DNS or config
    from exporter.config import DomainConfig
    from exporter.http01 import Validator
    from exporter.metrics import SelfMetrics

__all__ = ["BACKSTOP", "TICK", "APSchedulerClock", "Clock", "RunCallback", "Scheduler", "guarded"]

log = logging.getLogger("exporter")

#: A run's callback: the name, and how many seconds after its due time the run started.
RunCallback = Callable[[str, float], Awaitable[None]]

#: Due times are on this grid (seconds), so that the runs due close together start in one
#: wake-up: a wake-up costs about four times what one more due run adds (measured on the
#: APScheduler schedule this replaced: 0.24 ms of CPU per run with every run its own
#: wake-up, 0.04 ms on a 100 ms grid, at 300 runs a second). It adds at most a tick to a
#: run's start and to a gap between two runs.
TICK = 0.1
#: :meth:`Scheduler.sync` yields to the event loop after this many names (about 20 ms).
SYNC_BATCH = 5000


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """What the scheduler needs of time: an event loop has both."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object], /) -> Timer: ...


#: How late a wake-up may come when the wall clock steps backwards (see APSchedulerClock).
BACKSTOP = 1.0


class APSchedulerClock:
    """The production clock: the event loop's time, and each timer an APScheduler date
    job on an ``AsyncIOScheduler`` that runs on the loop (started with the first timer,
    shut down by :meth:`close`).

    APScheduler compares its run dates with the wall clock, the loop with a monotonic
    one: after a step of the wall clock backwards, a date job would wait as long again.
    So each timer has a backstop on the loop's own clock, :data:`BACKSTOP` after it is
    due; whichever comes first runs the callback, once.
    """

    def __init__(self) -> None:
        self._aps: AsyncIOScheduler | None = None

    def time(self) -> float:
        return asyncio.get_running_loop().time()

    def call_at(self, when: float, callback: Callable[[], object], /) -> Timer:
        if self._aps is None:
            self._aps = AsyncIOScheduler(timezone=dt.UTC)
            self._aps.start()
        timer = _JobTimer(callback)

        async def fire() -> None:  # a coroutine job runs on the loop, not in a thread
            timer.fire()

        # The loop's clock is monotonic, APScheduler's the wall clock: the same delay.
        delay = max(0.0, when - self.time())
        run_date = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
        timer.job = self._aps.add_job(fire, "date", run_date=run_date, misfire_grace_time=None)
        timer.backstop = asyncio.get_running_loop().call_at(when + BACKSTOP, timer.fire)
        return timer

    def close(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None


class _JobTimer:
    """A date job and its backstop: the callback runs once, at the first of the two."""

    __slots__ = ("_callback", "backstop", "job")

    def __init__(self, callback: Callable[[], object]) -> None:
        self._callback: Callable[[], object] | None = callback
        self.job: Any = None
        self.backstop: asyncio.TimerHandle | None = None

    def fire(self) -> None:
        callback, self._callback = self._callback, None
        if callback is not None:
            self.cancel()
            callback()

    def cancel(self) -> None:
        self._callback = None
        if self.backstop is not None:
            self.backstop.cancel()
        with contextlib.suppress(JobLookupError):  # it has fired, or its scheduler is gone
            self.job.remove()


@dataclasses.dataclass(eq=False, slots=True)
class _Job:
    name: str
    #: A slot of the name's phase; the others are this plus or minus whole intervals.
    phase: float
    #: Its next due time, in ticks, and the number of its heap entry (-1: not scheduled,
    #: the name was removed); the heap's other entries for it are stale.
    tick: int = 0
    entry: int = -1
    #: Running, or waiting for a slot.
    busy: bool = False
    #: When a run came due while busy (the first such slot), to run as soon as it ends.
    again: float | None = None


class Scheduler:
    """One kind of run over a set of names: ``run(name, late)``, by the rule above."""

    def __init__(
        self,
        run: RunCallback,
        metrics: SelfMetrics | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._run = run
        self._metrics = metrics
        self._own_clock: APSchedulerClock | None = None  # closed by stop()
        if clock is None:
            clock = self._own_clock = APSchedulerClock()
        self._clock = clock
        self._rng = rng or random.Random()
        self._interval = self._jitter = 1.0
        self._limit = 1
        self._jobs: dict[str, _Job] = {}
        self._heap: list[tuple[int, int, _Job]] = []
        self._stale = 0
        self._entries = itertools.count()
        self._waiting: collections.deque[tuple[_Job, float]] = collections.deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: Timer | None = None
        self._timer_tick = -1
        self._started = False

    async def sync(
        self,
        names: Iterable[str],
        *,
        interval: float,
        jitter: float,
        concurrency: int,
        reschedule: bool = False,
        first_within: float | None = None,
    ) -> None:
        """Make the names scheduled match ``names``. A new name first runs within
        ``first_within`` seconds (default: the jitter). With ``reschedule`` (a new interval
        or jitter), each name keeps its next due time, its place in the cycle, unless that
        is more than the new interval away (then it comes sooner, spread out)."""
        now = self._clock.time()
        self._interval, self._jitter, self._limit = interval, jitter, concurrency
        wanted = dict.fromkeys(names)
        for gone in [job for name, job in self._jobs.items() if name not in wanted]:
            self._unschedule(gone)
            gone.again = None
            if not gone.busy:
                del self._jobs[gone.name]
        spread = jitter if first_within is None else first_within
        for count, name in enumerate(wanted, 1):
            if count % SYNC_BATCH == 0:
                await asyncio.sleep(0)
            job = self._jobs.get(name)
            if job is None or job.entry < 0:  # new (or removed while its run goes on)
                if job is None:
                    job = self._jobs[name] = _Job(name, phase=0.0)
                job.phase = now + self._rng.random() * interval
                self._push(job, now + self._draw(spread))
            elif reschedule:
                due = job.tick * TICK
                job.phase = due if due <= now + interval else now + self._rng.random() * interval
                self._push(job, job.phase)
        if self._stale > len(self._heap) // 2:
            self._heap = [item for item in self._heap if item[1] == item[2].entry]
            heapq.heapify(self._heap)
            self._stale = 0
        self._start_waiting()
        self._arm()

    def start(self) -> None:
        self._started = True
        self._start_waiting()
        self._arm()

    async def stop(self) -> None:
        """Stop scheduling, cancel the runs in flight and wait for them to end."""
        self._started = False
        self._arm()
        if self._own_clock is not None:
            self._own_clock.close()
        for job, _ in self._waiting:
            job.busy = False
        self._waiting.clear()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------ the timing

    def _draw(self, spread: float) -> float:
        """A random delay that, rounded up to the tick, stays within ``spread``."""
        return self._rng.random() * max(0.0, spread - TICK)

    def _push(self, job: _Job, when: float, *, after: int = -1) -> None:
        """Make ``when``, rounded up to the tick (and after tick ``after``), the job's next
        due time."""
        if job.entry >= 0:
            self._stale += 1
        job.tick = max(math.ceil(when / TICK - 1e-9), after + 1)
        job.entry = next(self._entries)
        heapq.heappush(self._heap, (job.tick, job.entry, job))

    def _unschedule(self, job: _Job) -> None:
        if job.entry >= 0:
            job.entry = -1
            self._stale += 1

    def _arm(self) -> None:
        """One timer, at the earliest due time (none while stopped)."""
        while self._heap and self._heap[0][1] != self._heap[0][2].entry:
            heapq.heappop(self._heap)
            self._stale -= 1
        tick = self._heap[0][0] if self._heap and self._started else -1
        if tick == self._timer_tick and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_tick = tick
        if tick >= 0:
            self._timer = self._clock.call_at(tick * TICK, self._wake)

    def _wake(self) -> None:
        """Every job due by now: start it (or queue it, or note it for after its run), and
        give it its next due time: the first slot of its phase after this one, plus a
        fresh jitter."""
        self._timer = None
        # The tick it was set for has come (uvloop's millisecond timers may fire a little
        # early), and any tick that has passed meanwhile.
        now = max(self._timer_tick, math.floor(self._clock.time() / TICK))
        while self._heap and self._heap[0][0] <= now:
            tick, entry, job = heapq.heappop(self._heap)
            if entry != job.entry:
                self._stale -= 1
                continue
            job.entry = -1
            due = tick * TICK
            self._due(job, due)
            slot = job.phase + (math.floor((due - job.phase) / self._interval) + 1) * (
                self._interval
            )
            while slot <= now * TICK:  # passed while the loop could not run
                self._skipped(job, "missed")
                slot += self._interval
            self._push(job, slot + self._draw(self._jitter), after=now)
        self._arm()

    # ------------------------------------------------------------------ the runs

    def _skipped(self, job: _Job, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.skipped_runs.labels(reason).inc()
        log.debug("run skipped", extra={"fields": {"name": job.name, "reason": reason}})

    def _due(self, job: _Job, due: float) -> None:
        if job.busy:
            self._skipped(job, "max_instances")
            if job.again is None:
                job.again = due
            return
        job.busy = True
        if self._in_flight < self._limit and self._started:
            self._launch(job, due)
        else:
            self._waiting.append((job, due))

    def _launch(self, job: _Job, due: float) -> None:
        self._in_flight += 1
        late = max(0.0, self._clock.time() - due)
        task = asyncio.get_running_loop().create_task(self._one(job, late))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _one(self, job: _Job, late: float) -> None:
        """One run; a crash is logged, a cancellation (by :meth:`stop`) ends it."""
        try:
            await self._run(job.name, late)
        except Exception:
            log.exception("scheduled run crashed", extra={"fields": {"name": job.name}})
        finally:
            self._in_flight -= 1
            self._idle(job)
            again, job.again = job.again, None
            if self._started:
                self._start_waiting()
                if again is not None and job.entry >= 0:
                    self._due(job, again)

    def _idle(self, job: _Job) -> None:
        job.busy = False
        if job.entry < 0 and self._jobs.get(job.name) is job:  # removed meanwhile
            del self._jobs[job.name]

    def _start_waiting(self) -> None:
        while self._waiting and self._in_flight < self._limit and self._started:
            job, due = self._waiting.popleft()
            if job.entry < 0:  # removed while it waited
                self._idle(job)
            else:
                self._launch(job, due)


async def guarded(
    validator: Validator, domain: DomainConfig, metrics: SelfMetrics | None
) -> ValidationResult:
    """One validation of ``domain``, counted and timed; an exporter bug becomes a result.

    Raises :class:`ExporterResourceError` when the exporter ran out of its own resources
    during it: that says nothing about the domain, so it is no result (not ``internal``).
    """
    if metrics is not None:
        metrics.in_flight.inc()
    started = time.monotonic()
    try:
        return await validator.validate(
            domain.name,
            token=domain.token,
            key_authorization=domain.key_authorization,
            account_uris=None if domain.account_uris is None else frozenset(domain.account_uris),
        )
    except ExporterResourceError:
        raise
    except Exception as exc:
        log.exception("validation crashed", extra={"fields": {"domain": domain.name}})
        problem = Problem(
            ProblemType.SERVER_INTERNAL,
            Reason.INTERNAL,
            f"internal error: {type(exc).__name__}: {exc}",
        )
        mode = Mode.of(domain.key_authorization)
        return dataclasses.replace(
            ValidationResult.unreached(domain.name, validator.settings.policy, mode, problem),
            duration_seconds=time.monotonic() - started,
            finished_at=time.time(),
        )
    finally:
        if metrics is not None:
            metrics.in_flight.dec()
            metrics.latency.observe(time.monotonic() - started)
