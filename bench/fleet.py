"""Cameras per box: N `counterd run` processes against N real RTSP streams, as systemd runs them.

    python bench/fleet.py [--cameras 1,2,3,4,5,6] [--seconds 60] [--model yolox_nano] [--fps 10]
                          [--size 640x480] [--gating] [--config-option SECTION.KEY=VALUE ...]

For each N: N GStreamer RTSP servers (tests/rtsp_server.py, a live 10 fps 640x480 H.264 test
pattern each, under Debian's python3), and N daemons, one per camera, each its own process with
its own config and state directory (the systemd template unit counterd@.service's way), every
frame detected (motion gate off unless --gating: the test pattern is mostly still). After a
warm-up the run is measured over --seconds from each daemon's /metrics and /proc:
- analysed fps: frames through the pipeline per second (the camera sends --fps);
- dropped: live frames replaced by a newer one before analysis (the daemon fell behind);
- coverage: seconds of video analysed over seconds elapsed (gaps over daemon.max_gap_s are lost;
  read in flush steps of FLUSH_S, so a short window is off by up to FLUSH_S / --seconds);
- latency: from a frame's arrival to the end of its analysis (histogram: p50 and p99 bounds);
- CPU: all daemons' CPU time over the wall time, in cores (the RTSP servers' CPU beside it).
Target (issue 11): >= 4 cameras at 10 fps with no drops and coverage >= 99% on a 2-core box.
On a shared box other work competes for the cores: the load average is printed with every row.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("COUNTERD_SHARED", REPO.parent / "shared"))

from tests.rtsp_server import RtspServer, available, free_port  # noqa: E402

WARMUP_S = 15.0
FLUSH_S = 0.5       # daemon.flush_interval_s: coverage reaches /metrics in steps of this
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK      # utime + stime


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def value(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", text, re.M))


def buckets(text: str, name: str) -> list[tuple[float, float]]:
    found = re.findall(rf'^{name}_bucket\{{le="([^"]+)"\}} (\S+)$', text, re.M)
    return [(float(le), float(n)) for le, n in found]


def quantile_bound(before: list, after: list, q: float) -> float:
    """The upper bucket bound that q of the interval's observations fall under."""
    counts = [(le, b - a) for (le, b), (_, a) in zip(after, before)]
    total = counts[-1][1] if counts else 0
    for le, n in counts:
        if total and n >= q * total:
            return le
    return float("nan")


def write_config(path: Path, name: str, url: str, model: str, state: Path, port: int,
                 size: tuple[int, int], options: list[str], gating: bool) -> None:
    extra: dict[str, list[str]] = {}
    for option in options:
        key, _, val = option.partition("=")
        section, _, field = key.rpartition(".")
        extra.setdefault(section, []).append(f"{field} = {val}")
    w, h = size
    sections = {
        "camera": [f'name = "{name}"', f'source = "{url}"'],
        "detector": ['type = "onnx"', f'model = "{model}"', 'classes = ["person", "car"]'],
        "daemon": [f'state_dir = "{state}"', f"flush_interval_s = {FLUSH_S}"],
        "gating": [f"enabled = {'true' if gating else 'false'}"],
        "api": ['host = "127.0.0.1"', f"port = {port}", 'metrics_auth = "none"'],   # /metrics unauthenticated
    }
    for section, lines in extra.items():
        sections.setdefault(section, []).extend(lines)
    text = "".join(f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items())
    text += f'[[lines]]\nname = "door"\nstart = [{w // 2}, 0]\nend = [{w // 2}, {h}]\n'
    path.write_text(text)


class Fleet:
    def __init__(self, n: int, args, workdir: Path):
        self.servers = [RtspServer(width=args.width, height=args.height, fps=args.fps) for _ in range(n)]
        self.daemons: list[tuple[subprocess.Popen, int]] = []
        self.n, self.args, self.workdir = n, args, workdir

    def start(self) -> None:
        for server in self.servers:
            server.start()
        env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
        for k, server in enumerate(self.servers):
            port = free_port()
            state = self.workdir / f"cam{k}"
            state.mkdir(parents=True, exist_ok=True)
            config = state / "counterd.toml"
            write_config(config, f"cam{k}", server.url, self.args.model, state, port,
                         (self.args.width, self.args.height), self.args.config_option, self.args.gating)
            log = open(state / "stderr.log", "w")
            proc = subprocess.Popen([sys.executable, "-m", "counterd", "run", "--config", str(config)],
                                    stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
            self.daemons.append((proc, port))
        deadline = time.monotonic() + 120
        for proc, port in self.daemons:
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"a daemon exited with {proc.returncode}: see {self.workdir}")
                try:
                    if value(metrics(port), "counterd_frames_processed_total") > 0:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    log = (self.workdir / f"cam{self.daemons.index((proc, port))}" / "stderr.log").read_text()
                    raise SystemExit(f"a daemon analysed no frame within 120 s; its log ends:\n{log[-1500:]}")
                time.sleep(0.5)

    def snapshot(self) -> dict:
        return {"t": time.monotonic(),
                "cpu": [cpu_seconds(p.pid) for p, _ in self.daemons],
                "server_cpu": [cpu_seconds(s.process.pid) for s in self.servers],
                "metrics": [metrics(port) for _, port in self.daemons]}

    def stop(self) -> None:
        for proc, _ in self.daemons:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in self.daemons:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for server in self.servers:
            server.kill()


