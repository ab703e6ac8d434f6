"""The flusher: moves what the inference worker recorded into the store, then tells the bus.

    recorder.drain() -> alert rules -> Store.write(events, alerts, coverage) -> bus.publish(batch)

One transaction per flush: the events, the alerts they raised and the analysed time are stored
together or not at all. A batch the store refuses (disk full) is given back to the recorder and
goes out first next time; nothing of it was published, so no follower counted it.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from counterd.bus import BatchBus, CommittedBatch
from counterd.daemon.worker import Recorder
from counterd.store import AlertRules, AsyncStore

log = logging.getLogger("counterd.daemon")


class Flusher:
    def __init__(self, recorder: Recorder, astore: AsyncStore, rules: AlertRules, bus: BatchBus,
                 store_path: Path | str):
        self.recorder = recorder
        self.astore = astore
        self.rules = rules
        self.bus = bus
        self.store_path = store_path
        self._lock = asyncio.Lock()     # the periodic flush and the last one at shutdown never overlap
        self.write_error = ""           # why the last write failed; "" once one is stored (health)

    async def flush(self) -> CommittedBatch | None:
        """Store and publish what was recorded since the last flush; None if nothing was, or the
        store refused it (it is kept for the next flush)."""
        async with self._lock:
            events, coverage = self.recorder.drain()
            if not events and not coverage:
                return None
            checked = self.rules.check(events)
            try:
                await self.astore.run(self.astore.store.write, events, checked.alerts, coverage)
            except Exception as exc:
                log.error("writing counts to %s failed, will retry: %s", self.store_path, exc)
                self.write_error = str(exc) or type(exc).__name__
                self.recorder.give_back(events, coverage)
                return None
            self.write_error = ""
            self.rules.stored(checked)
            for alert in checked.alerts:
                log.warning("alert %s on line %r: %s", alert.kind, alert.line, alert.detail)
            batch = CommittedBatch(tuple(events), tuple(checked.alerts), tuple(coverage))
            self.bus.publish(batch)
            return batch
