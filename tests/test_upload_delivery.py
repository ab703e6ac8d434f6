"""Store-and-forward: outbox, retries, backfill, quarantine, crash safety, the daemon lifecycle.
Time is a FakeClock the tests move; nothing waits on the real clock."""
from __future__ import annotations

import asyncio
import gzip
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from aiohttp import web
from prometheus_client import CollectorRegistry

from central_service import CentralService
from counterd.daemon.jobs import Jobs
from counterd.upload.outbox import Outbox
from counterd.upload.report import build_report
from counterd.upload.uploader import HOURLY_JOB, SPOOL_JOB
from test_daemon_jobs import job_ran
from upload_fakes import HOUR, PIN, FakeClock, FakeStore, make_uploader, upload_config

REPO = Path(__file__).resolve().parents[1]
START = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def busy_store(first: datetime, hours: int) -> FakeStore:
    """Hour i (from `first`) has i people in at the door and full coverage."""
    store = FakeStore()
    for i in range(hours):
        store.count(first + i * HOUR + timedelta(minutes=10), "door", "in", "person", i)
    store.cover(first, first + hours * HOUR)
    return store


def seed_status(state_dir: Path, last_built: datetime) -> None:
    outbox = Outbox(state_dir / "outbox")
    status = outbox.read_status()
    status.last_built_hour = last_built.isoformat()
    outbox.write_status(status)


@pytest.fixture
async def service(aiohttp_server):
    central = CentralService(pin=PIN)
    server = await aiohttp_server(central.app())
    central.url = str(server.make_url("/")).rstrip("/")
    return central


def sample(uploader, name: str, **labels) -> float | None:
    return uploader.metrics.registry.get_sample_value(name, labels)


def free_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


async def test_service_down_24_hours_then_back_gets_every_hour_once_in_order(service, tmp_path):
    clock = FakeClock(START)
    uploader = make_uploader(upload_config(service.url), busy_store(START.replace(minute=0), 30),
                             tmp_path, clock)
    try:
        assert await uploader.run_once() is None          # first start: the hour in progress is first
        service.outage = 503
        for _ in range(24):
            clock.advance(hours=1)
            assert await uploader.run_once() is not None   # built, kept, to be retried
        assert len(uploader.outbox.pending()) == 24 and service.uploads == []
        service.outage = None
        clock.advance(minutes=1)
        assert await uploader.run_once() is None
    finally:
        await uploader.close()
    hours = [START.replace(minute=0) + i * HOUR for i in range(24)]
    assert [u.rows[0].timestamp for u in service.uploads] == hours     # once each, oldest first
    assert all(u.status == 200 for u in service.uploads)
    assert [r.counts["pedestrian"] for r in service.stored()] == list(range(24))
    assert uploader.outbox.pending() == []
    status = uploader.outbox.read_status()
    assert status.last_delivered_hour == hours[-1].isoformat()
    assert status.last_success["file"] == "20261121T08Z_entrance-north.csv.gz"
    assert sample(uploader, "counterd_upload_attempts_total", outcome="unreachable") == 24
    assert sample(uploader, "counterd_upload_attempts_total", outcome="delivered") == 24
    assert sample(uploader, "counterd_upload_spool_files") == 0


async def test_restart_after_downtime_backfills_missed_hours_within_the_horizon(service, tmp_path, caplog):
    now = datetime(2026, 11, 21, 5, 10, tzinfo=UTC)
    seed_status(tmp_path, now - timedelta(days=3))
    uploader = make_uploader(upload_config(service.url, backfill_days=1.0), FakeStore(), tmp_path, FakeClock(now))
    try:
        assert await uploader.run_once() is None
    finally:
        await uploader.close()
    stamps = [u.rows[0].timestamp for u in service.uploads]
    assert stamps == [datetime(2026, 11, 20, 6, tzinfo=UTC) + i * HOUR for i in range(23)]
    assert all(r.camera_ok is False for r in service.stored())        # nothing analysed: code 2
    assert "older than upload.backfill_days (1)" in caplog.text


