"""The bus of committed batches: what the store has durably recorded, handed to whoever follows it.

    flusher -> alert rules -> Store.write(events, alerts, coverage)   one transaction
            -> bus.publish(CommittedBatch)  -> live totals | metrics | webhook | console | MQTT

Only batches the store committed are published, so a follower never shows a crossing that is not
stored (a write that failed is retried, and published once it goes through). Everything runs on
the daemon's event loop: publish() is called there, and followers are called there, in the order
they subscribed.

Subscribing, two ways:

- a callback, for quick in-memory work (a counter, a dict update) that must not block:

      unsubscribe = bus.subscribe(lambda batch: totals.add(batch.events))
      ...
      unsubscribe()

  A callback that raises is logged and the others still get the batch.

- a queue, for a coroutine that does I/O per batch (an HTTP POST, an MQTT publish, an SSE
  stream to a browser). It holds at most `maxsize` batches; when its reader falls behind, the
  oldest waiting batch is dropped and counted in `dropped`, so a slow follower never holds up
  ingest or grows memory:

      async with bus.follow(maxsize=100) as batches:
          async for batch in batches:
              await send(batch)

Get the bus from the daemon (`app[DAEMON].bus`) or from the API's site (`app[SITE].bus`): it is
the same object. A CommittedBatch is immutable; followers must not change its lists.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:       # the bus itself needs neither numpy nor SQLite
    from counterd.count import CrossingEvent
    from counterd.store.alerts import Alert

log = logging.getLogger("counterd.bus")


@dataclass(frozen=True)
class CommittedBatch:
    """One flush the store committed: crossing events, the alerts they raised, and the spans of
    wall time (epoch seconds, start < end) that were analysed."""
    events: tuple[CrossingEvent, ...] = ()
    alerts: tuple[Alert, ...] = ()
    coverage: tuple[tuple[float, float], ...] = ()

    @property
    def coverage_seconds(self) -> float:
        return sum(end - start for start, end in self.coverage)


Follower = Callable[[CommittedBatch], None]


@dataclass
class Subscription:
    """A bounded queue of batches for one coroutine; iterate it with `async for`."""
    queue: asyncio.Queue
    dropped: int = 0

    def put(self, batch: CommittedBatch) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
            log.warning("a bus follower is behind: dropped its oldest batch (%d so far)", self.dropped)
        self.queue.put_nowait(batch)

    def __aiter__(self) -> AsyncIterator[CommittedBatch]:
        return self

    async def __anext__(self) -> CommittedBatch:
        return await self.queue.get()


@dataclass
class BatchBus:
    _followers: list[Follower] = field(default_factory=list)

    def subscribe(self, follower: Follower) -> Callable[[], None]:
        """Call `follower(batch)` for every committed batch from now on; returns unsubscribe."""
        self._followers.append(follower)
        return lambda: self._followers.remove(follower) if follower in self._followers else None

    @contextlib.asynccontextmanager
    async def follow(self, maxsize: int = 100) -> AsyncIterator[Subscription]:
        """A Subscription receiving every batch committed while the context is open."""
        subscription = Subscription(asyncio.Queue(maxsize))
        unsubscribe = self.subscribe(subscription.put)
        try:
            yield subscription
        finally:
            unsubscribe()

    def publish(self, batch: CommittedBatch) -> None:
        """Hand a committed batch to every follower (on the event loop)."""
        for follower in list(self._followers):
            try:
                follower(batch)
            except Exception:       # one follower's bug must not starve the others: the batch is stored
                log.exception("a follower of committed batches failed")
