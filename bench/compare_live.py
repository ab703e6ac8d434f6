"""Live headroom: the whole daemon on a 25 fps camera, pinned to one core. Does it keep up?

A video file is played as a camera would send it: each frame becomes available at its 25 fps tick
(read() blocks until then). The consumer is the daemon itself, `counterd run` assembled in this
process by make_daemon_app (the capture thread with its live VideoSource, the inference worker,
the asyncio loop with the API, the flusher writing SQLite, the jobs, logging to its file), with the
paced file as its camera. The whole process is pinned to one core; --load-core starts a second
process that keeps another core busy for the length of the run (the issue 11 setting).

    python bench/compare_live.py --model ../shared/models/yolox_nano.onnx --seconds 30 \\
        --core 1 --load-core 0 --out live.json

Reports frames sent, analysed and dropped, CPU use as a fraction of the core, the latency from a
frame's arrival to the end of its analysis, and for every stall (a frame that waited past one frame
interval, or frames dropped) where the time went: the worker's own CPU, the worker runnable but
waiting for the core (schedstat), the CPU other threads of counterd used meanwhile, and garbage
collections. A stall with little of counterd's own CPU in it is the box being busy; one full of it
is counterd.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("COUNTERD_SHARED", HERE.parent.parent / "shared"))
VIDEO = SHARED / "data" / "traffic" / "highway_cctv_video2.avi"     # 320x240, 25 fps, 750 frames
SOURCE_FPS = 25.0
LINES = [("road", (0, 150), (320, 150)), ("shoulder", (250, 60), (250, 240))]


class PacedCapture:
    """An OpenCV capture of a file that hands out frames no faster than a camera at `fps` would,
    looping the file, for `seconds`. Frames are decoded on demand, like a camera's stream."""

    def __init__(self, path: Path, fps: float, seconds: float, on_start=None, on_end=None):
        import cv2
        self.cv2, self.path, self.fps, self.seconds = cv2, path, fps, seconds
        self.on_start, self.on_end = on_start, on_end
        self.cap = cv2.VideoCapture(str(path))
        self.start: float | None = None
        self.sent = 0

    def read(self):
        now = time.monotonic()
        if self.start is None:
            self.start = now
            if self.on_start is not None:
                self.on_start()
        due = self.start + self.sent / self.fps
        if due - self.start >= self.seconds:
            if self.on_end is not None:      # the camera's time is up: stop the daemon, once
                self.on_end, on_end = None, self.on_end
                on_end()
            return False, None
        if due > now:
            time.sleep(due - now)
        ok, image = self.cap.read()
        if not ok:                       # loop the file
            self.cap.release()
            self.cap = self.cv2.VideoCapture(str(self.path))
            ok, image = self.cap.read()
        self.sent += 1
        return ok, image

    def get(self, prop: int) -> float:
        if prop == self.cv2.CAP_PROP_FPS:
            return self.fps
        return self.cap.get(prop)

    def release(self) -> None:
        self.cap.release()


def runqueue_wait() -> float:
    """Seconds this process's threads have spent runnable but waiting for a CPU (schedstat)."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def thread_wait_s() -> float:
    """Seconds the calling thread has spent runnable but waiting for a CPU (schedstat)."""
    try:
        return int(Path("/proc/thread-self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def threads_cpu() -> dict[str, float]:
    """CPU seconds by thread name (utime + stime of every thread of this process): Python's name
    for Python threads, the OS name for the others (ONNX Runtime's, OpenCV's)."""
    import threading
    named = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            name = named.get(int(task.name)) or (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return out


class FrameLog:
    """Per analysed frame, from inside the inference worker: when it arrived, when its analysis
    started and ended, the worker's own CPU, its wait for the core, the process's CPU meanwhile."""

    def __init__(self):
        self.rows: list[tuple] = []
        self.gc: list[tuple[float, float, int, float]] = []   # (start, end: wall clock; generation; CPU s)
        self._gc_start = self._gc_cpu = 0.0

    def wrap(self, worker_class) -> None:
        original = worker_class._process
        rows = self.rows
        last = {}      # the previous frame's end: what the worker did between frames is the gap

        def _process(worker, frame):
            start, cpu, own, wait = time.time(), time.process_time(), time.thread_time(), thread_wait_s()
            gap_wait = wait - last.get("wait", wait)            # runnable between frames, not running
            gap_others = (cpu - last.get("cpu", cpu)) - (own - last.get("own", own))
            original(worker, frame)
            end, cpu1, own1, wait1 = time.time(), time.process_time(), time.thread_time(), thread_wait_s()
            rows.append((frame.timestamp, start, end, own1 - own, wait1 - wait, cpu1 - cpu, worker.camera.dropped,
                         gap_wait, gap_others,
                         bool(getattr(worker.pipeline.last_decision, "rested", False))))
            last.update(cpu=cpu1, own=own1, wait=wait1)
        worker_class._process = _process

    def on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":    # a collection runs in the thread that triggered it, start to stop
            self._gc_start, self._gc_cpu = time.time(), time.thread_time()
        else:
            self.gc.append((self._gc_start, time.time(), info["generation"], time.thread_time() - self._gc_cpu))


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_load(core: int):
    """A second process that keeps `core` busy (pure Python arithmetic, no I/O), in a session of
    its own: where the kernel groups the scheduling of sessions (autogroup), a priority given to
    the daemon's session is not given to it."""
    import subprocess
    return subprocess.Popen([sys.executable, "-c", "while True:\n    sum(i * i for i in range(10000))"],
                            preexec_fn=lambda: os.sched_setaffinity(0, {core}), start_new_session=True)


