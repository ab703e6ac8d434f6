"""A real RTSP server for tests: GStreamer's gst-rtsp-server serving a live test pattern.

Run as a script under Debian's /usr/bin/python3 (PyGObject is not in the venv):
    /usr/bin/python3 tests/rtsp_server.py PORT [WIDTH HEIGHT FPS]
prints "READY" once listening on 127.0.0.1:PORT, path /cam. Imported by tests, `RtspServer`
starts it as a subprocess and can kill (SIGKILL), freeze (SIGSTOP), resume (SIGCONT) and
restart it on the same port. Needs: gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,ugly}
python3-gi (CI installs them; tests skip with a message where they are absent).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
# Small and slow on purpose: the machines running the tests have two cores for everything.
# (bench/fleet.py serves 640x480 cameras.)
SIZE = (320, 240, 10)
PIPELINE = ("( videotestsrc is-live=true pattern=ball ! video/x-raw,width={},height={},framerate={}/1 "
            "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 "
            "! rtph264pay name=pay0 pt=96 config-interval=1 )")


def serve(port: int, width: int, height: int, fps: int) -> None:
    import gi
    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE.format(width, height, fps))
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if not server.attach(None):
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print("READY", flush=True)
    GLib.MainLoop().run()


def available() -> str | None:
    """None when the server can run here, else why not."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} is absent"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                            "from gi.repository import GstRtspServer"], capture_output=True)
    if probe.returncode != 0:
        return "gst-rtsp-server is not installed (apt-get install gir1.2-gst-rtsp-server-1.0 python3-gi)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    def __init__(self, port: int | None = None, width: int = SIZE[0], height: int = SIZE[1], fps: int = SIZE[2]):
        self.port = port or free_port()
        self.size = (width, height, fps)
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:   # the port of a just-killed server may still be held for a moment
            self.process = subprocess.Popen([SYSTEM_PYTHON, __file__, str(self.port), *map(str, self.size)],
                                            stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True)
            line = self.process.stdout.readline()
            if line.strip() == "READY":
                return
            self.process.wait()
            err = self.process.stderr.read()
            self._close_pipes()
            if time.monotonic() > deadline:
                raise RuntimeError(f"RTSP server did not start: {err.strip()[-300:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)   # a frozen process must be able to die
            self.process.kill()
            self.process.wait()
        self._close_pipes()

    def freeze(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def restart(self) -> None:
        self.kill()
        self.start()

    def _close_pipes(self) -> None:
        if self.process is not None:
            for pipe in (self.process.stdout, self.process.stderr):
                if pipe:
                    pipe.close()

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


if __name__ == "__main__":
    serve(int(sys.argv[1]), *(int(v) for v in (sys.argv[2:5] or SIZE)))