async def test_first_start_reports_from_the_hour_in_progress_and_survives_a_restart(service, tmp_path):
    clock = FakeClock(datetime(2026, 11, 21, 10, 20, tzinfo=UTC))
    store = busy_store(datetime(2026, 11, 21, 10, tzinfo=UTC), 5)
    first = make_uploader(upload_config(service.url), store, tmp_path, clock)
    assert await first.run_once() is None and service.uploads == []
    await first.close()
    clock.advance(hours=3)              # down from 10:20 to 13:20
    second = make_uploader(upload_config(service.url), store, tmp_path, clock)
    try:
        await second.run_once()
    finally:
        await second.close()
    assert [u.rows[0].timestamp.hour for u in service.uploads] == [10, 11, 12]


async def test_unreadable_status_rebuilds_the_horizon(service, tmp_path, caplog):
    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / "status.json").write_text("{not json")
    uploader = make_uploader(upload_config(service.url, backfill_days=0.25), FakeStore(), tmp_path,
                             FakeClock(datetime(2026, 11, 21, 12, 5, tzinfo=UTC)))
    try:
        await uploader.run_once()
    finally:
        await uploader.close()
    assert [u.rows[0].timestamp.hour for u in service.uploads] == [7, 8, 9, 10, 11]
    assert "status.json: unreadable" in caplog.text
    assert uploader.outbox.read_status().last_built_hour == "2026-11-21T11:00:00+00:00"


async def test_wrong_pin_is_loud_keeps_the_report_and_retries_slowly(service, tmp_path, caplog):
    pin_file = tmp_path / "pin"
    pin_file.write_text("0000\n")
    clock = FakeClock(datetime(2026, 11, 21, 10, 20, tzinfo=UTC))
    seed_status(tmp_path, datetime(2026, 11, 21, 8, tzinfo=UTC))
    uploader = make_uploader(upload_config(service.url, pin="", pin_file=str(pin_file)), FakeStore(), tmp_path, clock)
    try:
        assert await uploader.run_once() == 1800.0
        assert [u.status for u in service.uploads] == [401]
        assert [p.name for p in uploader.outbox.pending()] == ["20261121T09Z_entrance-north.csv.gz"]
        refused = [r for r in caplog.records if "UPLOAD REFUSED" in r.getMessage()]
        assert refused and refused[0].levelno == logging.ERROR
        assert "401 unauthorized" in uploader.outbox.read_status().last_error["message"]
        pin_file.write_text(PIN)        # fixed without a restart
        assert await uploader.run_once() is None
    finally:
        await uploader.close()
    assert [u.status for u in service.uploads] == [401, 200] and uploader.outbox.pending() == []
    for text in (caplog.text, (tmp_path / "outbox" / "status.json").read_text()):
        assert PIN not in text and "0000" not in text


async def test_rejected_report_is_quarantined_once_and_the_next_one_still_goes(service, tmp_path, caplog):
    clock = FakeClock(datetime(2026, 11, 21, 10, 20, tzinfo=UTC))
    seed_status(tmp_path, datetime(2026, 11, 21, 8, tzinfo=UTC))
    uploader = make_uploader(upload_config(service.url), FakeStore(), tmp_path, clock)
    # An older report with a BOM, as a buggy build might have left it: the service answers 500.
    bad = uploader.outbox.put("20261121T07Z_entrance-north.csv.gz",
                              gzip.compress(b"\xef\xbb\xbfimage_proc,image_capt\n1,2\n"))
    try:
        assert 5 <= await uploader.run_once() <= 10       # kept for a retry; the next one still went
        # The service took another report since: this 500 is about our content.
        assert await uploader.run_once() is None
        assert await uploader.run_once() is None          # not retried in a loop
    finally:
        await uploader.close()
    assert [u.status for u in service.uploads] == [500, 200, 500]
    assert [r.timestamp.hour for r in service.stored()] == [9]
    kept = tmp_path / "outbox" / "quarantine" / bad.name
    assert kept.exists() and "500" in kept.with_name(bad.name + ".why").read_text()
    assert f"moved {bad.name} to {kept}" in caplog.text
    assert "after the service accepted another report" in caplog.text
    assert sample(uploader, "counterd_upload_quarantined_files") == 1


