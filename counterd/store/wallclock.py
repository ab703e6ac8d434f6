"""Local wall-clock time as plain integers, so binning is arithmetic instead of tz calls per row.

A *wall epoch* is the local date and time read as if it were UTC: 2024-03-31 02:30 local is
calendar.timegm((2024, 3, 31, 2, 30, 0)). It is what the Axis exports call starttime and endtime.
Bins are wall-clock intervals: a 24h bin is a local calendar day (23 or 25 real hours on DST change
days); in the repeated hour of a fall-back day both real hours fall in the same wall-clock bins;
bins inside a spring-forward gap never receive anything and are left out.
"""
from __future__ import annotations

import bisect
import calendar
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

DAY = 86400
RESOLUTIONS = {"1m": 60, "15m": 900, "1h": 3600, "24h": DAY}


def offset_at(tz: tzinfo, epoch: float) -> int:
    """Seconds the zone is ahead of UTC at this instant."""
    return int(datetime.fromtimestamp(epoch, tz).utcoffset().total_seconds())


def to_wall(tz: tzinfo, epoch: float) -> float:
    return epoch + offset_at(tz, epoch)


def from_wall(tz: tzinfo, wall: int) -> int:
    """The first real instant showing this wall time; for a wall time inside a spring-forward gap,
    the instant the gap ends. So [from_wall(a), from_wall(b)) is exactly the wall times a..b."""
    naive = datetime(1970, 1, 1) + timedelta(seconds=wall)
    earlier = int(naive.replace(tzinfo=tz, fold=0).timestamp())   # fold=0: the earlier of repeats
    if to_wall(tz, earlier) == wall:
        return earlier
    lo, hi = sorted((earlier, int(naive.replace(tzinfo=tz, fold=1).timestamp())))
    while hi - lo > 1:          # wall time is increasing across a gap: find where it jumps past
        mid = (lo + hi) // 2
        if to_wall(tz, mid) >= wall:
            hi = mid
        else:
            lo = mid
    return hi


def day_of(wall: float) -> int:
    """Wall epoch of the start of the local day containing this wall time."""
    return int(wall // DAY * DAY)


def wall_of_date(d: date) -> int:
    return calendar.timegm(d.timetuple())



def format_wall(wall: float, fmt: str) -> str:
    return time.strftime(fmt, time.gmtime(wall))


@dataclass(frozen=True)
class Segment:
    """A stretch of real time [start, end) during which the zone's UTC offset is constant."""
    start: int
    end: int
    offset: int


def segments(tz: tzinfo, start: int, end: int) -> list[Segment]:
    """Constant-offset stretches covering [start, end), in order. Offset changes are probed hourly
    (zones never change twice within an hour) and pinned to the second by bisection."""
    out = []
    seg_start, seg_offset = start, offset_at(tz, start)
    probe = start
    while probe < end:
        step = min(probe + 3600, end)
        if offset_at(tz, step) == seg_offset:
            probe = step
            continue
        lo, hi = probe, step
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if offset_at(tz, mid) == seg_offset:
                lo = mid
            else:
                hi = mid
        out.append(Segment(seg_start, hi, seg_offset))
        seg_start, seg_offset, probe = hi, offset_at(tz, hi), hi
    if seg_start < end or not out:
        out.append(Segment(seg_start, end, seg_offset))
    return out


class WallMap:
    """Maps real epoch seconds within [start, end) to wall epochs quickly, for sorted or unsorted
    input, and tells whether UTC buckets of a given size map onto wall bins whole."""

    def __init__(self, tz: tzinfo, start: int, end: int):
        self.segments = segments(tz, start, end)
        self._starts = [s.start for s in self.segments]

    def wall(self, epoch: int) -> int:
        i = bisect.bisect_right(self._starts, epoch) - 1
        return epoch + self.segments[max(i, 0)].offset

    def aligned(self, bucket: int) -> bool:
        """True when every offset and change instant is a multiple of `bucket` seconds, so a UTC
        bucket never straddles a wall-clock bin of that size or larger multiple."""
        return all(s.offset % bucket == 0 and s.start % bucket == 0 for s in self.segments[1:]) and \
            self.segments[0].offset % bucket == 0

    def gaps(self) -> list[tuple[int, int]]:
        """Wall-time intervals [a, b) that never occur (spring-forward gaps)."""
        out = []
        for before, after in zip(self.segments, self.segments[1:]):
            if after.offset > before.offset:
                out.append((after.start + before.offset, after.start + after.offset))
        return out


def day_bins(day_wall: int, res: int, gaps: list[tuple[int, int]]) -> list[int]:
    """Wall starts of the bins of one local day, leaving out bins wholly inside a gap."""
    if not any(a < day_wall + DAY and b > day_wall for a, b in gaps):
        return list(range(day_wall, day_wall + DAY, res))
    out = []
    for start in range(day_wall, day_wall + DAY, res):
        if not any(a <= start and start + res <= b for a, b in gaps):
            out.append(start)
    return out


def real_range_of_days(tz: tzinfo, first_day_wall: int, last_day_wall: int) -> tuple[int, int]:
    """Real epoch interval covering the local days first..last inclusive."""
    return from_wall(tz, first_day_wall), from_wall(tz, last_day_wall + DAY)
