"""The counts store: minute bins, coverage, local-time bins across DST, live totals, retention,
migrations and alerts."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from api_support import BERLIN, Clock, ev, local, make_config
from counterd.errors import UserError
from counterd.bus import BatchBus, CommittedBatch
from counterd.store import AlertRules, LiveTotals, Store
from counterd.store.occupancy import replay, reset_offset
from counterd.store.schema import VERSION, SchemaTooNew, migrate
from counterd.store.wallclock import wall_of_date


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


@pytest.fixture
def store(tmp_path):
    clock = Clock(local(2024, 6, 12, 12))
    s = Store(tmp_path / "counts.db", BERLIN)
    s.test_clock = clock
    yield s
    s.close()


def test_counts_and_coverage_between(store):
    t = local(2024, 6, 11, 10)
    store.add_events([ev(t + 5), ev(t + 30, "out"), ev(t + 61), ev(t + 61, line="exit"),
                      ev(t + 62, class_name="car")])
    store.add_coverage(t + 30, t + 150)
    assert store.counts_between(utc(t), utc(t + 60)) == {("door", "in", "person"): 1, ("door", "out", "person"): 1}
    assert store.counts_between(utc(t), utc(t + 120)) == {
        ("door", "in", "person"): 2, ("door", "out", "person"): 1, ("exit", "in", "person"): 1,
        ("door", "in", "car"): 1}
    assert store.coverage_between(utc(t), utc(t + 60)) == pytest.approx(30)
    assert store.coverage_between(utc(t), utc(t + 180)) == pytest.approx(120)
    store.add_coverage(t, t + 60)       # overlapping reports never make a minute longer than 60 s
    assert store.coverage_between(utc(t), utc(t + 60)) == pytest.approx(60)
    with pytest.raises(ValueError, match="aware"):
        store.counts_between(datetime(2024, 6, 11, 10), datetime(2024, 6, 11, 11))


def test_days_without_data_are_absent(store):
    store.add_events([ev(local(2024, 6, 9, 23, 59))])
    store.add_coverage(local(2024, 6, 11, 8), local(2024, 6, 11, 9))
    assert store.days_with_data() == [wall_of_date(datetime(2024, 6, 9)), wall_of_date(datetime(2024, 6, 11))]


def _day(store, y, m, d, res):
    (day,) = store.binned([wall_of_date(datetime(y, m, d))], res, "door", "person")
    return day


def test_spring_forward_day_has_23_hours(store):
    store.add_coverage(local(2024, 3, 31), local(2024, 4, 1))
    store.add_events([ev(local(2024, 3, 31, 1, 59)), ev(local(2024, 3, 31, 3, 0)), ev(local(2024, 3, 31, 23, 59))])
    day = _day(store, 2024, 3, 31, 3600)
    assert len(day.starts) == 23                    # 02:00-03:00 does not exist
    assert sum(day.coverage.values()) == pytest.approx(23 * 3600)
    assert [day.count(s, "door", "in", "person") for s in day.starts[1:3]] == [1, 1]
    assert len(_day(store, 2024, 3, 31, 900).starts) == 92
    whole = _day(store, 2024, 3, 31, 86400)
    assert whole.coverage[whole.day] == pytest.approx(23 * 3600) and whole.count(whole.day, "door", "in", "person") == 3


def test_fall_back_day_has_25_hours_and_merges_the_repeated_hour(store):
    first_0230 = local(2024, 10, 27, 2, 30)          # CEST
    store.add_coverage(local(2024, 10, 27), local(2024, 10, 28))
    store.add_events([ev(first_0230), ev(first_0230 + 3600)])   # 02:30 CEST and 02:30 CET
    day = _day(store, 2024, 10, 27, 3600)
    assert len(day.starts) == 24
    assert day.count(day.day + 2 * 3600, "door", "in", "person") == 2
    assert day.coverage[day.day + 2 * 3600] == pytest.approx(7200)
    whole = _day(store, 2024, 10, 27, 86400)
    assert whole.coverage[whole.day] == pytest.approx(25 * 3600)


def test_live_totals_follow_committed_batches_and_reset_at_local_midnight(tmp_path):
    now = local(2024, 6, 11, 23, 59)
    store = Store(tmp_path / "c.db", BERLIN)
    bus, live = BatchBus(), LiveTotals(BERLIN)
    live.load(store, now)
    bus.subscribe(lambda batch: live.add(batch.events))
    batch = CommittedBatch((ev(local(2024, 6, 11, 23, 59)), ev(local(2024, 6, 11, 23, 59, 30), "out")))
    store.write(batch.events)
    bus.publish(batch)
    assert live.today(now)[1] == {("door", "in", "person"): 1, ("door", "out", "person"): 1}
    now = local(2024, 6, 12, 0, 0, 1)
    assert live.today(now)[1] == {}
    store.write([ev(local(2024, 6, 12, 0, 0, 2))])
    reseeded = LiveTotals(BERLIN)
    reseeded.load(store, now)                            # a restart starts from the database
    assert reseeded.today(now)[1] == {("door", "in", "person"): 1}
    store.close()


def test_live_totals_after_the_clock_steps_back_across_midnight(tmp_path):
    """00:05 steps back to 23:55: yesterday's totals show again and new crossings count there."""
    store = Store(tmp_path / "c.db", BERLIN)
    live = LiveTotals(BERLIN)
    live.load(store, local(2024, 6, 11, 23, 50))
    live.add([ev(local(2024, 6, 11, 23, 50)), ev(local(2024, 6, 11, 23, 51))])
    live.add([ev(local(2024, 6, 12, 0, 4), "out")])
    assert live.today(local(2024, 6, 12, 0, 5))[1] == {("door", "out", "person"): 1}
    stepped = local(2024, 6, 11, 23, 55)
    assert live.today(stepped)[1] == {("door", "in", "person"): 2}
    live.add([ev(stepped + 1)])                           # a crossing at the stepped-back time
    assert live.today(stepped + 2)[1] == {("door", "in", "person"): 3}
    assert live.today(local(2024, 6, 12, 0, 1))[1] == {("door", "out", "person"): 1}
    after_restart = LiveTotals(BERLIN)
    store.write([ev(local(2024, 6, 11, 23, 50))])
    after_restart.load(store, local(2024, 6, 12, 0, 1))   # loads yesterday too
    assert after_restart.today(stepped)[1] == {("door", "in", "person"): 1}
    store.close()


