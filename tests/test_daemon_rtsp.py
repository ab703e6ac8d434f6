"""Reliability against a real RTSP server (GStreamer) on a loopback port: the daemon survives the
server being killed and restarted, notices a frozen server within its watchdog time, and serves
stored data while the camera is unreachable. The daemon runs in-process, so its threads and file
descriptors can be counted."""
from __future__ import annotations

import asyncio
import os
import re
import threading
import time

import pytest

from counterd.config import config_from_dict
from counterd.daemon.camera import LinkState
from counterd.daemon.service import DAEMON, make_daemon_app
from counterd.source import wait_for_readers
from tests import rtsp_server

WATCHDOG_S = 2.0
BACKOFF_CAP_S = 1.0

pytestmark = pytest.mark.skipif(rtsp_server.available() is not None,
                                reason=f"real RTSP server unavailable: {rtsp_server.available()}")


@pytest.fixture
def server(monkeypatch):
    # A short probe makes each (re)open ~0.3 s instead of ~1.2 s; the open timeout stays above it.
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "analyzeduration;200000")
    srv = rtsp_server.RtspServer()
    srv.start()
    yield srv
    srv.kill()
    # A reader abandoned in a frozen read() must end before the test process may exit.
    assert wait_for_readers(15), "a capture thread is still blocked"


def daemon_config(tmp_path, url: str):
    return config_from_dict({
        "camera": {"name": "rtsp-test", "source": url},
        "detector": {"type": "motion"},
        "lines": [{"name": "mid", "start": [160, 0], "end": [160, 240]}],
        "source": {"open_timeout_s": 2.0, "read_timeout_s": 2.0, "watchdog_s": WATCHDOG_S,
                   "backoff_base_s": 0.2, "backoff_cap_s": BACKOFF_CAP_S},
        "daemon": {"state_dir": str(tmp_path), "flush_interval_s": 0.2},
        "api": {"metrics_auth": "none"},          # read by a probe without a login
    }, "<test>")


async def until(predicate, timeout: float, step: float = 0.02) -> float:
    """Seconds until predicate() held; fails the test after `timeout`."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)
    return time.monotonic() - start


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_twenty_server_kill_restart_cycles_without_crash_or_leaks(server, tmp_path, aiohttp_client):
    client = await aiohttp_client(make_daemon_app(daemon_config(tmp_path, server.url)))
    daemon = client.app[DAEMON]
    worker, camera = daemon.worker, daemon.worker.camera
    await until(lambda: worker.frames_processed > 5, 15)
    baseline = None
    for cycle in range(20):
        server.kill()
        # The spec's "kill seen < 1 s" holds because the stream's end tells (FFmpeg's read fails
        # within 0.03 s), not the watchdog (2 s): assert that, not a wall-clock time that a loaded
        # box stretches (bench/RESULTS.md has the times measured on an idle box).
        assert await asyncio.to_thread(camera.wait_for_state, LinkState.DOWN, WATCHDOG_S + 30)
        assert camera.reason.startswith("stream ended"), camera.reason
        server.start()
        # "Frames again within max backoff + ~2.5 s": the backoff is the daemon's part (its next
        # attempt is due within backoff_cap_s of the last failure); the open and first decode
        # take what the box gives them.
        assert camera.retry_at <= time.monotonic() + BACKOFF_CAP_S
        processed = worker.frames_processed
        await until(lambda: worker.frames_processed > processed, 60)
        assert camera.state is LinkState.UP
        if cycle == 2:   # after warm-up: the store's pool and decoder threads exist by now
            baseline = (threading.active_count(), os_threads(), open_fds())
    assert worker.alive
    assert camera.reconnects == 20
    py_threads, threads, fds = threading.active_count(), os_threads(), open_fds()
    assert py_threads <= baseline[0], f"Python threads grew from {baseline[0]} to {py_threads}"
    assert threads <= baseline[1] + 2, f"OS threads grew from {baseline[1]} to {threads}"
    assert fds <= baseline[2] + 2, f"file descriptors grew from {baseline[2]} to {fds}"
    metrics = await (await client.get("/metrics")).text()
    assert "counterd_reconnects_total 20.0" in metrics
    # Every analysed live frame's arrival-to-analysis latency is observed (bench/fleet.py reads it).
    latency_count = float(re.search(r"^counterd_frame_latency_seconds_count (\S+)$", metrics, re.M).group(1))
    assert latency_count > 20 and abs(latency_count - worker.frames_processed) <= 2   # the worker runs on
    health = await client.get("/healthz")
    assert health.status == 200 and (await health.json())["stream"] == "up"


async def test_frozen_server_is_detected_within_the_watchdog_time(server, tmp_path, aiohttp_client):
    client = await aiohttp_client(make_daemon_app(daemon_config(tmp_path, server.url)))
    camera = client.app[DAEMON].worker.camera
    await until(lambda: camera.state is LinkState.UP, 15)
    server.freeze()
    try:
        # No error comes from the stream: only the watchdog can tell. A few stale frames may
        # still trickle out of buffers first, hence the small margin.
        waited = await until(lambda: camera.state is LinkState.DOWN, WATCHDOG_S + 1.0)
        assert camera.reason == f"no new frame for {WATCHDOG_S:g} s"
        assert waited >= WATCHDOG_S - 0.5
        health = await (await client.get("/healthz")).json()
        assert health["stream"] == "down" and health["status"] == "degraded"
    finally:
        server.resume()
    await until(lambda: camera.state is LinkState.UP, BACKOFF_CAP_S + 5)