def run(model: str, seconds: float, gating: bool, core: int | None, live_frames: int | None = None) -> dict:
    import asyncio
    import signal
    import tempfile
    if core is not None:
        os.sched_setaffinity(0, {core})
    from counterd.config import config_from_dict
    from counterd.daemon.logs import setup_logging
    from counterd.daemon.service import make_daemon_app, serve
    from counterd.daemon.worker import InferenceWorker

    frames = FrameLog()
    frames.wrap(InferenceWorker)
    gc.callbacks.append(frames.on_gc)
    with tempfile.TemporaryDirectory(prefix="counterd-live-") as state:
        config = config_from_dict({
            "camera": {"name": "paced"},
            "detector": {"type": "onnx", "model": model, "threads": 1},
            "gating": {"enabled": gating},
            **({"source": {"live_frames": live_frames}} if live_frames else {}),
            "daemon": {"state_dir": state},
            "api": {"host": "127.0.0.1", "port": free_port(), "metrics_auth": "none"},
            "lines": [{"name": n, "start": list(a), "end": list(b)} for n, a, b in LINES],
        })
        setup_logging(config.daemon.log_path)
        first, last = {}, {}

        def totals(into: dict) -> None:
            into.update(wall=time.perf_counter(), cpu=time.process_time(), wait=runqueue_wait(), threads=threads_cpu())

        def stop() -> None:
            """The camera's time is up: read the totals while every thread still runs, then stop
            the daemon as systemd would."""
            totals(last)
            os.kill(os.getpid(), signal.SIGTERM)

        # From the camera's first frame (the model loaded) to its last: what the daemon cost meanwhile.
        capture = PacedCapture(VIDEO, SOURCE_FPS, seconds, on_start=lambda: totals(first), on_end=stop)
        app = make_daemon_app(config, capture_factory=lambda: capture)
        asyncio.run(serve(app, config.api.host, config.api.port))
    return summarise(model, gating, config.source.live_frames, frames, capture, last["wall"] - first["wall"],
                     last["cpu"] - first["cpu"], last["wait"] - first["wait"],
                     {k: round(v - first["threads"].get(k, 0.0), 2) for k, v in last["threads"].items()})


