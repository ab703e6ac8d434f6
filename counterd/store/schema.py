"""The counts database's schema, as numbered migrations recorded in PRAGMA user_version.

Each migration runs once, in order, inside one transaction with the version bump, so a crash
mid-upgrade leaves the previous version intact. Migrations only add: existing data is kept.
"""
from __future__ import annotations

import sqlite3

from counterd.errors import UserError

MIGRATIONS: tuple[str, ...] = (
    # 1: crossing events, 1-minute count bins and per-minute coverage. Minutes are UTC epoch
    # minutes (epoch // 60); local-time bins are derived at query time.
    """
    CREATE TABLE events (
        ts REAL NOT NULL, line TEXT NOT NULL, direction TEXT NOT NULL,
        class_name TEXT NOT NULL, track_id INTEGER NOT NULL);
    CREATE INDEX events_by_ts ON events (ts);
    CREATE TABLE counts (
        line TEXT NOT NULL, class_name TEXT NOT NULL, minute INTEGER NOT NULL,
        direction TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (line, class_name, minute, direction)) WITHOUT ROWID;
    CREATE INDEX counts_by_minute ON counts (minute);
    CREATE TABLE coverage (minute INTEGER PRIMARY KEY, seconds REAL NOT NULL) WITHOUT ROWID;
    """,
    # 2: alerts, setparams values, manual occupancy resets.
    """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, line TEXT NOT NULL, kind TEXT NOT NULL,
        class_name TEXT NOT NULL, track_id INTEGER NOT NULL, detail TEXT NOT NULL);
    CREATE INDEX alerts_by_ts ON alerts (ts);
    CREATE TABLE params (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE occupancy_resets (ts REAL NOT NULL, value INTEGER NOT NULL);
    CREATE INDEX occupancy_resets_by_ts ON occupancy_resets (ts);
    """,
    # 3: the same bins summed per UTC quarter hour, kept alongside the minute ones, so a year's
    # export reads ~35 k rows per series instead of ~500 k. Filled from the minute bins.
    """
    CREATE TABLE counts_q (
        line TEXT NOT NULL, class_name TEXT NOT NULL, quarter INTEGER NOT NULL,
        direction TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (line, class_name, quarter, direction)) WITHOUT ROWID;
    CREATE INDEX counts_q_by_quarter ON counts_q (quarter);
    CREATE TABLE coverage_q (quarter INTEGER PRIMARY KEY, seconds REAL NOT NULL) WITHOUT ROWID;
    INSERT INTO counts_q SELECT line, class_name, minute / 15, direction, SUM(n) FROM counts GROUP BY 1, 2, 3, 4;
    INSERT INTO coverage_q SELECT minute / 15, SUM(seconds) FROM coverage GROUP BY 1;
    """,
)

VERSION = len(MIGRATIONS)


class SchemaTooNew(UserError):
    """The database was written by a newer counterd."""


def _version(conn: sqlite3.Connection) -> int:
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > VERSION:
        raise SchemaTooNew(f"counts database schema version {found} is newer than this counterd "
                           f"understands ({VERSION}); upgrade counterd")
    return found


def check_version(conn: sqlite3.Connection) -> None:
    """For a read-only reader, which cannot migrate: the file must be at this schema exactly."""
    found = _version(conn)
    if found < VERSION:
        raise UserError(f"counts database schema version {found} is older than this counterd's "
                        f"({VERSION}); start the daemon once to upgrade it")


def migrate(conn: sqlite3.Connection, target: int = VERSION) -> int:
    """Bring the database up to `target` (default: the latest); returns the version found."""
    found = _version(conn)
    for version in range(found + 1, target + 1):
        with conn:  # one transaction per step: the schema change and its version number together
            conn.execute("BEGIN IMMEDIATE")
            for statement in MIGRATIONS[version - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
    return found