def test_retention_prunes_old_rows_only_when_asked(tmp_path):
    now = local(2024, 6, 12, 12)
    store = Store(tmp_path / "c.db", BERLIN)
    store.write([ev(local(2024, 5, 1, 12)), ev(local(2024, 6, 10, 12))],
                coverage=[(local(2024, 5, 1, 12), local(2024, 5, 1, 13))])
    store.close()
    store = Store(tmp_path / "c.db", BERLIN)          # opening never prunes (that is a scheduled job)
    assert len(store.events_between(0, now)) == 2
    assert store.prune(now, retention_days=10).refused       # 30 of 40 days at once: too much
    assert len(store.events_between(0, now)) == 2
    store.prune(now, retention_days=10, max_fraction=1.0)
    assert store.counts_between(utc(0), utc(now)) == {("door", "in", "person"): 1}
    assert store.coverage_between(utc(0), utc(local(2024, 6, 1))) == 0
    assert len(store.events_between(0, now)) == 1
    store.close()


def test_read_only_store_reads_and_never_writes(tmp_path):
    path = tmp_path / "c.db"
    with pytest.raises(UserError, match="cannot open the counts database .*no such file"):
        Store.open(path, BERLIN, read_only=True)
    assert not path.exists()                            # a reader creates nothing
    writer = Store.open(path, BERLIN)
    writer.write([ev(local(2024, 6, 10, 12))])
    reader = Store.open(path, BERLIN, read_only=True)
    assert reader.counts_between(utc(0), utc(local(2024, 6, 11))) == {("door", "in", "person"): 1}
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.prune(local(2030, 1, 1), retention_days=1)
    reader.close()
    writer.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with pytest.raises(UserError, match="older than this counterd"):
        Store.open(path, BERLIN, read_only=True)       # it cannot migrate, and says so