async def test_a_500_from_a_locked_database_is_retried_and_delivered(service, tmp_path, caplog):
    clock = FakeClock(datetime(2026, 11, 21, 10, 20, tzinfo=UTC))
    seed_status(tmp_path, datetime(2026, 11, 21, 8, tzinfo=UTC))
    uploader = make_uploader(upload_config(service.url), busy_store(datetime(2026, 11, 21, 9, tzinfo=UTC), 1),
                             tmp_path, clock)
    service.database_down = 2
    try:
        waits = [await uploader.run_once() for _ in range(3)]
    finally:
        await uploader.close()
    assert waits[0] is not None and waits[1] is not None and waits[2] is None
    assert waits[0] < waits[1] * 2                  # backing off: the ceiling doubled (jittered)
    assert [u.status for u in service.uploads] == [500, 500, 200]
    assert [r.timestamp.hour for r in service.stored()] == [9]
    assert uploader.outbox.quarantined() == [] and uploader.outbox.read_status().rejections == {}
    assert "try 2 of 4" in caplog.text


async def test_a_long_database_outage_sets_reports_aside_and_loses_no_hour(service, tmp_path, caplog):
    clock = FakeClock(datetime(2026, 11, 21, 10, 20, tzinfo=UTC))
    seed_status(tmp_path, datetime(2026, 11, 21, 8, tzinfo=UTC))
    store = busy_store(datetime(2026, 11, 21, 9, tzinfo=UTC), 3)
    uploader = make_uploader(upload_config(service.url, reject_attempts=3), store, tmp_path, clock)
    service.database_down = 1000
    try:
        assert await uploader.run_once() is not None
        assert await uploader.run_once() is not None
        assert await uploader.run_once() is None        # third 500: set aside, not retried in a loop
        assert [p.name for p in uploader.outbox.quarantined()] == ["20261121T09Z_entrance-north.csv.gz"]
        assert "3 tries: set aside until the service accepts another report" in caplog.text
        service.database_down = 0
        clock.advance(hours=1)                          # the next hour's report goes through...
        assert await uploader.run_once() is not None    # ...and brings the set-aside one back
        assert await uploader.run_once() is None
    finally:
        await uploader.close()
    assert [(r.timestamp.hour, r.counts["pedestrian"]) for r in service.stored()] == [(9, 0), (10, 1)]
    assert uploader.outbox.quarantined() == [] and uploader.outbox.pending() == []


async def test_a_200_that_is_not_the_services_json_keeps_the_report(service, tmp_path, caplog):
    seed_status(tmp_path, datetime(2026, 11, 21, 8, tzinfo=UTC))
    uploader = make_uploader(upload_config(service.url), FakeStore(), tmp_path,
                             FakeClock(datetime(2026, 11, 21, 10, 20, tzinfo=UTC)))
    service.login_page = True
    try:
        assert await uploader.run_once() == 1800.0
        refused = [r.getMessage() for r in caplog.records if "UPLOAD REFUSED" in r.getMessage()]
        assert refused and "Sign in to continue" in refused[0] and 'status "ok"' in refused[0]
        assert [p.name for p in uploader.outbox.pending()] == ["20261121T09Z_entrance-north.csv.gz"]
        service.login_page = False
        assert await uploader.run_once() is None
    finally:
        await uploader.close()
    assert [r.timestamp.hour for r in service.stored()] == [9]


async def test_overwrite_never_replaces_delivered_rows_with_an_unanalysed_rebuild(service, tmp_path):
    """status.json lost and no counts database: the rebuilt horizon is zero rows with
    warnings 2; with overwrite on they still must not replace the good rows already delivered."""
    first = datetime(2026, 11, 21, 3, tzinfo=UTC)
    seed_status(tmp_path, first - HOUR)
    clock = FakeClock(datetime(2026, 11, 21, 10, 20, tzinfo=UTC))
    config = upload_config(service.url, overwrite=True, backfill_days=1.0)
    uploader = make_uploader(config, busy_store(first, 7), tmp_path, clock)
    try:
        assert await uploader.run_once() is None
    finally:
        await uploader.close()
    good = [(r.timestamp, r.counts["pedestrian"], r.camera_ok) for r in service.stored()]
    assert good == [(first + i * HOUR, i, True) for i in range(7)]
    assert all(u.overwrite for u in service.uploads)          # full hours go with overwrite=t
    (tmp_path / "outbox" / "status.json").write_text("{lost")
    rebuilt = make_uploader(config, FakeStore(), tmp_path, clock)
    try:
        assert await rebuilt.run_once() is None
    finally:
        await rebuilt.close()
    late = service.uploads[7:]
    assert len(late) == 23 and not any(u.overwrite for u in late)       # the last day, rebuilt
    assert [(r.timestamp, r.counts["pedestrian"], r.camera_ok) for r in service.stored()
            if r.timestamp >= first][:7] == good                 # the service still has the good rows