def measure(n: int, args, workdir: Path) -> dict:
    fleet = Fleet(n, args, workdir / f"n{n}")
    try:
        fleet.start()
        time.sleep(WARMUP_S)
        a = fleet.snapshot()
        time.sleep(args.seconds)
        b = fleet.snapshot()
    finally:
        fleet.stop()
    wall = b["t"] - a["t"]
    cams = []
    for ma, mb in zip(a["metrics"], b["metrics"]):
        d = {k: value(mb, k) - value(ma, k) for k in ("counterd_frames_processed_total",
                                                      "counterd_frames_dropped_total",
                                                      "counterd_frames_read_total",
                                                      "counterd_coverage_seconds_total")}
        la, lb = (buckets(m, "counterd_frame_latency_seconds") for m in (ma, mb))
        cams.append({"fps": d["counterd_frames_processed_total"] / wall,
                     "read_fps": d["counterd_frames_read_total"] / wall,
                     "dropped": int(d["counterd_frames_dropped_total"]),
                     "coverage": d["counterd_coverage_seconds_total"] / wall,
                     "p50": quantile_bound(la, lb, 0.5), "p99": quantile_bound(la, lb, 0.99)})
    return {"n": n, "cams": cams, "cpu": (sum(b["cpu"]) - sum(a["cpu"])) / wall,
            "server_cpu": (sum(b["server_cpu"]) - sum(a["server_cpu"])) / wall,
            "load": os.getloadavg()[0]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cameras", default="1,2,3,4,5,6")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--model", default="yolox_nano", help="model file or name (shared models are found by name)")
    p.add_argument("--fps", type=int, default=10)
    p.add_argument("--size", default="640x480")
    p.add_argument("--gating", action="store_true",
                   help="leave the motion gate on (default off: the test pattern is a small ball on a still "
                        "picture, which the gate would mostly skip; off, every frame is detected, as in a busy scene)")
    p.add_argument("--config-option", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="extra config line for every daemon, VALUE in TOML (e.g. gating.stride=true)")
    args = p.parse_args()
    args.width, args.height = (int(v) for v in args.size.split("x"))
    why = available()
    if why:
        print(f"needs the GStreamer RTSP server: {why}", file=sys.stderr)
        return 2
    shared_model = SHARED / "models" / f"{args.model}.onnx"
    if shared_model.exists():
        args.model = str(shared_model)
    print(f"{args.model}, {args.size} at {args.fps} fps per camera, {args.seconds:.0f} s measured after "
          f"{WARMUP_S:.0f} s warm-up, {os.cpu_count()} CPUs; motion gate {'on' if args.gating else 'off'}; "
          f"options: {args.config_option or 'none'}")
    print(f"{'N':>2} {'cam':>3} {'analysed fps':>12} {'received fps':>12} {'dropped':>7} {'coverage':>8} "
          f"{'latency p50':>11} {'p99':>7} {'daemons CPU':>11} {'servers CPU':>11} {'load':>5}", flush=True)
    ok_upto = 0
    with tempfile.TemporaryDirectory(prefix="counterd-fleet-") as tmp:
        for n in (int(v) for v in args.cameras.split(",")):
            r = measure(n, args, Path(tmp))
            for k, c in enumerate(r["cams"]):
                print(f"{n:>2} {k:>3} {c['fps']:>12.2f} {c['read_fps']:>12.2f} {c['dropped']:>7} "
                      f"{100 * c['coverage']:>7.1f}% {1000 * c['p50']:>8.0f} ms {1000 * c['p99']:>4.0f} ms"
                      + (f" {r['cpu']:>9.2f} c {r['server_cpu']:>9.2f} c {r['load']:>5.1f}" if k == 0 else ""),
                      flush=True)
            # Coverage is read in flush steps: a window can start or end half a step off.
            slack = FLUSH_S / args.seconds
            good = all(c["dropped"] == 0 and c["coverage"] + slack >= 0.99 and c["fps"] >= 0.97 * args.fps
                       for c in r["cams"])
            if good and n == ok_upto + 1:
                ok_upto = n
    print(f"RESULT cameras_per_box={ok_upto}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
