"""Ordered background writes: one FIFO lane per key group, several lanes in parallel.

The dispatcher must not wait for the database on every event (a connect has a
2-second limit), yet the writes of one call must stay in order (the end of the
call before its disposition). Jobs with the same key always go to the same
lane and run one after the other; different lanes run concurrently. The lanes
are tasks of the runner's TaskGroup; ``join()`` waits until every submitted job
ran (graceful stop, burst mode). A failing job is logged with its traceback and
the lane goes on: the job itself decides what a failure means (halting dialling
when the gate's stores are gone).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class WriteLanes:
    def __init__(self, lanes: int = 8) -> None:
        if lanes < 1:
            raise ValueError("lanes must be >= 1")
        self._queues: list[asyncio.Queue[tuple[Job, asyncio.Future[None]] | None]] = [
            asyncio.Queue() for _ in range(lanes)
        ]
        self.failures = 0
        self.pending = 0

    def _lane(self, key: str) -> asyncio.Queue[tuple[Job, asyncio.Future[None]] | None]:
        return self._queues[zlib.crc32(key.encode()) % len(self._queues)]

    def submit(self, key: str, job: Job) -> asyncio.Future[None]:
        """Queue ``job`` behind every earlier job of the same key; the future resolves after it
        ran (successfully or not: failures are logged, never raised to the submitter)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending += 1
        self._lane(key).put_nowait((job, fut))
        return fut

    async def after(self, key: str) -> None:
        """Wait until every job already queued for ``key`` has run."""

        async def nothing() -> None:
            return None

        await self.submit(key, nothing)

    def idle(self) -> bool:
        return self.pending == 0

    async def join(self) -> None:
        for q in self._queues:
            await q.join()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for i, q in enumerate(self._queues):
                tg.create_task(self._worker(q), name=f"dialer-writes-{i}")

    def close(self) -> None:
        """Stop the workers once their queues are empty."""
        for q in self._queues:
            q.put_nowait(None)

    async def _worker(self, q: asyncio.Queue[tuple[Job, asyncio.Future[None]] | None]) -> None:
        while True:
            item = await q.get()
            try:
                if item is None:
                    return
                job, fut = item
                try:
                    await job()
                except Exception:
                    self.failures += 1
                    logger.exception("dialer: a background write failed")
                self.pending -= 1
                if not fut.done():
                    fut.set_result(None)
            finally:
                q.task_done()