async def test_unknown_camera_warning_is_about_this_camera(service, tmp_path, caplog):
    seed_status(tmp_path, datetime(2026, 11, 21, 8, tzinfo=UTC))
    service.cameras["other-box"] = 1              # another box's camera, never registered
    clock = FakeClock(datetime(2026, 11, 21, 10, 20, tzinfo=UTC))
    registered = make_uploader(upload_config(service.url, camera_pk=2), FakeStore(), tmp_path, clock)
    service.complete.add("entrance-north")        # ours gets number 2 and is registered
    try:
        assert await registered.run_once() is None
    finally:
        await registered.close()
    assert service.cameras["entrance-north"] == 2
    assert "does not know camera_ref" not in caplog.text
    service.complete.discard("entrance-north")
    clock.advance(hours=2)
    unregistered = make_uploader(upload_config(service.url, camera_pk=2), FakeStore(), tmp_path, clock)
    try:
        assert await unregistered.run_once() is None
    finally:
        await unregistered.close()
    warnings = [r.getMessage() for r in caplog.records if "does not know camera_ref" in r.getMessage()]
    assert warnings == ["the service does not know camera_ref 'entrance-north' (camera 2) yet: its rows "
                        "are stored but stay hidden until the camera is registered there (label, lon, lat)"]


async def test_unreachable_service_is_retried_with_capped_jittered_backoff(tmp_path):
    clock = FakeClock(datetime(2026, 11, 21, 10, 20, tzinfo=UTC))
    seed_status(tmp_path, datetime(2026, 11, 21, 8, tzinfo=UTC))
    uploader = make_uploader(upload_config(free_port_url()), FakeStore(), tmp_path, clock)
    try:
        waits = [await uploader.run_once() for _ in range(6)]
    finally:
        await uploader.close()
    ceilings = [10, 20, 40, 80, 80, 80]     # base 10 s doubling, cap 80 s
    assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings)), waits
    assert len(set(waits)) == len(waits)    # jittered
    assert len(uploader.outbox.pending()) == 1
    assert "cannot reach" in uploader.outbox.read_status().last_error["message"]


async def test_a_service_that_never_answers_times_out_and_is_retried(aiohttp_server, tmp_path):
    never = asyncio.Event()

    async def hang(request):
        await never.wait()
    app = web.Application()
    app.router.add_post("/upload_report", hang)
    server = await aiohttp_server(app)
    seed_status(tmp_path, datetime(2026, 11, 21, 8, tzinfo=UTC))
    uploader = make_uploader(upload_config(str(server.make_url("/")), timeout_s=0.2), FakeStore(), tmp_path,
                             FakeClock(datetime(2026, 11, 21, 10, 20, tzinfo=UTC)))
    try:
        assert await uploader.run_once() is not None
    finally:
        await uploader.close()
        never.set()
    assert "did not answer in time" in uploader.outbox.read_status().last_error["message"]
    assert len(uploader.outbox.pending()) == 1