def test_migration_keeps_existing_data(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=1)
    conn.execute("INSERT INTO counts VALUES ('door', 'person', ?, 'in', 7)", (int(local(2024, 6, 11, 9) // 60),))
    conn.close()
    store = Store(path, BERLIN)
    assert store.counts_between(utc(0), utc(local(2024, 6, 12))) == {("door", "in", "person"): 7}
    (day,) = store.binned(store.days_with_data(), 900, "door", "person")    # quarter sums backfilled
    assert day.count(day.day + 9 * 3600, "door", "in", "person") == 7
    assert store.alerts_between(0, 2e9, 10) == []          # version 2's table exists
    assert store._query("PRAGMA user_version")[0][0] == VERSION
    store.close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew, match="newer"):
        Store(path, BERLIN)


def test_alert_rules_tailgating_and_wrong_way_across_batches(tmp_path):
    rules = AlertRules(make_config().lines)
    store = Store(tmp_path / "c.db", BERLIN)
    t = local(2024, 6, 11, 9)
    first = rules.check([ev(t, track=1), ev(t + 5, track=2), ev(t + 6.5, track=3), ev(t + 7, "out", track=4)])
    assert [(a.kind, a.track_id) for a in first.alerts] == [("tailgating", 3)]
    store.write(alerts=first.alerts)
    rules.stored(first)
    second = rules.check([ev(t + 7.5, track=5), ev(t + 8, "out", line="exit", track=6)])
    store.write(alerts=second.alerts)
    rules.stored(second)
    alerts = first.alerts + second.alerts
    assert [(a.kind, a.line, a.track_id) for a in alerts] == [
        ("tailgating", "door", 3), ("tailgating", "door", 5), ("wrong-way", "exit", 6)]
    assert store.alerts_between(0, 2e9, 10) == alerts
    store.close()


def test_a_batch_checked_again_after_a_failed_write_does_not_tailgate_itself():
    rules = AlertRules(make_config().lines)
    t = local(2024, 6, 11, 9)
    batch = [ev(t, track=1)]
    rules.check(batch)                         # the write failed: stored() never called
    assert rules.check(batch).alerts == []     # the retry is not 0 s behind itself


def test_clear_data(store):
    t = local(2024, 6, 12, 11)
    store.write([ev(t)], coverage=[(t, t + 60)])
    store.clear_data()
    assert store.days_with_data() == [] and store.counts_between(utc(0), utc(t + 3600)) == {}


def test_unopenable_database_is_a_user_error(tmp_path):
    (tmp_path / "not-a-db").write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(UserError, match="cannot open the counts database .*not-a-db"):
        Store(tmp_path / "not-a-db", BERLIN)


def test_occupancy_floors_at_zero_and_resets_daily_and_by_hand(store):
    six = reset_offset("06:00")
    t = local(2024, 6, 11, 5, 0)
    store.add_events([ev(t, "out"), ev(t + 10, "out"), ev(t + 20), ev(t + 30)])     # 05:00: 0, 0, 1, 2
    steps = replay(store, t + 60, t + 60, "door", "person", six)
    assert steps.before(t + 60) == 2                     # the outs at zero did not go negative
    after_reset = replay(store, local(2024, 6, 11, 7), local(2024, 6, 11, 7), "door", "person", six)
    assert after_reset.before(local(2024, 6, 11, 7)) == 0   # 06:00 reset the two still inside
    store.add_occupancy_reset(local(2024, 6, 11, 8), 4)
    store.add_events([ev(local(2024, 6, 11, 8, 30), "out")])
    now = local(2024, 6, 11, 9)
    steps = replay(store, now, now, "door", "person", six)
    assert steps.before(now) == 3
    # Little's law over 05:00-05:10 (no later crossings): 2 people in, present 590 s and 580 s.
    window = replay(store, t + 600, t + 600, "door", "person", six)
    assert window.average_visit(t, t + 600) == round((600 - 20 + 600 - 30) / 2)


def _history(store, first_day: float, days: int) -> None:
    """A day of analysed video and a crossing at noon, for each of `days` days."""
    for d in range(days):
        t = first_day + d * 86400
        store.write([ev(t + 12 * 3600)], coverage=[(t, t + 86400)])


def test_a_clock_stepped_two_years_ahead_prunes_nothing(tmp_path):
    """Retention counts back from the newest stored data: a +2-year clock deletes nothing, and
    once data is stored at the new time, the fraction guard refuses to take the history."""
    store = Store(tmp_path / "c.db", timezone.utc)
    first = 1_700_000_000 // 86400 * 86400
    _history(store, first, 300)
    stepped = first + 300 * 86400 + 730 * 86400
    assert store.prune(stepped, retention_days=400, max_fraction=0.1).deleted == {
        "events": 0, "alerts": 0, "occupancy_resets": 0, "counts": 0, "coverage": 0, "counts_q": 0, "coverage_q": 0}
    store.write([ev(stepped)], coverage=[(stepped - 60, stepped)])        # counting goes on at the new time
    pruned = store.prune(stepped, retention_days=400, max_fraction=0.1)
    assert pruned.refused and pruned.doomed / pruned.history > 0.99
    assert len(store.events_between(0, 2e10)) == 301
    store.close()


def test_the_daily_prune_takes_the_oldest_day(tmp_path):
    store = Store(tmp_path / "c.db", timezone.utc)
    first = 1_700_000_000 // 86400 * 86400
    _history(store, first, 402)
    pruned = store.prune(first + 402 * 86400, retention_days=400, max_fraction=0.1)
    assert not pruned.refused and pruned.deleted["events"] == 2 and pruned.deleted["coverage"] == 2 * 1440
    assert len(store.days_with_data()) == 400
    store.close()
