"""SIGKILL during ingest: the database stays consistent and nothing acknowledged is lost."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import sys, time
    from zoneinfo import ZoneInfo
    from counterd.count import CrossingEvent
    from counterd.store import Store
    store = Store(sys.argv[1], ZoneInfo("Europe/Berlin"))
    t0 = time.time()
    i = 0
    while True:
        ts = t0 + i * 0.05
        store.add_events([CrossingEvent(ts, "door", "in" if i % 2 else "out", "person", i)])
        store.add_coverage(ts, ts + 0.05)
        print(i, flush=True)        # acknowledged: add_events has returned
        i += 1
""")


def test_sigkill_during_ingest_loses_nothing_acknowledged(tmp_path):
    path = tmp_path / "counts.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        acknowledged = -1
        while acknowledged < 400:
            line = child.stdout.readline()
            assert line, "the ingest process died before it was killed"
            acknowledged = int(line)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    events = conn.execute("SELECT COUNT(*), MAX(track_id) FROM events").fetchone()
    counted = conn.execute("SELECT SUM(n) FROM counts").fetchone()[0]
    # Every write is committed before add_events returns: all acknowledged events are there (the
    # one-second budget is not even needed), and bins agree with events.
    assert events[0] >= acknowledged + 1 and events[1] >= acknowledged
    assert counted == events[0]
    conn.close()
