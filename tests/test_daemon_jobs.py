"""The daemon's one scheduler (retention prune, WAL checkpoint) driven by moving its clock, and
Counter.Enabled = 0 stopping detection."""
from __future__ import annotations

import asyncio
import re
import threading
import time
from datetime import UTC, datetime, timedelta

import time_machine
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

from counterd.count import CrossingEvent
from counterd.daemon import scene
from counterd.daemon.camera import LinkState
from counterd.daemon.service import CHECKPOINT_JOB, DAEMON, PRUNE_JOB, make_daemon_app
from counterd.store import Store
from test_daemon import unreachable_config

DAY = 86400


def job_ran(jobs, name: str) -> asyncio.Future:
    """A future resolved with the next execution event of job `name` (APScheduler's listener API)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def listener(event):
        if event.job_id == name and not done.done():
            loop.call_soon_threadsafe(done.set_result, event)
    jobs.scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    return done


def metric(text: str, name: str, job: str) -> float:
    return float(re.search(rf'^{name}{{job="{job}"}} (\S+)$', text, re.M).group(1))


async def test_prune_runs_daily_on_the_scheduler_clock_and_shows_on_metrics(tmp_path, aiohttp_client):
    start = datetime(2024, 6, 12, 12, tzinfo=UTC)
    store = Store(tmp_path / "counts.db", UTC)
    old, recent = start.timestamp() - 500 * DAY, start.timestamp() + 3 * DAY
    store.write([CrossingEvent(old, "door", "in", "person", 1), CrossingEvent(recent, "door", "in", "person", 2)])
    store.close()
    with time_machine.travel(start, tick=True) as traveller:
        # prune_max_fraction 1: two events are all the history here, so each prune takes half of it
        app = make_daemon_app(unreachable_config(tmp_path, store={"retention_days": 400, "prune_max_fraction": 1.0}))
        daemon = app[DAEMON]
        ran = job_ran(daemon.jobs, PRUNE_JOB)
        client = await aiohttp_client(app)
        # The first prune runs at start-up: the 500-day-old event goes, the rest stays.
        assert (await asyncio.wait_for(ran, 30)).exception is None
        first_metrics = await (await client.get("/metrics")).text()
        assert metric(first_metrics, "counterd_job_runs_total", PRUNE_JOB) == 1
        assert len(daemon.store.events_between(0, 2e9)) == 1
        next_run = metric(first_metrics, "counterd_job_next_run_timestamp_seconds", PRUNE_JOB)
        assert next_run > start.timestamp() + DAY - 60
        # 400 days on, with counts stored at that time (retention counts back from the newest
        # data, not from the clock), the "recent" event is past retention: the daily run removes it.
        ran = job_ran(daemon.jobs, PRUNE_JOB)
        traveller.shift(timedelta(days=404))
        later = start.timestamp() + 404 * DAY
        daemon.store.write([CrossingEvent(later, "door", "in", "person", 3)])
        daemon.jobs.scheduler.wakeup()
        event = await asyncio.wait_for(ran, 30)
        assert event.exception is None
        assert [row[0] for row in daemon.store.events_between(0, 2e9)] == [later]
        text = await (await client.get("/metrics")).text()
        assert metric(text, "counterd_job_runs_total", PRUNE_JOB) == 2
        assert metric(text, "counterd_job_failures_total", PRUNE_JOB) == 0
        assert metric(text, "counterd_job_last_run_timestamp_seconds", PRUNE_JOB) >= start.timestamp() + 404 * DAY
        assert metric(text, "counterd_job_next_run_timestamp_seconds", CHECKPOINT_JOB) > 0


async def test_a_failing_job_is_counted_and_the_daemon_keeps_serving(tmp_path, aiohttp_client):
    start = datetime(2024, 6, 12, 12, tzinfo=UTC)
    with time_machine.travel(start, tick=True) as traveller:
        client = await aiohttp_client(make_daemon_app(unreachable_config(tmp_path)))
        daemon = client.app[DAEMON]

        def broken(*args):
            raise OSError("disk I/O error")
        daemon.store.checkpoint = broken
        ran = job_ran(daemon.jobs, CHECKPOINT_JOB)
        traveller.shift(timedelta(hours=2))
        daemon.jobs.scheduler.wakeup()
        assert isinstance((await asyncio.wait_for(ran, 30)).exception, OSError)
        response = await client.get("/metrics")
        assert response.status == 200
        assert metric(await response.text(), "counterd_job_failures_total", CHECKPOINT_JOB) == 1


class CountedScene(scene.DemoScene):
    """The demo scene, paced as fast as it is read, that says when `n` frames were read."""
    read_enough = threading.Event()
    n = 60

    def __init__(self):
        super().__init__(realtime=False, horizon_s=120)

    def read(self):
        if self._index >= self.n:
            CountedScene.read_enough.set()
            time.sleep(0.01)      # a camera's pace: the worker keeps reading while the test looks
        return super().read()


async def test_counting_disabled_stops_detection_and_nothing_is_stored_or_counted(tmp_path, aiohttp_client):
    """Counter.Enabled = 0 (counting.enabled = false): the camera is read, nothing is detected,
    stored, or counted on /metrics, and the health page says so."""
    CountedScene.read_enough.clear()
    config = unreachable_config(tmp_path, counting={"enabled": False})
    client = await aiohttp_client(make_daemon_app(config, capture_factory=CountedScene))
    assert await asyncio.to_thread(CountedScene.read_enough.wait, 60)
    daemon = client.app[DAEMON]
    # The reader thread may read all n frames before the worker holds the source it started: the
    # frames count on /metrics once the worker has taken a frame from it (the link is up).
    assert await asyncio.to_thread(daemon.worker.camera.wait_for_state, LinkState.UP, 60)
    await daemon.flusher.flush()
    health = await (await client.get("/healthz")).json()
    assert health["counting"] == "disabled" and health["frames_processed"] == 0
    metrics = await (await client.get("/metrics")).text()
    assert "counterd_crossings_total{" not in metrics
    assert re.search(r"^counterd_frames_read_total (\S+)$", metrics, re.M).group(1) != "0.0"
    assert daemon.store.coverage_between(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)) == 0


def test_the_prune_says_what_it_deleted_or_why_it_refused(tmp_path, caplog):
    from counterd.daemon.service import report_prune
    store = Store(tmp_path / "counts.db", UTC)
    start = datetime(2024, 6, 12, 12, tzinfo=UTC).timestamp()
    store.write([CrossingEvent(start - d * DAY, "door", "in", "person", d) for d in range(12)])
    caplog.set_level("INFO", logger="counterd.daemon")
    report_prune(store.prune(start, retention_days=10, max_fraction=0.05), 10, 0.05)
    assert "NOT pruning: data older than 2024-06-02 12:00 UTC (10 days before the newest stored data) is 1 of 12 " \
           "rows of history (8%), more than store.prune_max_fraction (5%)" in caplog.text
    assert len(store.events_between(0, 2e9)) == 12
    report_prune(store.prune(start, retention_days=10, max_fraction=0.1), 10, 0.1)
    assert "retention: pruned what was older than 2024-06-02 12:00 UTC (store.retention_days = 10): 1 events" \
        in caplog.text
    store.close()
