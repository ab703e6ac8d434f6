"""systemd units (systemd-analyze verify) and the notify protocol against real datagram sockets."""
from __future__ import annotations

import asyncio
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from counterd.config import config_from_dict
from counterd.daemon.notify import Notifier
from counterd.daemon.service import DAEMON, make_daemon_app
from rtsp_server import free_port

REPO = Path(__file__).resolve().parents[1]
UNITS = ("counterd.service", "counterd@.service")


def directives(unit: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (REPO / "systemd" / unit).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.mark.parametrize("unit", UNITS)
def test_units_pass_systemd_analyze_verify(unit, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd; CI installs it)")
    # verify checks that ExecStart's program exists: point it at this checkout's console script.
    counterd = Path(sys.executable).with_name("counterd")
    text = (REPO / "systemd" / unit).read_text().replace("/usr/local/bin/counterd", str(counterd))
    (tmp_path / unit).write_text(text)
    result = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / unit)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_units_are_notify_services_with_watchdog_and_hardening(unit):
    d = directives(unit)
    assert d["Type"] == ["notify"] and d["Restart"] == ["on-failure"]
    assert float(d["WatchdogSec"][0]) > 2 * 5.0   # above twice the default source.open_timeout_s
    assert d["RestartPreventExitStatus"] == ["2"]  # a config error does not restart-loop
    for key, value in (("User", "counterd"), ("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                       ("SupplementaryGroups", "video"), ("CapabilityBoundingSet", ""),
                       ("PrivateTmp", "yes"), ("RemoveIPC", "yes")):
        assert d[key] == [value], key
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_template_runs_one_instance_per_camera_config():
    d = directives("counterd@.service")
    assert "--config /etc/counterd/%i.toml" in d["ExecStart"][0]
    assert "--state-dir /var/lib/counterd/%i" in d["ExecStart"][0]
    assert d["StateDirectory"] == ["counterd/%i"]


@pytest.fixture
def notify_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(10)
    yield sock, path
    sock.close()


def test_notifier_sends_datagrams_to_the_socket(notify_socket):
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"})
    assert notifier.watchdog_s == 4.0
    assert notifier.ready("camera up")
    assert sock.recv(4096) == b"READY=1\nSTATUS=camera up"
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    notifier.close()


def test_notifier_reaches_abstract_sockets():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"counterd-test-{os.getpid()}"
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.status("hello")
        assert sock.recv(100) == b"STATUS=hello"
        notifier.close()
    finally:
        sock.close()


def test_notifier_without_systemd_is_a_no_op():
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_s is None
    assert notifier.ready("x") is False


def test_watchdog_for_another_pid_is_ignored(notify_socket):
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket[1], "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert notifier.watchdog_s is None


def receive(sock: socket.socket, seconds: float) -> list[str]:
    """Every datagram that arrives within `seconds`."""
    got, deadline = [], time.monotonic() + seconds
    while True:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            got.append(sock.recv(4096).decode())
        except (TimeoutError, BlockingIOError):
            return got


def write_clip(path: Path, frames: int = 20) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 10 * i, np.uint8))
    writer.release()


