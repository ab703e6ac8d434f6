"""Soak benchmark: idle daemon RSS, then `counterd run` on a looped file at full speed, sampled every minute.

    .venv/bin/python bench/soak.py [--minutes 30] [--video FILE] [--model FILE | --detector motion]

First the idle daemon: `counterd run` with the detector loaded and warmed up, the API and store
live, and a camera that is not there (it sits in its reconnect loop); its VmRSS after
--idle-seconds. Then the soak: the daemon as a subprocess (as systemd would) on the clip looped at
full speed, its RSS, OS thread count and open file descriptors sampled from /proc, frames and
crossings from /metrics, then stopped with SIGTERM.
Targets (issue 11): idle RSS <= 250 MB without the ultralytics extra, no growth after warm-up over
a 30-minute soak (issue 5: RSS <= 300 MB with frames flowing).
Prints a Markdown table and a verdict for bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("COUNTERD_SHARED", REPO.parent / "shared"))
WARMUP_SAMPLES = 2          # minutes before the process is expected to be flat
IDLE_RSS_LIMIT_MB = 250.0   # issue 11: the idle daemon, without the ultralytics extra
RSS_LIMIT_MB = 300.0        # issue 5: with frames flowing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_sample(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(re.search(r"^VmRSS:\s+(\d+)", status, re.M).group(1))
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))
    return {"rss_mb": rss_kb / 1024, "threads": threads, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def metric_sum(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", text, re.M))


def write_config(path: Path, video: str, detector: str, model: str, state: Path, port: int) -> None:
    model_line = f'model = "{model}"\n' if detector == "onnx" else ""
    path.write_text(f"""[camera]
name = "soak"
source = "{video}"
[detector]
type = "{detector}"
{model_line}[source]
loop = true
[daemon]
state_dir = "{state}"
[api]
host = "127.0.0.1"
port = {port}
metrics_auth = "none"
[[lines]]
name = "vertical"
start = [240, 0]
end = [240, 360]
[[lines]]
name = "horizontal"
start = [0, 200]
end = [480, 200]
""")


def ultralytics_installed() -> bool:
    """Whether the daemon's interpreter can import ultralytics (the target is without it)."""
    return subprocess.run([sys.executable, "-c", "import ultralytics"], capture_output=True).returncode == 0


