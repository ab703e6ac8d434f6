"""The daemon as a whole: the demo scene counts right, `counterd demo` serves what it prints,
SIGKILL loses at most a second and nothing stored, SIGHUP reloads or refuses, an unreachable
camera leaves the API serving stored data."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from requests.auth import HTTPDigestAuth

from counterd.config import config_from_dict
from counterd.count import CrossingEvent
from counterd.daemon import scene
from counterd.daemon.camera import LinkState
from counterd.daemon.service import DAEMON, make_daemon_app, reload, serve
from counterd.errors import UserError
from counterd.pipeline import Pipeline
from counterd.source import Frame
from counterd.store import Store
from rtsp_server import free_port

LIVE_SUM = "/local/tvpc/.api?live-sum.json"


def test_demo_scene_counts_match_its_ground_truth():
    """The synthetic scene through the motion detector and the demo line: every walker counted,
    both directions, side-by-side pairs included."""
    from counterd.commands.demo import demo_config
    config = config_from_dict(demo_config("/nonexistent", 8080, "pw"), "<demo>")
    world = scene.DemoScene(realtime=False, horizon_s=40)
    pipeline = Pipeline(config)
    seconds = 30.0
    for i in range(int(seconds * world.fps)):
        ok, image = world.read()
        pipeline.step(Frame(image, i / world.fps, i))
    truth = world.crossings_until(seconds - 1.0)          # walkers that had a second to get clear
    counted = pipeline.totals["demo"]
    assert truth["in"] >= 3 and truth["out"] >= 3, truth
    assert any(a.start == b.start and a is not b for a in world.walkers for b in world.walkers)  # pairs exist
    assert counted["in"].get("person", 0) in (truth["in"], truth["in"] + 1)
    assert counted["out"].get("person", 0) in (truth["out"], truth["out"] + 1)
    assert world.crossings_until(seconds) == {"in": counted["in"].get("person", 0),
                                              "out": counted["out"].get("person", 0)}


class Demo:
    """`counterd demo` in a subprocess."""

    def __init__(self, state: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "counterd", "demo", "--port", str(self.port),
                                      "--state", str(state)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.banner = []
        for line in self.proc.stderr:      # the banner ends with "Stop with Ctrl-C."
            self.banner.append(line)
            if line.startswith("Stop with"):
                break
        os.set_blocking(self.proc.stderr.fileno(), False)

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.base + path, timeout=5, **kwargs)

    def wait_total(self, until, timeout: float) -> int:
        """Today's total once until(total) holds, read from the counts stream (server-sent
        events, one per committed batch that changes it): awaited, not polled."""
        deadline = time.monotonic() + timeout
        with requests.get(self.base + "/api/v1/live/stream", stream=True, timeout=30) as response:
            for line in response.iter_lines(decode_unicode=True):
                if line.startswith("data: "):
                    total = sum(c["count"] for c in json.loads(line[len("data: "):])["counts"])
                    if until(total):
                        return total
                assert time.monotonic() < deadline, f"the total never got there within {timeout} s"
        raise AssertionError("the counts stream ended")

    def crossings(self) -> int:
        text = self.get("/metrics").text
        return sum(int(float(v)) for v in re.findall(r'^counterd_crossings_total\{[^}]*\} (\S+)$', text, re.M))

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self.proc.stderr.close()
        return code


def test_demo_serves_the_printed_urls_and_credentials(tmp_path):
    demo = Demo(tmp_path)
    try:
        banner = "".join(demo.banner)
        urls = re.findall(r"^  [a-z ()A-Z]+ +(http://\S+)$", banner, re.M)
        assert len(urls) == 5 and urls[0] == demo.base + "/"     # the console first
        for url in urls:
            assert demo.get(url[len(demo.base):]).status_code == 200, url
        password = re.search(r'operator: user "operator", password "(\S+)"', banner).group(1)
        demo.wait_total(lambda total: total > 0, 60)
        logs = demo.get("/local/tvpc/.apioperator?show-logs", auth=HTTPDigestAuth("operator", password))
        assert logs.status_code == 200 and "camera demo: streaming" in logs.text
        assert demo.get("/local/tvpc/.apioperator?show-logs").status_code == 401
    finally:
        assert demo.stop() == 0


def stored_total(db: Path) -> tuple[str, int]:
    with sqlite3.connect(db) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        total = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    return integrity, total


def test_sigkill_loses_at_most_a_second_and_restart_continues_from_the_stored_total(tmp_path):
    demo = Demo(tmp_path)
    try:
        demo.wait_total(lambda total: total >= 3, 90)
        counted_a_second_before = demo.crossings()
        time.sleep(1.0)          # the window the daemon may lose: it flushes every 0.5 s
    finally:
        demo.stop(signal.SIGKILL)
    integrity, stored = stored_total(tmp_path / "counts.db")
    assert integrity == "ok"
    assert stored >= counted_a_second_before
    again = Demo(tmp_path)
    try:
        live = again.get(LIVE_SUM).json()
        assert live["in"] + live["out"] >= stored       # continues from the stored total
        again.wait_total(lambda total: total > stored, 60)
    finally:
        assert again.stop() == 0


@pytest.fixture
def stored_events(tmp_path):
    """A state directory holding 7 'in' and 2 'out' crossings from a minute ago."""
    store = Store(tmp_path / "counts.db", ZoneInfo("UTC"))
    now = time.time() - 60
    store.add_events([CrossingEvent(now + i, "door", "in", "person", i) for i in range(7)]
                     + [CrossingEvent(now + 10 + i, "door", "out", "person", 10 + i) for i in range(2)])
    store.close()
    return tmp_path


def unreachable_config(state: Path, **sections):
    return config_from_dict({
        "camera": {"source": "rtsp://127.0.0.1:1/cam", "timezone": "UTC"},
        "detector": {"type": "motion"},
        "source": {"backoff_base_s": 0.1, "backoff_cap_s": 0.5},
        "daemon": {"state_dir": str(state)},
        "api": {"anonymous_viewer": True},
        "lines": [{"name": "door", "start": [100, 0], "end": [100, 200]}], **sections}, str(state / "counterd.toml"))


async def test_unreachable_camera_at_start_still_serves_stored_data(stored_events, aiohttp_client):
    client = await aiohttp_client(make_daemon_app(unreachable_config(stored_events)))
    live = await (await client.get(LIVE_SUM)).json()
    assert (live["in"], live["out"]) == (7, 2)
    camera = client.app[DAEMON].worker.camera
    assert await asyncio.to_thread(camera.wait_for_state, LinkState.DOWN, 10)   # refused at once
    health = await client.get("/healthz")
    body = await health.json()
    assert health.status == 200 and body["status"] == "degraded" and body["stream"] == "down"
    assert "cannot be opened" in body["stream_reason"]
    metrics = await (await client.get("/metrics")).text()
    assert "counterd_stream_up 0.0" in metrics
    assert "counterd_upload_spool_files 0.0" in metrics      # upload metrics show even with uploads off


class FailingStoreGauge:
    """A Prometheus collector whose store read fails: what the API's error middleware would
    turn into its one-line 503 "store: ..." had /metrics passed through it."""

    def collect(self):
        raise sqlite3.OperationalError("disk I/O error")


async def test_daemon_routes_bypass_the_api_error_middleware_and_api_errors_keep_their_form(
        stored_events, aiohttp_client):
    client = await aiohttp_client(make_daemon_app(unreachable_config(stored_events)))
    client.app[DAEMON].metrics.registry.register(FailingStoreGauge())
    metrics = await client.get("/metrics")
    assert metrics.status == 500 and "store:" not in await metrics.text()    # aiohttp's own 500
    bad = await client.get("/local/tvpc/.api?occupancy-reset&occ=many")
    text = await bad.text()
    assert bad.status == 400 and bad.content_type == "text/plain"
    assert text.startswith("occ:") and text.count("\n") == 1                 # the API's one line
    health = await client.get("/healthz")
    assert health.status == 200 and (await health.json())["store"] == "ok"


async def test_sighup_reload_applies_lines_and_users_and_refuses_a_broken_file(stored_events, aiohttp_client,
                                                                               caplog):
    path = stored_events / "counterd.toml"
    path.write_text('[camera]\nsource = "rtsp://127.0.0.1:1/cam"\ntimezone = "UTC"\n[detector]\ntype = "motion"\n'
                    '[api]\nanonymous_viewer = true\n[[lines]]\nname = "door"\nstart = [100, 0]\nend = [100, 200]\n')
    client = await aiohttp_client(make_daemon_app(unreachable_config(stored_events)))
    daemon = client.app[DAEMON]
    path.write_text(path.read_text().replace("[[lines]]", '[[users]]\nname = "ops"\nrole = "operator"\n'
                                             f'ha1 = "{"a" * 32}"\n[[lines]]')
                    + '[[lines]]\nname = "exit"\nstart = [0, 50]\nend = [200, 50]\n')
    assert await reload(client.app)
    assert [line.name for line in daemon.config.lines] == ["door", "exit"]
    assert "ops" in daemon.site.auth.users
    assert await asyncio.to_thread(daemon.worker.wait_applied, 10)   # between frames
    assert [line.name for line in daemon.worker.pipeline.config.lines] == ["door", "exit"]
    live = await (await client.get(LIVE_SUM)).json()
    assert (live["in"], live["out"]) == (7, 2)            # counts kept

    path.write_text(path.read_text().replace("anonymous_viewer = true", "anonymous_viewer = false"))
    with caplog.at_level(logging.WARNING, logger="counterd.daemon"):
        assert await reload(client.app)
    assert (await client.get(LIVE_SUM)).status == 401     # anonymous viewers are turned away at once
    assert not any("[api] changed" in r.getMessage() for r in caplog.records)

    path.write_text(path.read_text() + '[counting]\nhysteresis_px = -3\n')
    with caplog.at_level(logging.ERROR, logger="counterd.daemon"):
        assert not await reload(client.app)
    assert any("counting.hysteresis_px: must be >= 0" in r.getMessage() for r in caplog.records)
    assert [line.name for line in daemon.config.lines] == ["door", "exit"]   # the old config stays


async def test_unwritable_state_dir_is_one_line_and_nothing_is_left_running(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory should be")
    app = make_daemon_app(unreachable_config(tmp_path, daemon={"state_dir": str(blocker / "state")}))
    with pytest.raises(UserError, match=r"counts database .*not-a-dir/state/counts\.db"):
        await serve(app, "127.0.0.1", free_port())
    ours = [t.name for t in threading.enumerate() if t.name.startswith("counterd")]
    assert ours == []          # no capture, inference or store thread outlived the failed start
