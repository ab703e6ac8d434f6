"""The store for asyncio code: every database call runs in a worker thread, off the event loop."""
from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

from counterd.store.store import Store


class AsyncStore:
    """Wraps a Store. `await astore.run(fn, *args)` runs any blocking call (a Store method or a
    function taking the store) in the worker pool; in-memory reads (live totals) stay direct."""

    def __init__(self, store: Store, workers: int = 2):
        self.store = store
        # Two workers: an export can read while a write (reset, setparams) goes through.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="counterd-store")

    async def run(self, fn, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def add_events(self, events):
        return await self.run(self.store.add_events, events)

    async def add_coverage(self, start_epoch: float, end_epoch: float) -> None:
        await self.run(self.store.add_coverage, start_epoch, end_epoch)


    def shutdown(self) -> None:
        """Wait for queued calls; the Store itself is closed by whoever opened it."""
        self._pool.shutdown(wait=True)