@pytest.mark.parametrize("overwrite, expected", [(True, 9), (False, 1)])
async def test_a_rebuilt_hour_replaces_the_row_only_with_overwrite(service, tmp_path, overwrite, expected):
    hour = datetime(2026, 11, 21, 9, tzinfo=UTC)
    store = busy_store(hour, 2)
    store.count(hour, "door", "in", "person", 1)
    seed_status(tmp_path, hour - HOUR)
    config = upload_config(service.url, overwrite=overwrite)
    uploader = make_uploader(config, store, tmp_path, FakeClock(hour + HOUR + timedelta(minutes=5)))
    try:
        await uploader.run_once()
        store.count(hour, "door", "in", "person", 8)      # late events; the hour is built again
        report = build_report(store, config, hour, hour + 2 * HOUR)
        uploader.outbox.put(report.name, report.data)
        await uploader.run_once()
    finally:
        await uploader.close()
    assert [u.overwrite for u in service.uploads] == [overwrite, overwrite]
    assert [r.counts["pedestrian"] for r in service.stored()] == [expected]


async def test_spool_over_its_limit_warns_and_sets_the_metric(tmp_path, caplog):
    seed_status(tmp_path, datetime(2026, 11, 21, 5, tzinfo=UTC))
    uploader = make_uploader(upload_config(free_port_url(), spool_warn_mb=0.0001), FakeStore(), tmp_path,
                             FakeClock(datetime(2026, 11, 21, 10, 20, tzinfo=UTC)))
    try:
        await uploader.run_once()
    finally:
        await uploader.close()
    assert sample(uploader, "counterd_upload_spool_over_limit") == 1
    assert sample(uploader, "counterd_upload_spool_files") == 4
    assert sample(uploader, "counterd_upload_attempts_total", outcome="unreachable") == 1
    assert "over upload.spool_warn_mb" in caplog.text
    assert len(uploader.outbox.pending()) == 4      # nothing deleted to make room


CHILD = """
import sys, time
from datetime import datetime, UTC
from tests.upload_fakes import FakeClock, FakeStore, make_uploader, upload_config
uploader = make_uploader(upload_config(sys.argv[2]), FakeStore(), sys.argv[1],
                         FakeClock(datetime(2026, 11, 21, 10, 20, tzinfo=UTC)))
uploader.build_due()          # the report is in the outbox; the send would come next
print("spooled", flush=True)
time.sleep(60)
"""


async def test_sigkill_between_spool_write_and_send_still_delivers_after_restart(service, tmp_path):
    seed_status(tmp_path, datetime(2026, 11, 21, 8, tzinfo=UTC))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), service.url],
                             stdout=subprocess.PIPE, env=env, text=True)
    try:
        line = await asyncio.to_thread(child.stdout.readline)
        assert line.strip() == "spooled"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL and service.uploads == []
    restarted = make_uploader(upload_config(service.url), FakeStore(), tmp_path,
                              FakeClock(datetime(2026, 11, 21, 10, 25, tzinfo=UTC)))
    try:
        assert await restarted.run_once() is None
    finally:
        await restarted.close()
    assert [(u.status, u.rows[0].timestamp.hour) for u in service.uploads] == [(200, 9)]
    assert restarted.outbox.pending() == []


async def test_daemon_lifecycle_startup_run_hourly_job_retry_and_stop(service, tmp_path):
    clock = FakeClock(datetime(2026, 11, 21, 10, 20, tzinfo=UTC))
    seed_status(tmp_path, datetime(2026, 11, 21, 8, tzinfo=UTC))
    (tmp_path / "outbox" / ".20261121T09Z_entrance-north.csv.gz.tmp").write_bytes(b"half a rep")
    uploader = make_uploader(upload_config(service.url, minute=7), FakeStore(), tmp_path, clock)
    with time_machine.travel(clock.now(), tick=True) as traveller:
        jobs = Jobs(CollectorRegistry())
        jobs.start()
        await uploader.start(jobs)
        try:
            await lifecycle(service, tmp_path, uploader, clock, jobs, traveller)
        finally:
            await uploader.stop()
            jobs.shutdown()
    assert jobs.scheduler.get_job(HOURLY_JOB) is None and jobs.scheduler.get_job(SPOOL_JOB) is None
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "counterd-upload"]


