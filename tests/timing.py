"""How late a busy machine runs a timer: the allowance a time bound adds, measured.

A bound on wall time that must hold on a shared machine adds the worst lateness seen
meanwhile, by a ticker on the event loop (the loop the code under test runs on) or in a
thread (which the loop's own work does not delay, so it cannot hide a loop-blocking bug).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator


@contextlib.contextmanager
def thread_lateness(period: float = 0.01) -> Iterator[Callable[[], float]]:
    """A thread sleeping ``period`` at a time; gives its worst lateness so far."""
    worst = [0.0]
    stop = threading.Event()

    def tick() -> None:
        while True:
            due = time.monotonic() + period
            if stop.wait(period):
                return
            worst[0] = max(worst[0], time.monotonic() - due)

    ticker = threading.Thread(target=tick, name="lateness", daemon=True)
    ticker.start()
    try:
        yield lambda: worst[0]
    finally:
        stop.set()
        ticker.join()


@contextlib.asynccontextmanager
async def loop_lateness(period: float) -> AsyncIterator[Callable[[], float]]:
    """A task on the running loop sleeping ``period`` at a time; gives its worst lateness."""
    loop = asyncio.get_running_loop()
    worst = [0.0]

    async def tick() -> None:
        while True:
            due = loop.time() + period
            await asyncio.sleep(period)
            worst[0] = max(worst[0], loop.time() - due)

    ticker = asyncio.create_task(tick())
    try:
        yield lambda: worst[0]
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
