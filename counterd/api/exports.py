"""Heavy exports (a year at 15 min, every line and class) in bounded memory and bounded numbers.

An export longer than HEAVY_BINS bins is written in parts of EXPORT_CHUNK_DAYS days, each read
and rendered in its own thread and sent as it is made, so the daemon holds one part at a time
whatever the range. At most api.max_heavy_exports run at once (429 with Retry-After beyond), in
threads of their own, so they never queue in front of the flusher's writes in the store's pool.
After each part an export rests for the time that part took, times REST_PER_WORK, so one export
computes at most EXPORT_CORE_SHARE of the time and takes no more of the GIL's turns than that from
counting and from the event loop, whatever the client asks for. The share is sized against the
counting budget (issue 13: counting may lose under 20% of its frames under attack). Counting
competes with an export for the GIL, not for a core (bench/attack.py, pinned to an edge box's two
cores: the daemon's CPU rose from 110% to only 138% while counting lost 27-32% with exports
working half the time), so an export's GIL share comes nearly one for one off counting; 15% keeps
it inside the 20% budget with room for the event loop's own work of sending the parts. Each part
is rendered and encoded in the export thread, so the measured work is all of it. (Not a lower
nice value: a thread that is descheduled while it holds the GIL stalls the inference worker and
the loop with it; bench/attack.py measured -40% fps with it, -25% without.)
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from counterd.api.replies import refusal

log = logging.getLogger("counterd.api")

HEAVY_BINS = 3000            # about a month at 15 min: beyond this an export streams and needs a slot
EXPORT_CHUNK_DAYS = 7
RETRY_AFTER_S = 30
# The most of the time (of one core, and of the GIL's turns) one heavy export may compute; see above.
EXPORT_CORE_SHARE = 0.15
REST_PER_WORK = 1 / EXPORT_CORE_SHARE - 1      # seconds of rest after each second of work


class Exports:
    def __init__(self, limit: int):
        self.limit = limit
        self.running = 0
        self._pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="counterd-export")

    @contextlib.contextmanager
    def slot(self, what: str):
        """One of the heavy-export slots, or 429 when all are taken."""
        if self.running >= self.limit:
            raise refusal(429, f"{what}: {self.running} long exports are running already "
                               f"(api.max_heavy_exports); try again shortly or ask for fewer days",
                          {"Retry-After": str(RETRY_AFTER_S)})
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1

    async def run(self, fn, *args):
        """fn(*args) in an export thread; then rest, so the export keeps to EXPORT_CORE_SHARE."""
        started = time.monotonic()
        result = await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))
        await asyncio.sleep(self.rest_after(time.monotonic() - started))
        return result

    @staticmethod
    def rest_after(worked_s: float) -> float:
        """The rest that keeps a part that took worked_s to EXPORT_CORE_SHARE of the time."""
        return worked_s * REST_PER_WORK

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def chunks(days: list[int], size: int = EXPORT_CHUNK_DAYS) -> list[list[int]]:
    return [days[i:i + size] for i in range(0, len(days), size)]
