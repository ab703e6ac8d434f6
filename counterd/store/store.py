"""The counts store: crossing events, 1-minute bins per (line, direction, class), per-minute
coverage, alerts and persisted parameters in one SQLite file (WAL).

Methods block; the daemon calls them from worker threads and the API through AsyncStore. Every
write is its own committed transaction, so a SIGKILL loses nothing already returned from
add_events/add_coverage. One connection writes, another reads, so a long export never holds up
ingest (WAL lets a reader and a writer run together).
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path

from counterd.errors import UserError
from counterd.store.alerts import Alert, AlertRules
from counterd.store.live import Key, LiveTotals
from counterd.store.schema import migrate
from counterd.store.wallclock import DAY, WallMap, day_bins, day_of, real_range_of_days, to_wall

log = logging.getLogger("counterd.store")

PRUNE_EVERY_S = DAY


@dataclass
class DayBins:
    """One local day at one resolution: its bins (wall starts), counts and coverage per bin."""
    day: int                                            # wall epoch of local midnight
    starts: list[int]
    counts: dict[tuple[int, str, str, str], int] = field(default_factory=dict)  # (start, line, dir, class)
    coverage: dict[int, float] = field(default_factory=dict)                    # start -> seconds

    def count(self, start: int, line: str, direction: str, class_name: str) -> int:
        return self.counts.get((start, line, direction, class_name), 0)


class Store:
    def __init__(self, path: str | Path, tz: tzinfo, retention_days: int = 400, *,
                 alert_rules: AlertRules | None = None, clock=time.time):
        self.path = str(path)
        self.tz = tz
        self.retention_days = retention_days
        self.alert_rules = alert_rules or AlertRules()
        self.alert_listeners: list = []      # called with each batch of new alerts, after commit
        self.counting_enabled = True         # Counter.Enabled: when off, nothing is recorded
        self.clock = clock
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._write = self._connect()
            migrate(self._write)
            self._read = self._connect() if self.path != ":memory:" else self._write
        except (OSError, sqlite3.Error) as exc:
            raise UserError(f"cannot open the counts database {self.path}: {exc} "
                            f"(check store.path / daemon.state_dir and their permissions)") from None
        self._write_lock = threading.RLock()
        self._read_lock = self._write_lock if self._read is self._write else threading.RLock()
        self.live = LiveTotals(tz)
        self._days: set[int] = set()        # local days with data; replaced whole, never mutated
        self._last_prune = 0.0
        self._seed()
        self.prune_if_due()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")   # durable against process death, cheap commits
        return conn

    def _seed(self) -> None:
        now = self.clock()
        today = day_of(to_wall(self.tz, now))
        start, end = real_range_of_days(self.tz, today, today)
        self.live.seed(today, self._counts_between_epochs(start, end))
        self._days = self._scan_days()

    # ---- writes -------------------------------------------------------------------------------

    def add_events(self, events) -> list[Alert]:
        """Record crossing events (anything with timestamp, line, direction, class_name,
        track_id); returns the alerts they raised."""
        if not events or not self.counting_enabled:
            return []
        bins: dict[tuple[str, str, int, str], int] = defaultdict(int)
        for e in events:
            bins[(e.line, e.class_name, int(e.timestamp // 60), e.direction)] += 1
        alerts = self.alert_rules.check(events)
        with self._write_lock, self._write:
            self._write.execute("BEGIN IMMEDIATE")
            self._write.executemany(
                "INSERT INTO events (ts, line, direction, class_name, track_id) VALUES (?, ?, ?, ?, ?)",
                [(e.timestamp, e.line, e.direction, e.class_name, e.track_id) for e in events])
            self._write.executemany(
                "INSERT INTO counts (line, class_name, minute, direction, n) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT DO UPDATE SET n = n + excluded.n",
                [(*k, n) for k, n in bins.items()])
            self._write.executemany(
                "INSERT INTO counts_q (line, class_name, quarter, direction, n) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT DO UPDATE SET n = n + excluded.n",
                [(line, cls, minute // 15, d, n) for (line, cls, minute, d), n in bins.items()])
            self._write.executemany(
                "INSERT INTO alerts (ts, line, kind, class_name, track_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
                [(a.ts, a.line, a.kind, a.class_name, a.track_id, a.detail) for a in alerts])
        self.live.add(events)
        self._note_days({day_of(to_wall(self.tz, e.timestamp)) for e in events})
        for alert in alerts:
            log.warning("alert %s on line %r: %s", alert.kind, alert.line, alert.detail)
        for listener in self.alert_listeners if alerts else ():
            try:
                listener(alerts)
            except Exception:       # a listener's bug must not fail ingest: the alerts are stored
                log.exception("alert listener failed")
        self.prune_if_due()
        return alerts

    def add_coverage(self, start_epoch: float, end_epoch: float) -> None:
        """Record that video from start to end was analysed, split across minute bins (a minute
        never exceeds 60 s, so overlapping reports cannot inflate it)."""
        if end_epoch <= start_epoch or not self.counting_enabled:
            return
        rows = []
        t = start_epoch
        while t < end_epoch:
            minute = int(t // 60)
            upto = min(end_epoch, (minute + 1) * 60)
            rows.append((minute, upto - t))
            t = upto
        with self._write_lock, self._write:
            self._write.execute("BEGIN IMMEDIATE")
            self._write.executemany(
                "INSERT INTO coverage (minute, seconds) VALUES (?, ?) "
                "ON CONFLICT DO UPDATE SET seconds = min(60.0, seconds + excluded.seconds)", rows)
            # Quarters are re-summed from their minutes, since a minute's clamp may have eaten some.
            self._write.executemany(
                "INSERT OR REPLACE INTO coverage_q (quarter, seconds) SELECT ?, SUM(seconds) FROM coverage "
                "WHERE minute >= ? AND minute < ?",
                [(q, q * 15, q * 15 + 15) for q in sorted({m // 15 for m, _ in rows})])
        self._note_days({day_of(to_wall(self.tz, m * 60)) for m, _ in rows})
        self.prune_if_due()

    def _note_days(self, days: set[int]) -> None:
        # Copy-on-write, so a reader in another thread always sorts a set nobody is changing;
        # writers take the write lock so none of them loses another's days.
        with self._write_lock:
            if not days <= self._days:
                self._days = self._days | days

    def clear_data(self) -> None:
        """Axis clear-data: every count, event, coverage and occupancy reset goes; alerts and
        parameters stay."""
        with self._write_lock:   # held until _days is set, so a concurrent writer's days survive
            with self._write:
                self._write.execute("BEGIN IMMEDIATE")
                for table in ("events", "counts", "coverage", "counts_q", "coverage_q", "occupancy_resets"):
                    self._write.execute(f"DELETE FROM {table}")
            self.live.clear()
            self._days = set()

    def prune_if_due(self) -> None:
        now = self.clock()
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            self.prune(now)

    def prune(self, now: float) -> None:
        cutoff = now - self.retention_days * DAY
        with self._write_lock:   # held until _days is set, so a concurrent writer's days survive
            with self._write:
                self._write.execute("BEGIN IMMEDIATE")
                for table, column, value in (("events", "ts", cutoff), ("alerts", "ts", cutoff),
                                             ("occupancy_resets", "ts", cutoff),
                                             ("counts", "minute", cutoff // 60),
                                             ("coverage", "minute", cutoff // 60),
                                             ("counts_q", "quarter", cutoff // 900),
                                             ("coverage_q", "quarter", cutoff // 900)):
                    self._write.execute(f"DELETE FROM {table} WHERE {column} < ?", (value,))
            self._days = self._scan_days()

    def set_params(self, values: dict[str, str]) -> None:
        with self._write_lock, self._write:
            self._write.execute("BEGIN IMMEDIATE")
            self._write.executemany("INSERT OR REPLACE INTO params (name, value) VALUES (?, ?)",
                                    list(values.items()))

    def add_occupancy_reset(self, ts: float, value: int) -> None:
        with self._write_lock, self._write:
            self._write.execute("INSERT INTO occupancy_resets (ts, value) VALUES (?, ?)", (ts, value))

    def close(self) -> None:
        with self._write_lock:
            if self._read is not self._write:
                with self._read_lock:
                    self._read.close()
            self._write.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._write.close()

    # ---- reads --------------------------------------------------------------------------------

    def _query(self, sql: str, args=()) -> list[tuple]:
        with self._read_lock:
            return self._read.execute(sql, args).fetchall()

    def counts_between(self, start: datetime, end: datetime) -> dict[Key, int]:
        """Counts per (line, direction, class) in the minutes starting in [start, end)."""
        return self._counts_between_epochs(_epoch(start), _epoch(end))

    def _counts_between_epochs(self, start: float, end: float) -> dict[Key, int]:
        rows = self._query(
            "SELECT line, direction, class_name, SUM(n) FROM counts WHERE minute >= ? AND minute < ? "
            "GROUP BY line, direction, class_name", (_minute_ceil(start), _minute_ceil(end)))
        return {(line, d, c): n for line, d, c, n in rows}

    def coverage_between(self, start: datetime, end: datetime) -> float:
        """Seconds of analysed video in the minutes starting in [start, end)."""
        rows = self._query("SELECT SUM(seconds) FROM coverage WHERE minute >= ? AND minute < ?",
                           (_minute_ceil(_epoch(start)), _minute_ceil(_epoch(end))))
        return float(rows[0][0] or 0.0)

    def days_with_data(self) -> list[int]:
        """Local days (wall epochs of midnight) with any count or analysed video, in order."""
        return sorted(self._days)

    def _scan_days(self) -> set[int]:
        rows = self._query("SELECT quarter FROM coverage_q UNION SELECT DISTINCT quarter FROM counts_q")
        if not rows:
            return set()
        quarters = sorted(r[0] * 900 for r in rows)
        wall = WallMap(self.tz, quarters[0], quarters[-1] + 900)
        return {day_of(wall.wall(q)) for q in quarters}

    def binned(self, days: list[int], res: int, line: str | None = None,
               class_name: str | None = None) -> list[DayBins]:
        """Counts and coverage of the given local days in wall-clock bins of `res` seconds,
        optionally for one line and/or class."""
        out = []
        for first, last in _runs(sorted(set(days))):
            out += self._binned_run(first, last, res, line, class_name)
        return out

    def _binned_run(self, first: int, last: int, res: int, line, class_name) -> list[DayBins]:
        start, end = real_range_of_days(self.tz, first, last)
        wall = WallMap(self.tz, start, end)
        # Sum in SQL by UTC buckets that fall whole into one wall bin: quarters in every real zone
        # today; single minutes where an odd historical offset would split them.
        bucket = 15 if res >= 900 and wall.aligned(900) else 1
        counts_table, coverage_table, unit = ("counts_q", "coverage_q", "quarter") if bucket == 15 else \
            ("counts", "coverage", "minute")
        step = bucket * 60
        span = [start // step, (end + step - 1) // step]
        filters, values = _line_and_class(line, class_name)
        counts_rows = self._query(
            f"SELECT {unit}, line, direction, class_name, n FROM {counts_table} "
            f"WHERE {unit} >= ? AND {unit} < ?{filters}", span + values)
        coverage_rows = self._query(
            f"SELECT {unit}, seconds FROM {coverage_table} WHERE {unit} >= ? AND {unit} < ?", span)
        gaps = wall.gaps()
        days = {d: DayBins(d, day_bins(d, res, gaps)) for d in range(first, last + DAY, DAY)}
        placed: dict[int, tuple[DayBins | None, int]] = {}     # bucket -> (its day, its bin start)

        def place(b: int) -> tuple[DayBins | None, int]:
            if b not in placed:
                w = wall.wall(b * step)
                placed[b] = (days.get(day_of(w)), w // res * res)
            return placed[b]

        for b, ln, direction, cls, n in counts_rows:
            day, bin_start = place(b)
            if day is not None:
                key = (bin_start, ln, direction, cls)
                day.counts[key] = day.counts.get(key, 0) + n
        for b, seconds in coverage_rows:
            day, bin_start = place(b)
            if day is not None:
                day.coverage[bin_start] = day.coverage.get(bin_start, 0.0) + seconds
        return list(days.values())

    def events_between(self, start: float, end: float, line: str | None = None,
                       class_name: str | None = None, limit: int | None = None) -> list[tuple]:
        """(ts, line, direction, class_name, track_id) in [start, end), oldest first."""
        filters, values = _line_and_class(line, class_name)
        sql = f"SELECT ts, line, direction, class_name, track_id FROM events WHERE ts >= ? AND ts < ?{filters}"
        args = [start, end, *values]
        if limit is not None:   # the newest `limit`, still returned oldest first
            return list(reversed(self._query(sql + " ORDER BY ts DESC LIMIT ?", (*args, limit))))
        return self._query(sql + " ORDER BY ts", args)

    def alerts_between(self, start: float, end: float, limit: int) -> list[Alert]:
        rows = self._query("SELECT ts, line, kind, class_name, track_id, detail FROM alerts "
                           "WHERE ts >= ? AND ts < ? ORDER BY ts DESC, id DESC LIMIT ?",
                           (start, end, limit))
        return [Alert(*row) for row in reversed(rows)]

    def get_params(self) -> dict[str, str]:
        return dict(self._query("SELECT name, value FROM params"))

    def last_occupancy_reset(self, before: float) -> tuple[float, int] | None:
        rows = self._query("SELECT ts, value FROM occupancy_resets WHERE ts <= ? "
                           "ORDER BY ts DESC LIMIT 1", (before,))
        return (rows[0][0], rows[0][1]) if rows else None

    def occupancy_resets_between(self, start: float, end: float) -> list[tuple[float, int]]:
        return self._query("SELECT ts, value FROM occupancy_resets WHERE ts >= ? AND ts < ? ORDER BY ts",
                           (start, end))


def _line_and_class(line: str | None, class_name: str | None) -> tuple[str, list[str]]:
    """SQL conditions (and their values) for an optional line and class."""
    filters, values = "", []
    if line is not None:
        filters, values = filters + " AND line = ?", values + [line]
    if class_name is not None:
        filters, values = filters + " AND class_name = ?", values + [class_name]
    return filters, values


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:   # a naive time would silently mean the box's zone, not camera.timezone
        raise ValueError(f"store queries take aware datetimes, got naive {moment.isoformat()}")
    return moment.timestamp()


def _minute_ceil(epoch: float) -> int:
    return -int(-epoch // 60)


def _runs(days: list[int]) -> list[tuple[int, int]]:
    """Consecutive days grouped into (first, last) runs, so each run is one range query."""
    runs: list[tuple[int, int]] = []
    for d in days:
        if runs and d == runs[-1][1] + DAY:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs
