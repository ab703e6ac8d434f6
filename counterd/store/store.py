"""The counts store: crossing events, 1-minute bins per (line, direction, class), per-minute
coverage, alerts and persisted parameters in one SQLite file (WAL).

Methods block; the daemon calls them from worker threads and the API through AsyncStore. Every
write is its own committed transaction, so a SIGKILL loses nothing already returned from
write(). One connection writes, another reads, so a long export never holds up
ingest (WAL lets a reader and a writer run together).
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path

from counterd.errors import RuntimeFailure, UserError
from counterd.store.alerts import Alert
from counterd.store.schema import check_version, migrate
from counterd.store.wallclock import DAY, WallMap, day_bins, day_of, real_range_of_days, to_wall

log = logging.getLogger("counterd.store")

Key = tuple[str, str, str]      # (line, direction, class_name)


@dataclass(frozen=True)
class Pruned:
    """What a retention prune did: rows deleted per table, or refused (and why)."""
    cutoff: float                       # epoch: older rows go
    deleted: dict[str, int]
    doomed: int                         # rows of history older than the cutoff
    history: int                        # rows of history in all
    refused: bool = False


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
    """SQL only: schema, writes and reads. No rules, listeners or timers: alerts are evaluated by
    the flusher before the write, committed batches are published by it (counterd/bus.py), and
    pruning and WAL checkpoints are scheduled jobs (counterd/daemon/jobs.py).

    `read_only=True` (CLI readers: `report build/status`) opens the file as it is: no directory
    is made, no schema migrated, and any write fails."""

    def __init__(self, path: str | Path, tz: tzinfo, *, read_only: bool = False):
        self.path = str(path)
        self.tz = tz
        self.read_only = read_only
        try:
            if read_only:
                self._write = self._connect_read_only()
                check_version(self._write)
            else:
                if self.path != ":memory:":
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._write = self._connect()
                migrate(self._write)
            self._read = self._connect() if self.path != ":memory:" and not read_only else self._write
        except (OSError, sqlite3.Error) as exc:
            # Locked (another process), busy or an I/O error pass; a path that cannot be made does not.
            passing = isinstance(exc, sqlite3.OperationalError) and any(
                word in str(exc) for word in ("locked", "busy", "I/O", "disk"))
            raise (RuntimeFailure if passing else UserError)(
                f"cannot open the counts database {self.path}: {exc} "
                f"(check store.path / daemon.state_dir and their permissions)") from None
        self._write_lock = threading.RLock()
        self._read_lock = self._write_lock if self._read is self._write else threading.RLock()
        self._days: set[int] = self._scan_days()   # local days with data; replaced whole, never mutated

    @classmethod
    def open(cls, path: str | Path, tz: tzinfo, *, read_only: bool = False) -> Store:
        return cls(path, tz, read_only=read_only)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")   # durable against process death, cheap commits
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        if not Path(self.path).is_file():
            raise OSError("no such file (a read-only reader never creates it)")
        uri = f"{Path(self.path).resolve().as_uri()}?mode=ro"
        return sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=10)

    # ---- writes -------------------------------------------------------------------------------

    def write(self, events=(), alerts: Sequence[Alert] = (),
              coverage: Sequence[tuple[float, float]] = ()) -> None:
        """Record crossing events (anything with timestamp, line, direction, class_name,
        track_id), the alerts they raised and analysed time spans, in one transaction: all of it
        is stored, or none. Coverage is split across minute bins (a minute never exceeds 60 s,
        so overlapping reports cannot inflate it)."""
        bins: dict[tuple[str, str, int, str], int] = defaultdict(int)
        for e in events:
            bins[(e.line, e.class_name, int(e.timestamp // 60), e.direction)] += 1
        minutes = _coverage_rows(coverage)
        if not bins and not minutes and not alerts:
            return
        with self._write_lock:
            with self._write:
                self._write.execute("BEGIN IMMEDIATE")
                self._insert_events(events, bins)
                self._insert_coverage(minutes)
                self._write.executemany(
                    "INSERT INTO alerts (ts, line, kind, class_name, track_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
                    [(a.ts, a.line, a.kind, a.class_name, a.track_id, a.detail) for a in alerts])
            self._note_days({day_of(to_wall(self.tz, e.timestamp)) for e in events}
                            | {day_of(to_wall(self.tz, m * 60)) for m, _ in minutes})

    def add_events(self, events) -> None:
        self.write(events=events)

    def add_coverage(self, start_epoch: float, end_epoch: float) -> None:
        self.write(coverage=[(start_epoch, end_epoch)])

    def _insert_events(self, events, bins) -> None:
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

    def _insert_coverage(self, rows: list[tuple[int, float]]) -> None:
        self._write.executemany(
            "INSERT INTO coverage (minute, seconds) VALUES (?, ?) "
            "ON CONFLICT DO UPDATE SET seconds = min(60.0, seconds + excluded.seconds)", rows)
        # Quarters are re-summed from their minutes, since a minute's clamp may have eaten some.
        self._write.executemany(
            "INSERT OR REPLACE INTO coverage_q (quarter, seconds) SELECT ?, SUM(seconds) FROM coverage "
            "WHERE minute >= ? AND minute < ?",
            [(q, q * 15, q * 15 + 15) for q in sorted({m // 15 for m, _ in rows})])

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
            self._days = set()

    def prune(self, now: float, retention_days: int, max_fraction: float = 0.1) -> Pruned:
        """Delete what is older than retention_days before the newest stored data (never after
        now): a clock that jumped ahead deletes nothing until data is stored at its new time, and
        then max_fraction still stops a prune that would take more than that share of the stored
        history in one go (a scheduled job runs it and logs the outcome)."""
        with self._write_lock:   # held until _days is set, so a concurrent writer's days survive
            newest = self._newest_data()
            if newest is None:
                return Pruned(now - retention_days * DAY, {}, 0, 0)
            cutoff = min(now, newest) - retention_days * DAY
            history, doomed = self._history_rows(cutoff)
            if history and doomed / history > max_fraction:
                return Pruned(cutoff, {}, doomed, history, refused=True)
            deleted = {}
            with self._write:
                self._write.execute("BEGIN IMMEDIATE")
                for table, column, value in (("events", "ts", cutoff), ("alerts", "ts", cutoff),
                                             ("occupancy_resets", "ts", cutoff),
                                             ("counts", "minute", cutoff // 60),
                                             ("coverage", "minute", cutoff // 60),
                                             ("counts_q", "quarter", cutoff // 900),
                                             ("coverage_q", "quarter", cutoff // 900)):
                    deleted[table] = self._write.execute(f"DELETE FROM {table} WHERE {column} < ?",
                                                         (value,)).rowcount
            self._days = self._scan_days()
        return Pruned(cutoff, deleted, doomed, history)

    def _newest_data(self) -> float | None:
        """The end of the newest stored minute of counts or analysed video, or event."""
        row = self._write.execute(
            "SELECT MAX(m) FROM (SELECT MAX(minute) * 60 + 60 AS m FROM coverage "
            "UNION ALL SELECT MAX(minute) * 60 + 60 FROM counts UNION ALL SELECT MAX(ts) FROM events)").fetchone()
        return row[0]

    def _history_rows(self, cutoff: float) -> tuple[int, int]:
        """(rows of stored history, rows older than cutoff): quarters of counts and coverage, or
        events where no quarter is stored."""
        total, old = 0, 0
        for table, column, value in (("coverage_q", "quarter", cutoff // 900), ("counts_q", "quarter", cutoff // 900)):
            t, o = self._write.execute(f"SELECT COUNT(*), COUNT(*) FILTER (WHERE {column} < ?) FROM {table}",
                                       (value,)).fetchone()
            total, old = total + t, old + o
        if total == 0:
            total, old = self._write.execute("SELECT COUNT(*), COUNT(*) FILTER (WHERE ts < ?) FROM events",
                                             (cutoff,)).fetchone()
        return total, old

    def set_params(self, values: dict[str, str]) -> None:
        with self._write_lock, self._write:
            self._write.execute("BEGIN IMMEDIATE")
            self._write.executemany("INSERT OR REPLACE INTO params (name, value) VALUES (?, ?)",
                                    list(values.items()))

    def add_occupancy_reset(self, ts: float, value: int) -> None:
        with self._write_lock, self._write:
            self._write.execute("INSERT INTO occupancy_resets (ts, value) VALUES (?, ?)", (ts, value))

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file, so it does not grow without end."""
        with self._write_lock:
            self._write.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._write_lock:
            if self._read is not self._write:
                with self._read_lock:
                    self._read.close()
            if not self.read_only:
                self._write.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._write.close()

    # ---- reads --------------------------------------------------------------------------------

    def _query(self, sql: str, args=()) -> list[tuple]:
        with self._read_lock:
            return self._read.execute(sql, args).fetchall()

    def counts_between(self, start: datetime, end: datetime) -> dict[Key, int]:
        """Counts per (line, direction, class) in the minutes starting in [start, end)."""
        return self.counts_between_epochs(_epoch(start), _epoch(end))

    def counts_between_epochs(self, start: float, end: float) -> dict[Key, int]:
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

    def quick_check(self) -> list[str]:
        """SQLite's quick_check: [] for a sound file, else its first problems (damaged pages)."""
        with self._read_lock:
            rows = [r[0] for r in self._read.execute("PRAGMA quick_check(5)").fetchall()]
        return [] if rows == ["ok"] else rows

    def _scan_days(self) -> set[int]:
        rows = self._query("SELECT quarter FROM coverage_q UNION SELECT DISTINCT quarter FROM counts_q")
        if not rows:
            return set()
        quarters = sorted(r[0] * 900 for r in rows)
        wall = WallMap(self.tz, quarters[0], quarters[-1] + 900)
        return {day_of(wall.wall(q)) for q in quarters}

    def lines_and_classes(self, days: list[int]) -> list[tuple[str, str]]:
        """Every (line, class) with counts on the given local days, so an export written in
        parts can name its columns before its first part."""
        if not days:
            return []
        start, end = real_range_of_days(self.tz, min(days), max(days))
        return self._query("SELECT DISTINCT line, class_name FROM counts_q WHERE quarter >= ? AND quarter < ? "
                           "ORDER BY line, class_name", (start // 900, (end + 899) // 900))

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


def _coverage_rows(spans) -> list[tuple[int, float]]:
    """(minute, seconds) rows of analysed time spans, each span split at minute boundaries."""
    rows = []
    for start, end in spans:
        t = start
        while t < end:
            minute = int(t // 60)
            upto = min(end, (minute + 1) * 60)
            rows.append((minute, upto - t))
            t = upto
    return rows


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
