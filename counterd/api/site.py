"""What every API handler shares, kept on the application under SITE."""
from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Callable

from aiohttp import web

from counterd.api.auth import Authenticator
from counterd.api.exports import Exports
from counterd.api.params import Settings
from counterd.bus import BatchBus
from counterd.confighub import ConfigHub
from counterd.store import AsyncStore, DayBins, LiveTotals, Store
from counterd.store.wallclock import format_wall, to_wall

PERSON = "person"       # the Axis formats carry people only (spec section 5)


@dataclass
class Site:
    hub: ConfigHub                             # the effective config, and the one way to change it
    auth: Authenticator
    store_provider: Callable[[], AsyncStore]   # the store exists only once the app has started
    log_path: str
    clock: Callable[[], float] = time.time
    serial: str = ""
    bus: BatchBus | None = None                # committed batches (counterd/bus.py)
    live: LiveTotals | None = None             # today's totals, fed by the bus once the store is open
    exports: Exports | None = None             # slots and threads for heavy exports

    @property
    def astore(self) -> AsyncStore:
        """For blocking store calls: `await site.astore.run(...)`, in its worker threads."""
        return self.store_provider()

    @property
    def store(self) -> Store:
        """For what never touches SQLite (live totals, days with data) and for code already
        running in a worker thread."""
        return self.store_provider().store

    @property
    def settings(self) -> Settings:
        """The setparams parameters (parse, params.json)."""
        return self.hub.overlay

    @property
    def config(self):
        return self.hub.effective

    @property
    def name(self) -> str:
        return self.config.camera.name

    @property
    def line(self) -> str:
        """The primary line's name, whose person counts the Axis formats report."""
        line = self.config.primary_line
        return line.name if line else ""

    def timestamp(self, now: float) -> str:
        return format_wall(to_wall(self.store.tz, now), "%Y%m%d%H%M%S")


SITE = web.AppKey("site", Site)


def started_bins(days: list[DayBins], tz: tzinfo, now: float) -> list[DayBins]:
    """Only the bins that have begun by `now`, for every export alike (csv, json, xml,
    occupancy, detail, /api/v1/counts): today's stop at the bin in progress, holding its counts
    so far, as a device's do; a bin that has not started is not reported as a zero. A day with no
    started bin (only after the clock stepped back) is left out."""
    now_wall = to_wall(tz, now)
    out = []
    for day in days:
        if day.starts and day.starts[-1] > now_wall:
            day = dataclasses.replace(day, starts=[s for s in day.starts if s <= now_wall])
        if day.starts:
            out.append(day)
    return out


def serial_number(configured: str, machine_id_path: str = "/etc/machine-id") -> str:
    """camera.serial, else 12 upper-case hex digits derived from the machine id (stable per box)."""
    if configured:
        return configured
    try:
        seed = Path(machine_id_path).read_text().strip()
    except OSError:
        seed = ""
    return hashlib.sha256(("counterd:" + seed).encode()).hexdigest()[:12].upper()