class Daemon:
    """`counterd run --config DIR/soak.toml`, ready once /metrics answers; SIGTERM on exit."""

    def __init__(self, tmp: Path, port: int):
        self.tmp, self.base, self.exit_code = tmp, f"http://127.0.0.1:{port}", None

    def __enter__(self) -> "Daemon":
        self.log = open(self.tmp / "stderr.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "counterd", "run", "--config", str(self.tmp / "soak.toml")],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 120
        while True:   # ready when /metrics answers (the model is loaded and warmed up before)
            try:
                urllib.request.urlopen(self.base + "/metrics", timeout=2).read()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    sys.exit(f"soak: the daemon did not start:\n{(self.tmp / 'stderr.log').read_text()[-2000:]}")
                time.sleep(0.5)

    def sample(self) -> dict:
        if self.proc.poll() is not None:
            sys.exit(f"soak: the daemon died (exit {self.proc.returncode})")
        # /proc first: the /metrics request itself holds a socket in the daemon for a moment.
        usage = proc_sample(self.proc.pid)
        metrics = urllib.request.urlopen(self.base + "/metrics", timeout=10).read().decode()
        return {**usage, "processed": metric_sum(metrics, "counterd_frames_processed_total"),
                "crossings": metric_sum(metrics, "counterd_crossings_total")}

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.exit_code = self.proc.wait(timeout=60)
        self.log.close()


def idle_rss(args) -> float:
    """VmRSS of a daemon with its detector loaded and no camera (nothing listens on port 9)."""
    with tempfile.TemporaryDirectory(prefix="counterd-idle-") as tmp:
        tmp = Path(tmp)
        port = free_port()
        write_config(tmp / "soak.toml", "rtsp://127.0.0.1:9/cam", args.detector, args.model, tmp / "state", port)
        with Daemon(tmp, port) as daemon:
            time.sleep(args.idle_seconds)
            rss = daemon.sample()["rss_mb"]
    print(f"idle daemon: rss {rss:.1f} MB after {args.idle_seconds:g} s", file=sys.stderr, flush=True)
    return rss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--idle-seconds", type=float, default=30.0, help="how long the idle daemon runs before its sample")
    ap.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    ap.add_argument("--video", default=str(SHARED / "data" / "pets09_s2l1" / "vtest_480x360.avi"))
    ap.add_argument("--detector", choices=("onnx", "motion"), default="onnx")
    ap.add_argument("--model", default=str(SHARED / "models" / "yolox_nano.onnx"))
    args = ap.parse_args()
    if not Path(args.video).exists():
        sys.exit(f"soak: video {args.video} not found (needs ../shared)")

    extra = ultralytics_installed()
    idle_mb = idle_rss(args)
    with tempfile.TemporaryDirectory(prefix="counterd-soak-") as tmp:
        tmp = Path(tmp)
        port = free_port()
        write_config(tmp / "soak.toml", args.video, args.detector, args.model, tmp / "state", port)
        with Daemon(tmp, port) as daemon:
            samples = []
            started = time.monotonic()
            n = int(args.minutes * 60 / args.interval)
            for i in range(n + 1):
                target = started + i * args.interval
                time.sleep(max(0.0, target - time.monotonic()))
                sample = {"minute": (time.monotonic() - started) / 60, **daemon.sample()}
                samples.append(sample)
                print(f"min {sample['minute']:5.1f}  rss {sample['rss_mb']:6.1f} MB  threads {sample['threads']:3d}  "
                      f"fds {sample['fds']:3d}  frames {sample['processed']:8.0f}  crossings {sample['crossings']:6.0f}",
                      file=sys.stderr, flush=True)
        code = daemon.exit_code

    report(samples, args, code, idle_mb, extra)
    return 0


def report(samples: list[dict], args, exit_code: int, idle_mb: float, extra: bool) -> None:
    print(f"Idle daemon (detector loaded, no camera), ultralytics {'INSTALLED' if extra else 'not installed'}: "
          f"RSS {idle_mb:.1f} MB after {args.idle_seconds:g} s (limit {IDLE_RSS_LIMIT_MB:g}).\n")
    print(f"counterd run, detector {args.detector}"
          + (f" ({Path(args.model).name})" if args.detector == "onnx" else "")
          + f", {Path(args.video).name} looped at full speed, {args.minutes:g} min, sampled every {args.interval:g} s\n")
    print("| minute | RSS MB | threads | fds | frames analysed | fps (interval) | crossings |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    previous = None
    for s in samples:
        fps = ((s["processed"] - previous["processed"]) / ((s["minute"] - previous["minute"]) * 60)
               if previous else float("nan"))
        print(f"| {s['minute']:.1f} | {s['rss_mb']:.1f} | {s['threads']} | {s['fds']} | {s['processed']:.0f} | "
              f"{fps:.1f} | {s['crossings']:.0f} |")
        previous = s
    settled = samples[WARMUP_SAMPLES:] or samples
    rss = [s["rss_mb"] for s in settled]
    threads = {s["threads"] for s in settled}
    fds = {s["fds"] for s in settled}
    print(f"\nAfter warm-up (minute {settled[0]['minute']:.0f} on): RSS {min(rss):.1f}-{max(rss):.1f} MB "
          f"(growth {rss[-1] - rss[0]:+.1f} MB), threads {sorted(threads)}, fds {sorted(fds)}; "
          f"peak RSS {max(s['rss_mb'] for s in samples):.1f} MB (limit {RSS_LIMIT_MB:g}); "
          f"SIGTERM exit code {exit_code}.")
    # A looped file is reopened at each end and the store opens its WAL lazily: one fd or thread
    # more or less at the instant of a sample is churn, not growth.
    flat = max(threads) - min(threads) <= 1 and max(fds) - min(fds) <= 1 and rss[-1] - rss[0] < 5.0
    ok = (flat and max(s["rss_mb"] for s in samples) <= RSS_LIMIT_MB and exit_code == 0
          and idle_mb <= IDLE_RSS_LIMIT_MB and not extra)
    print(f"Verdict: {'PASS' if ok else 'FAIL'} (no growth after warm-up: {'yes' if flat else 'no'})")


if __name__ == "__main__":
    sys.exit(main())
