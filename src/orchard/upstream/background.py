"""Deferred background work of a process (see ``finish.py``).

Jobs run one at a time (``limit``), and only when the process is idle: no
upstream transfer and no new request (``note_request``) for ``quiet``
seconds, and the process using less than ``IDLE_CPU`` of a core. They would
otherwise take CPU, the GIL (a job's Python code holds it for up to the
interpreter's switch interval while a request waits) and the database's
write turn from the requests clients are waiting for, even light ones such
as a ``pip install`` served from the cache. A job waits at most
``max_defer`` seconds for that. A failure is logged, never raised.
``drain`` runs everything still queued at once and waits for it, with a
limit; what is left then is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("orchard.upstream")

QUIET = 0.5  # seconds without an upstream transfer or a request before deferred work runs
MAX_DEFER = 30.0  # seconds a job waits for quiet at most
IDLE_CPU = 0.15  # share of one core under which the process counts as idle
IDLE_WINDOW = 0.1  # seconds over which that is measured


class Background:
    def __init__(self, limit: int = 1, quiet: float = QUIET, max_defer: float = MAX_DEFER):
        self._limit = limit
        self._quiet = quiet
        self._max_defer = max_defer
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy = 0
        self._last_busy = 0.0
        self._draining = False

    def __len__(self) -> int:
        return len(self._tasks)

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Mark an upstream transfer in flight: deferred work waits."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
            self._last_busy = time.monotonic()

    def note_request(self) -> None:
        """A request arrived: deferred work waits for ``quiet`` seconds more."""
        self._last_busy = time.monotonic()

    async def _until_quiet(self, deadline: float) -> None:
        while not self._draining:
            now = time.monotonic()
            if now >= deadline:
                return
            wait = self._quiet if self._busy else self._last_busy + self._quiet - now
            if wait > 0:
                await asyncio.sleep(min(wait, deadline - now))
                continue
            cpu = time.process_time()
            await asyncio.sleep(IDLE_WINDOW)
            if time.process_time() - cpu < IDLE_CPU * IDLE_WINDOW and not self._busy:
                return

    def spawn(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` when it is quiet and a slot is free."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._limit)
        slots = self._slots
        deadline = time.monotonic() + self._max_defer

        async def run() -> None:
            async with slots:  # only the jobs holding a slot watch for quiet
                await self._until_quiet(deadline)
                try:
                    await work()
                except Exception:
                    log.exception("background work failed: %s", name)

        task = asyncio.create_task(run(), name=f"background:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, seconds: float) -> None:
        """Run what is queued now and wait for every job (also those started
        meanwhile), ``seconds`` at most in all; cancel the rest."""
        self._draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self._tasks:
            left = deadline - loop.time()
            if left <= 0:
                break
            await asyncio.wait(set(self._tasks), timeout=left)
        if self._tasks:
            log.warning("cancelling %d unfinished background jobs", len(self._tasks))
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
