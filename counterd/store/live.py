"""Today's totals in memory, so live-sum.json never waits for the database."""
from __future__ import annotations

import threading
from collections import Counter
from datetime import tzinfo

from counterd.store.store import Key, Store
from counterd.store.wallclock import day_of, real_range_of_days, to_wall


class LiveTotals:
    """Counts per (line, direction, class) since local midnight; a new local day starts at zero.
    Fed by committed batches from the bus (counterd/bus.py), never by the store itself."""

    def __init__(self, tz: tzinfo):
        self.tz = tz
        self._lock = threading.Lock()   # held only for dict updates: readers never wait on SQL
        self._day: int | None = None
        self._totals: Counter[Key] = Counter()

    def seed(self, day_wall: int, totals: dict[Key, int]) -> None:
        with self._lock:
            self._day, self._totals = day_wall, Counter(totals)

    def add(self, events) -> None:
        with self._lock:
            for e in events:
                day = day_of(to_wall(self.tz, e.timestamp))
                if self._day is None or day > self._day:
                    self._day, self._totals = day, Counter()
                if day == self._day:
                    self._totals[(e.line, e.direction, e.class_name)] += 1

    def today(self, now: float) -> tuple[int, dict[Key, int]]:
        """(local day as wall epoch, totals) as of `now`."""
        day = day_of(to_wall(self.tz, now))
        with self._lock:
            if self._day is None or day > self._day:
                self._day, self._totals = day, Counter()
            return day, dict(self._totals) if day == self._day else {}

    def clear(self) -> None:
        with self._lock:
            self._totals = Counter()

    def load(self, store: Store, now: float) -> None:
        """Start from what the store holds for today (blocking: run it off the event loop)."""
        today = day_of(to_wall(self.tz, now))
        start, end = real_range_of_days(self.tz, today, today)
        self.seed(today, store.counts_between_epochs(start, end))