def test_run_under_a_notify_socket_is_ready_pings_reloads_on_sighup_and_stops_on_sigterm(notify_socket, tmp_path):
    sock, path = notify_socket
    clip = tmp_path / "clip.avi"
    write_clip(clip)
    port = free_port()
    config = tmp_path / "counterd.toml"
    config.write_text(f"""
[camera]
source = "{clip}"
[detector]
type = "motion"
[source]
loop = true
[daemon]
state_dir = "{tmp_path / 'state'}"
[api]
host = "127.0.0.1"
port = {port}
[[lines]]
name = "mid"
start = [32, 0]
end = [32, 48]
""")
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen([sys.executable, "-m", "counterd", "run", "--config", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        sock.settimeout(60)
        first = sock.recv(4096).decode()
        assert first.startswith("READY=1\nSTATUS=camera ")
        pings = receive(sock, 2.5)
        assert pings.count("WATCHDOG=1") >= 3          # every WatchdogSec/2 = 0.5 s
        assert any(p.startswith("STATUS=camera up;") for p in pings)
        log = LineReader(proc.stderr)
        good = config.read_text()
        config.write_text(good.replace("[detector]", "[detector]\nconfidence = 7"))
        proc.send_signal(signal.SIGHUP)
        log.wait_for("reload refused: " + str(config) + ": detector.confidence: must be <= 1, got 7")
        config.write_text(good + '[[lines]]\nname = "low"\nstart = [0, 40]\nend = [64, 40]\n')
        proc.send_signal(signal.SIGHUP)
        log.wait_for("reload: " + str(config) + " accepted (2 line(s)")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "STOPPING=1\nSTATUS=stopping" in receive(sock, 0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert (tmp_path / "state" / "counts.db").exists() and (tmp_path / "state" / "counterd.log").exists()


class LineReader:
    """The lines a child writes to a pipe, handed over as they come (a thread reads the pipe,
    so the child never blocks on a full one)."""

    def __init__(self, pipe):
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in pipe], daemon=True).start()

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """The first line containing `text`, awaited; fails the test after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                raise AssertionError(f"{text!r} was never logged") from None
            if text in line:
                return line


class StuckDetector:
    """A detector that hangs on its first frame until released: a wedged inference worker."""

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()

    def detect(self, frame):
        self.entered.set()
        self.release.wait(30)
        from counterd.detections import Detections
        return Detections.empty()

    def describe(self) -> str:
        return "stuck"

    def close(self) -> None:
        self.release.set()


class Frames:
    """A capture of grey frames at ~20 fps."""

    def read(self):
        time.sleep(0.05)
        return True, np.full((48, 64, 3), 128, np.uint8)

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: 20.0, cv2.CAP_PROP_FRAME_WIDTH: 64, cv2.CAP_PROP_FRAME_HEIGHT: 48}.get(prop, 0.0)

    def release(self):
        pass


def small_config(tmp_path, **camera):
    return config_from_dict({"camera": camera, "detector": {"type": "motion"}, "gating": {"enabled": False},
                             "daemon": {"state_dir": str(tmp_path)},
                             "api": {"metrics_auth": "none"},      # a health probe without a login
                             "lines": [{"name": "mid", "start": [32, 0], "end": [32, 48]}]}, "<test>")


async def test_watchdog_pings_stop_when_the_worker_is_stuck(notify_socket, tmp_path, aiohttp_client):
    sock, path = notify_socket
    detector = StuckDetector()
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "800000"})
    client = await aiohttp_client(make_daemon_app(small_config(tmp_path), capture_factory=Frames, notifier=notifier,
                                                  detector=detector, healthy_heartbeat_s=0.5))
    assert (await asyncio.to_thread(receive, sock, 0.2))[0].startswith("READY=1")
    await asyncio.to_thread(detector.entered.wait, 10)
    # Stuck from now on: pings may go on for 0.75 x WatchdogSec (0.6 s), then must stop.
    await asyncio.to_thread(receive, sock, 1.0)     # what came while the worker still looked healthy
    later = await asyncio.to_thread(receive, sock, 1.5)
    assert "WATCHDOG=1" not in later
    health = await client.get("/healthz")
    assert health.status == 503 and (await health.json())["status"] == "failing"
    detector.release.set()
    resumed = await asyncio.to_thread(receive, sock, 1.5)
    assert "WATCHDOG=1" in resumed


async def test_watchdog_pings_continue_while_reconnecting(notify_socket, tmp_path, aiohttp_client, capfd):
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "600000"})
    config = small_config(tmp_path, source="rtsp://127.0.0.1:1/nothing-listens-here")
    client = await aiohttp_client(make_daemon_app(config, notifier=notifier))
    got = await asyncio.to_thread(receive, sock, 2.0)
    assert got[0].startswith("READY=1") and got.count("WATCHDOG=1") >= 4
    assert any("camera down" in g for g in got)
    assert client.app[DAEMON].worker.camera.reconnects == 0   # never connected, still trying
    # FFmpeg and OpenCV stay quiet on each failed attempt: the daemon's log says it once.
    stderr = capfd.readouterr().err
    assert "[tcp @" not in stderr and "WARN" not in stderr


async def test_watchdog_pings_stop_while_the_store_cannot_write(notify_socket, tmp_path, aiohttp_client):
    """Another process locks the database: once a flush has failed, /healthz says so and the
    pings stop (systemd would restart us); once the lock goes, the next flush works and they resume."""
    import sqlite3
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
    client = await aiohttp_client(make_daemon_app(small_config(tmp_path), capture_factory=Frames, notifier=notifier))
    daemon = client.app[DAEMON]
    assert (await asyncio.to_thread(receive, sock, 1.0))[0].startswith("READY=1")
    holder = sqlite3.connect(tmp_path / "counts.db", isolation_level=None, timeout=30)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        deadline = time.monotonic() + 60
        while not daemon.flusher.write_error:              # the store's busy timeout is 10 s
            assert time.monotonic() < deadline
            await asyncio.to_thread(receive, sock, 0.5)
        receive(sock, 0)
        later = await asyncio.to_thread(receive, sock, 1.5)
        assert "WATCHDOG=1" not in later
        health = await client.get("/healthz")
        body = await health.json()
        assert health.status == 503 and body["store"].startswith("failing: database is locked")
    finally:
        holder.close()
    deadline = time.monotonic() + 60
    while daemon.flusher.write_error:
        assert time.monotonic() < deadline
        await asyncio.to_thread(receive, sock, 0.5)
    resumed = await asyncio.to_thread(receive, sock, 1.5)
    assert "WATCHDOG=1" in resumed
