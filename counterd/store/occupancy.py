"""Naive occupancy: in - out across one line since the last reset, never below zero.

Resets are the daily one at a local time (config occupancy.reset_time) and manual ones
(occupancy-reset&occ=N, stored). Occupancy is replayed from the crossing events after the latest
reset, applying the floor event by event (an 'out' at zero stays at zero), so it is exact and
needs no state beyond the database.

Average visit time is estimated with Little's law: the time-integral of occupancy over a window
(person-seconds present) divided by the number of people who came in during it, in whole seconds.
It is exact when everyone who entered in the window also left in it, and otherwise biased by the
people present at its edges; 0 when nobody came in.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from counterd.store.store import Store
from counterd.store.wallclock import DAY, day_of, from_wall, to_wall


@dataclass(frozen=True)
class Steps:
    """Occupancy as a step function: value `values[i]` from `times[i]` until the next time."""
    times: list[float]
    values: list[int]
    ins: list[float]        # times of 'in' crossings, for visit-time estimates

    def before(self, t: float) -> int:
        """The value just before t (changes at exactly t not yet applied)."""
        return self.values[max(bisect.bisect_left(self.times, t) - 1, 0)]

    def person_seconds(self, start: float, end: float) -> float:
        total = 0.0
        i = max(bisect.bisect_right(self.times, start) - 1, 0)
        while i < len(self.times) and self.times[i] < end:
            seg_start = max(self.times[i], start)
            seg_end = min(self.times[i + 1], end) if i + 1 < len(self.times) else end
            total += self.values[i] * max(0.0, seg_end - seg_start)
            i += 1
        return total

    def ins_between(self, start: float, end: float) -> int:
        return bisect.bisect_left(self.ins, end) - bisect.bisect_left(self.ins, start)

    def average_visit(self, start: float, end: float) -> int:
        ins = self.ins_between(start, end)
        return round(self.person_seconds(start, end) / ins) if ins else 0


def reset_offset(hhmm: str) -> int:
    """occupancy.reset_time "HH:MM" as seconds after local midnight."""
    hours, minutes = hhmm.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def scheduled_reset_before(store: Store, t: float, reset_offset: int) -> float:
    """The latest daily reset instant at or before t (reset_offset: seconds after local midnight)."""
    wall = to_wall(store.tz, t)
    candidate = day_of(wall) + reset_offset
    if candidate > wall:
        candidate -= DAY
    return from_wall(store.tz, candidate)


def replay(store: Store, start: float, end: float, line: str, class_name: str,
           reset_offset: int) -> Steps:
    """Occupancy from the last reset at or before `start` up to `end`."""
    anchor, value = scheduled_reset_before(store, start, reset_offset), 0
    manual = store.last_occupancy_reset(start)
    if manual is not None and manual[0] >= anchor:
        anchor, value = manual
    changes: list[tuple[float, int, str, int]] = []    # (time, order, kind, value)
    day = day_of(to_wall(store.tz, anchor))
    while day <= day_of(to_wall(store.tz, end)):
        t = from_wall(store.tz, day + reset_offset)
        if anchor < t < end:
            changes.append((t, 0, "reset", 0))
        day += DAY
    changes += [(ts, 0, "reset", v) for ts, v in store.occupancy_resets_between(anchor, end) if ts > anchor]
    events = store.events_between(anchor, end, line, class_name)
    changes += [(ts, 1, direction, 0) for ts, _, direction, _, _ in events]
    changes.sort()
    times, values, ins = [anchor], [value], []
    for ts, _, kind, v in changes:
        if kind == "reset":
            value = v
        elif kind == "in":
            value += 1
            ins.append(ts)
        else:
            value = max(0, value - 1)
        times.append(ts)
        values.append(value)
    return Steps(times, values, ins)