async def lifecycle(service, tmp_path, uploader, clock, jobs, traveller) -> None:
    await asyncio.wait_for(service.stored_rows.wait(), 10)       # the start-up run
    assert [r.timestamp.hour for r in service.stored()] == [9]
    await asyncio.wait_for(uploader.idle.wait(), 10)     # its delivery recorded (status.json written)
    assert not list((tmp_path / "outbox").glob(".*.tmp"))
    job = jobs.scheduler.get_job(HOURLY_JOB)
    assert (job.next_run_time.minute, job.next_run_time.second) == (7, 0)

    # The hourly job finds the service down: the sender sleeps on the backoff, then retries.
    service.stored_rows.clear()
    service.outage = 502
    clock.sleeping.clear()
    clock.advance(hours=1)
    ran = job_ran(jobs, HOURLY_JOB)
    traveller.move_to(job.next_run_time)                          # the scheduler's clock: 11:07
    jobs.scheduler.wakeup()
    await asyncio.wait_for(ran, 10)
    await asyncio.wait_for(clock.sleeping.wait(), 10)
    assert 5 <= clock.sleeps[-1] <= 10 and len(uploader.outbox.pending()) == 1
    service.outage = None
    clock.advance(seconds=clock.sleeps[-1])
    await asyncio.wait_for(service.stored_rows.wait(), 10)
    assert [r.timestamp.hour for r in service.stored()] == [9, 10]


async def test_reload_applies_a_fixed_pin_and_a_new_minute_at_once(service, tmp_path, caplog):
    clock = FakeClock(datetime(2026, 11, 21, 10, 20, tzinfo=UTC))
    seed_status(tmp_path, datetime(2026, 11, 21, 8, tzinfo=UTC))
    uploader = make_uploader(upload_config(service.url, pin="0000"), FakeStore(), tmp_path, clock)
    jobs = Jobs(CollectorRegistry())
    jobs.start()
    await uploader.start(jobs)
    try:
        await asyncio.wait_for(clock.sleeping.wait(), 10)         # refused: the slow retry wait
        assert clock.sleeps == [1800.0] and [u.status for u in service.uploads] == [401]
        uploader.reconfigure(upload_config(service.url, minute=33))
        await asyncio.wait_for(service.stored_rows.wait(), 10)    # no waiting out the 30 minutes
        assert jobs.scheduler.get_job(HOURLY_JOB).next_run_time.minute == 33
    finally:
        await uploader.stop()
        jobs.shutdown()
    assert [u.status for u in service.uploads] == [401, 200]
    assert "0000" not in caplog.text and PIN not in caplog.text


class SlowStore(FakeStore):
    """A counts store whose queries wait until the test lets them go on."""

    def __init__(self):
        super().__init__()
        self.querying = threading.Event()
        self.go_on = threading.Event()

    def counts_between(self, start, end):
        self.querying.set()
        assert self.go_on.wait(30)
        return super().counts_between(start, end)


async def test_stop_waits_for_every_store_query_and_outbox_write_still_running(service, tmp_path):
    """The spool-check job's disk work beside the sender's must not hide the sender's from stop():
    the store closes after stop(), and a status.json write cut short leaves its temp file."""
    seed_status(tmp_path, datetime(2026, 11, 21, 8, tzinfo=UTC))
    store = SlowStore()
    uploader = make_uploader(upload_config(service.url), store, tmp_path,
                             FakeClock(datetime(2026, 11, 21, 10, 20, tzinfo=UTC)))
    jobs = Jobs(CollectorRegistry())
    jobs.start()
    await uploader.start(jobs)
    try:
        assert await asyncio.to_thread(store.querying.wait, 10)     # the start-up build, in a thread
        checked = job_ran(jobs, SPOOL_JOB)
        jobs.scheduler.modify_job(SPOOL_JOB, next_run_time=datetime.now(UTC))
        assert (await asyncio.wait_for(checked, 10)).exception is None
        stopping = asyncio.create_task(uploader.stop())
        done, _ = await asyncio.wait({stopping}, timeout=1.0)
        assert not done, "stop() returned while the store was still being queried"
        store.go_on.set()
        await asyncio.wait_for(stopping, 10)
    finally:
        store.go_on.set()
        await uploader.stop()
        jobs.shutdown()
    assert Outbox(tmp_path / "outbox").read_status().last_built_hour == "2026-11-21T09:00:00+00:00"
    assert not list((tmp_path / "outbox").glob(".*.tmp"))
