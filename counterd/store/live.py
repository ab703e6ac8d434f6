"""Today's totals in memory, so live-sum.json never waits for the database."""
from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from datetime import tzinfo

from counterd.store.store import Key, Store
from counterd.store.wallclock import DAY, day_of, real_range_of_days, to_wall


KEEP_DAYS = 4     # local days kept in memory, the most recently used ones


class LiveTotals:
    """Counts per (line, direction, class) per local day, for the few most recently used days, so
    a clock that steps back across midnight finds yesterday's totals and keeps counting into
    them; a new day starts at zero. Fed by committed batches from the bus (counterd/bus.py),
    never by the store itself."""

    def __init__(self, tz: tzinfo):
        self.tz = tz
        self._lock = threading.Lock()   # held only for dict updates: readers never wait on SQL
        self._days: OrderedDict[int, Counter[Key]] = OrderedDict()     # least recently used first

    def seed(self, day_wall: int, totals: dict[Key, int]) -> None:
        with self._lock:
            self._days[day_wall] = Counter(totals)
            self._touch(day_wall)

    def add(self, events) -> None:
        with self._lock:
            for e in events:
                day = day_of(to_wall(self.tz, e.timestamp))
                if day not in self._days:
                    self._days[day] = Counter()
                self._days[day][(e.line, e.direction, e.class_name)] += 1
                self._touch(day)

    def today(self, now: float) -> tuple[int, dict[Key, int]]:
        """(local day as wall epoch, totals) as of `now`."""
        day = day_of(to_wall(self.tz, now))
        with self._lock:
            if day not in self._days:
                self._days[day] = Counter()
            self._touch(day)
            return day, dict(self._days[day])

    def clear(self) -> None:
        with self._lock:
            self._days.clear()

    def load(self, store: Store, now: float) -> None:
        """Start from what the store holds for today and yesterday (blocking: run it off the
        event loop)."""
        today = day_of(to_wall(self.tz, now))
        for day in (today - DAY, today):
            start, end = real_range_of_days(self.tz, day, day)
            self.seed(day, store.counts_between_epochs(start, end))

    def _touch(self, day: int) -> None:
        self._days.move_to_end(day)
        while len(self._days) > KEEP_DAYS:
            self._days.popitem(last=False)
