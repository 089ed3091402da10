"""The schedule: one APScheduler job per domain, and the guard around every validation.

Rule: timing and isolation only. Each domain is one job per kind of run (its
validation; the reading of its certificate, on a slower schedule): first run
soon after start, spread by jitter; then every interval at the domain's own
phase, so the load is even (each time rounded up to a 100 ms tick, so that runs
due together start in one wake-up); never two runs of one job at once; late runs
coalesced: a run that comes due while the previous one is still going
(a first run that met a 10 s dial timeout, say) runs once as soon as it ends.
No two starts of one job are further apart than the interval plus the jitter
(plus a tick when the jitter is zero and the interval is not a whole number of
ticks), unless the previous run outlasted its slot. Jobs
are added and removed to match the domain list, and :meth:`Scheduler.start` and
:meth:`Scheduler.stop` are symmetric: stop cancels the runs in flight and
waits for them. What a run does is the caller's callback. :func:`guarded`
wraps one validation: an exporter bug becomes a failed result with reason
``internal``; it raises only :class:`~exporter.resources.ExporterResourceError`
(the exporter out of descriptors or buffers: no result at all, the caller's to count).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from exporter.config import DomainConfig
from exporter.http01 import Validator
from exporter.metrics import SelfMetrics
from exporter.records import Mode, Problem, ProblemType, Reason, ValidationResult
from exporter.resources import ExporterResourceError

__all__ = ["PhasedInterval", "Scheduler", "guarded"]

log = logging.getLogger("exporter")

#: A run's callback: the domain's name and when the run was due (None if unknown).
RunCallback = Callable[[str, dt.datetime | None], Awaitable[None]]


#: Fire times are rounded up to this grid, so that the runs due close together start in
#: one wake-up of the scheduler: a wake-up (its timer, the loop's thread-safe hop, the job
#: store's next time) costs about four times what one more due job adds (measured: 0.24 ms
#: of CPU per run with every run its own wake-up, 0.04 ms on a 100 ms grid, at 300 runs
#: a second). It adds at most a tick to a run's start and to a gap between two runs.
TICK = dt.timedelta(milliseconds=100)
#: Scheduler.sync yields to the event loop after this many jobs (about 30 ms of work).
SYNC_BATCH = 500
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class PhasedInterval(BaseTrigger):  # type: ignore[misc]
    """Every ``interval`` seconds at a fixed phase, plus up to ``jitter`` (the rounding up to
    the tick included); the first run at ``first``. With one random phase per domain the
    steady-state load is spread evenly over the interval, instead of every domain coming due
    in the same burst after a start."""

    def __init__(
        self,
        *,
        interval: float,
        jitter: float,
        first: dt.datetime,
        anchor: dt.datetime,
        tick: dt.timedelta = TICK,
    ) -> None:
        self.interval = dt.timedelta(seconds=interval)
        self.jitter = jitter
        self.first = first
        self.anchor = anchor
        self.tick = tick
        self._drawn = max(0.0, jitter - tick.total_seconds())

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime:
        if previous_fire_time is None:
            return self._on_tick(self.first)
        # The first slot of the phase after the previous run, plus the jitter drawn a tick
        # short, rounded up to the tick: always later than the previous run, never more
        # than the jitter past its slot, so no gap is longer than interval + jitter (the
        # first one after a start may be shorter).
        periods = (previous_fire_time - self.anchor) // self.interval + 1
        due = self.anchor + periods * self.interval
        return self._on_tick(due + dt.timedelta(seconds=random.uniform(0, self._drawn)))

    def _on_tick(self, when: dt.datetime) -> dt.datetime:
        """``when`` rounded up to the tick grid (exact: timedelta arithmetic)."""
        remainder = (when - _EPOCH) % self.tick
        return when if not remainder else when + (self.tick - remainder)

    def __str__(self) -> str:
        return f"phased interval[{self.interval}]"


class Scheduler:
    """One job per (kind, domain name); each run calls ``runs[kind](name, due)``.

    Kinds are independent schedules over the same names: the validations, and the
    cheaper, rarer certificate readings.
    """

    def __init__(self, runs: Mapping[str, RunCallback], metrics: SelfMetrics) -> None:
        self._runs = dict(runs)
        self._metrics = metrics
        self._scheduler = AsyncIOScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=dt.UTC,
        )
        self._scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self._scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        self._due: dict[str, dt.datetime] = {}
        #: Jobs that came due while their previous run was still going: they run once more
        #: as soon as it ends, instead of waiting a whole interval for the next slot.
        self._again: dict[str, dt.datetime | None] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False

    async def sync(
        self,
        kind: str,
        names: Iterable[str],
        *,
        interval: float,
        jitter: float,
        reschedule: bool,
        first_within: float | None = None,
    ) -> None:
        """Make ``kind``'s jobs match ``names``; with ``reschedule``, existing jobs take the
        new interval and jitter, keeping their place in the cycle (no burst). A new job
        first runs within ``first_within`` seconds (default: the jitter).

        It yields to the event loop every :data:`SYNC_BATCH` jobs: adding a job costs about
        60 µs, so 100,000 at once would keep every endpoint waiting for 6 s."""
        prefix = f"{kind}:"
        wanted = [prefix + name for name in names]
        keep = set(wanted)
        done = 0
        # Latest first: the job store is a list by next run time, and a removal near its end
        # moves nothing (front first, 100,000 removals moved 40 GB of pointers).
        for job in reversed(self._scheduler.get_jobs()):
            if job.id.startswith(prefix) and job.id not in keep:
                job.remove()
                done += 1
                if done % SYNC_BATCH == 0:
                    await asyncio.sleep(0)
        existing = {job.id: job for job in self._scheduler.get_jobs()}
        now = dt.datetime.now(dt.UTC)
        period = dt.timedelta(seconds=interval)
        for job_id in wanted:
            done += 1
            if done % SYNC_BATCH == 0:
                await asyncio.sleep(0)
            job = existing.get(job_id)
            if job is not None:
                if reschedule:
                    # A new interval keeps each domain's place in the cycle (or comes
                    # sooner, spread out, when the new interval is shorter).
                    first = job.next_run_time
                    if first is None or first > now + period:
                        first = now + dt.timedelta(seconds=random.uniform(0, interval))
                    self._scheduler.reschedule_job(
                        job_id,
                        trigger=PhasedInterval(
                            interval=interval, jitter=jitter, first=first, anchor=first
                        ),
                    )
                continue
            trigger = PhasedInterval(
                interval=interval,
                jitter=jitter,
                first=now
                + dt.timedelta(
                    seconds=random.uniform(0, jitter if first_within is None else first_within)
                ),
                anchor=now + dt.timedelta(seconds=random.uniform(0, interval)),
            )
            self._scheduler.add_job(
                self._job, trigger=trigger, args=[job_id], id=job_id, name=job_id
            )

    def start(self) -> None:
        self._stopping = False
        self._scheduler.start()

    async def stop(self) -> None:
        """Stop scheduling, cancel the runs in flight and wait for them to end."""
        self._stopping = True
        # Shutting down cancels the validations in flight on purpose; APScheduler would log
        # each cancelled job (even one not yet started) as an error.
        logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        if event.scheduled_run_times:
            self._due[event.job_id] = event.scheduled_run_times[-1]

    def _on_skipped(self, event: JobEvent) -> None:
        reason = "max_instances" if event.code == EVENT_JOB_MAX_INSTANCES else "missed"
        if event.code == EVENT_JOB_MAX_INSTANCES and event.job_id not in self._again:
            times = getattr(event, "scheduled_run_times", None)
            self._again[event.job_id] = times[-1] if times else None
        self._metrics.skipped_runs.labels(reason).inc()
        log.debug("run skipped", extra={"fields": {"job": event.job_id, "reason": reason}})

    async def _job(self, job_id: str) -> None:
        """One scheduled run; never raises (a cancellation at shutdown ends it quietly)."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        kind, _, name = job_id.partition(":")
        try:
            due = self._due.pop(job_id, None)
            while True:
                await self._runs[kind](name, due)
                if self._stopping or job_id not in self._again:
                    break
                due = self._again.pop(job_id)  # came due during that run: once more, now
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            self._again.pop(job_id, None)
            if task is not None:
                self._tasks.discard(task)


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