def summarise(model: str, gating: bool, live_frames: int, frames: FrameLog, capture, wall: float, cpu: float,
              waited: float, threads: dict[str, float]) -> dict:
    rows = np.array([r[:9] for r in frames.rows]) if frames.rows else np.zeros((0, 9))
    interval = 1 / SOURCE_FPS
    arrival, start, end, own, wait, proc_cpu, dropped, gap_wait, gap_others = rows.T
    lat = (end - arrival) * 1000
    analysed = len(rows)
    # Only frames while the camera was sending: the first read and the shutdown are not the loop.
    stalls = []
    new_drops = np.diff(np.concatenate([[0], dropped]))
    for i in np.flatnonzero((lat > 1000 * interval) | (new_drops > 0)):
        lo = end[i - 1] if i else start[i]       # from the previous frame's end: what held the worker
        hi = end[i]
        gc_ms = sum(1000 * (min(b, hi) - max(a, lo)) for a, b, _, _ in frames.gc if b > lo and a < hi)
        stalls.append({
            "at_s": round(float(start[i] - start[0]), 2), "latency_ms": round(float(lat[i]), 1),
            "dropped": int(new_drops[i]), "analysis_ms": round(float(1000 * (end[i] - start[i])), 1),
            "worker_cpu_ms": round(float(1000 * own[i]), 1),
            "worker_waiting_for_core_ms": round(float(1000 * wait[i]), 1),
            "other_counterd_threads_cpu_ms": round(float(1000 * (proc_cpu[i] - own[i])), 1),
            # Before the frame was taken: the worker idle between frames (waiting for one), or
            # runnable and waiting for the core, or other threads of counterd running meanwhile.
            "gap_before_ms": round(float(1000 * (start[i] - lo)), 1),
            "gap_waiting_for_core_ms": round(float(1000 * gap_wait[i]), 1),
            "gap_other_threads_cpu_ms": round(float(1000 * gap_others[i]), 1),
            "gc_ms": round(gc_ms, 1)})
    analysis_ms = 1000 * (end - start)
    # Collections while frames flowed (start-up's, loading the model, are not the live loop's).
    collections = [c for c in frames.gc if analysed and c[0] >= start[0]]
    return {
        "model": Path(model).name, "gating": gating, "consumer": "daemon", "live_frames": live_frames, "seconds": round(wall, 2),
        "frames_sent": capture.sent, "frames_analysed": analysed,
        "frames_detected": int(sum(not r[9] for r in frames.rows)),
        "dropped": int(dropped[-1]) if analysed else 0, "cpu_fraction": round(cpu / wall, 3),
        # What one core must give to analyse every frame sent (gating as it fell on these frames):
        # below 1 is headroom. Drops on a machine shared with other work come from the time spent
        # waiting for the core (runnable, but another process had it).
        "cpu_ms_per_frame": round(1000 * cpu / max(analysed, 1), 2),
        "core_demand": round(cpu / max(analysed, 1) * SOURCE_FPS, 3),
        # Summed over the process's threads: the seconds they spent runnable, waiting for the core.
        "runqueue_wait_fraction": round(waited / wall, 3),
        "latency_ms_p50": round(float(np.median(lat)), 1) if analysed else None,
        "latency_ms_p99": round(float(np.percentile(lat, 99)), 1) if analysed else None,
        "latency_ms_max": round(float(lat.max()), 1) if analysed else None,
        "late_frames": int((lat > 1000 * interval).sum()),
        "analysis_ms_histogram": dict(zip(("<10", "10-20", "20-30", "30-40", "40-80", ">=80"),
                                          np.histogram(analysis_ms, [0, 10, 20, 30, 40, 80, 1e9])[0].tolist())),
        "worker_cpu_ms_max": round(float(1000 * own.max()), 1) if analysed else None,
        "gc_collections": len(collections),
        "gc_full_collections": sum(g == 2 for _, _, g, _ in collections),
        "gc_ms_max": round(max((1000 * (b - a) for a, b, _, _ in collections), default=0.0), 1),
        "gc_cpu_ms_max": round(max((1000 * c for *_, c in collections), default=0.0), 1),
        "threads_cpu_s": threads,
        # Where the stalls' time went, summed: counterd's own CPU, or waiting for the core.
        "stall_split_ms": {key: round(sum(st[key] for st in stalls), 1) for key in
                           ("analysis_ms", "worker_cpu_ms", "worker_waiting_for_core_ms",
                            "other_counterd_threads_cpu_ms", "gap_before_ms", "gap_waiting_for_core_ms",
                            "gap_other_threads_cpu_ms", "gc_ms")},
        "stalls": stalls,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--no-gating", action="store_true", help="detect on every frame")
    p.add_argument("--core", type=int, help="pin the daemon to this CPU")
    p.add_argument("--load-core", type=int, help="keep this CPU busy with a second process meanwhile")
    p.add_argument("--live-frames", type=int, help="source.live_frames for the daemon (default: its own)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    load = start_load(args.load_core) if args.load_core is not None else None
    try:
        result = run(args.model, args.seconds, not args.no_gating, args.core, args.live_frames)
    finally:
        if load is not None:
            load.kill()
            load.wait()
    result["load_core"] = args.load_core
    result["loadavg"] = os.getloadavg()[0]
    print(json.dumps({k: v for k, v in result.items() if k not in ("stalls", "threads_cpu_s")}), file=sys.stderr)
    print(f"threads CPU s: {result['threads_cpu_s']}", file=sys.stderr)
    longest = sorted(result["stalls"], key=lambda st: -st["latency_ms"])[:10]   # all of them: in --out
    for stall in sorted(longest, key=lambda st: st["at_s"]):
        print(f"stall: {stall}", file=sys.stderr)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
