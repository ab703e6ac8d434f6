"""Adversarial rerun (issue 13) against a real `counterd run` on 127.0.0.1: slowloris, export
exhaustion, brute force and fuzz, one phase after another, each against a counting daemon.

    /work/venv/bin/python bench/attack.py [--phase-s 20] [--slowloris 1100] [--exports 4]

The daemon counts a looping file (../shared/data, the ONNX detector from ../shared/models) as
fast as the CPU allows, so its frames per second show what an attack takes from counting. Its
store is seeded with a year of minute bins, so the exports are year-long. A separate process
polls live-sum.json over a new connection 10 times a second and times each answer (5 s at most);
another samples the daemon's RSS and frames processed. Everything is bounded: each phase runs
--phase-s seconds, every request has a timeout, and the daemon is stopped at the end.

Prints one row per phase: attack requests, 5xx answers (attack and probe), max RSS, live-sum
p99, counting fps and its change from the baseline (the mean of a quiet phase before and one
after the attacks). The attacks run on the same box as the daemon, so their own CPU counts
against it; on a box shared with other work, read the fps column against the two baselines. Targets: live-sum p99 < 100 ms through
slowloris and the parallel year exports, RSS < 400 MB, fps drop < 20 %.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import multiprocessing as mp
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from api import seed_year  # noqa: E402  (a year of minute bins, written straight into the tables)
from counterd.api.auth import make_ha1  # noqa: E402

LIVE_SUM = "/local/tvpc/.api?live-sum.json"
YEAR_EXPORT = "/local/tvpc/.api?export-detail-csv&date=all&res=15m"
ADMIN = "/local/tvpc/.apiadmin?list-cnt.json"
VIDEO = SHARED / "data" / "pets09_s2l1" / "vtest_480x360.avi"
MODEL = SHARED / "models" / "yolox_nano.onnx"
PROBE_HZ = 10.0
TIMEOUT_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def synthetic_video(path: Path, seconds: float = 30.0) -> Path:
    """The demo's walkers written to a file (--synthetic: no ../shared needed)."""
    import cv2
    from counterd.daemon.scene import DemoScene
    scene = DemoScene(realtime=False, horizon_s=seconds + 10)
    ok, frame = scene.read()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), scene.fps, (frame.shape[1], frame.shape[0]))
    for _ in range(int(seconds * scene.fps)):
        writer.write(frame)
        ok, frame = scene.read()
    writer.release()
    return path


def write_config(state: Path, port: int, video: Path, detector: str) -> Path:
    path = state / "counterd.toml"
    path.write_text(f"""
[camera]
name = "attack"
source = "{video}"
timezone = "Europe/Berlin"
[source]
loop = true
[detector]
{detector}
[daemon]
state_dir = "{state}"
[api]
host = "127.0.0.1"
port = {port}
anonymous_viewer = true
[[users]]
name = "ada"
role = "admin"
ha1 = "{make_ha1('ada', 'counterd', 'the-admin-password')}"
[[users]]
name = "vera"
role = "viewer"
ha1 = "{make_ha1('vera', 'counterd', 'view-pw')}"
[[lines]]
name = "door"
start = [240, 0]
end = [240, 360]
""")
    return path


# ---- measuring (own processes, so the attack's CPU does not delay them) -------------------------

def probe(port: int, stop, out) -> None:
    """live-sum over a new connection PROBE_HZ times a second: (start, seconds, status)."""
    results = []
    next_at = time.monotonic()
    while not stop.is_set():
        start = time.monotonic()
        status = 0
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
            conn.request("GET", LIVE_SUM)
            response = conn.getresponse()
            response.read()
            status = response.status
            conn.close()
        except OSError:
            status = -1
        results.append((time.time(), min(time.monotonic() - start, TIMEOUT_S), status))
        next_at += 1 / PROBE_HZ
        time.sleep(max(0.0, next_at - time.monotonic()))
    out.put(results)


def sample(pid: int, port: int, stop, out) -> None:
    """(time, RSS bytes, frames processed, CPU seconds) twice a second."""
    results = []
    tick = os.sysconf("SC_CLK_TCK")
    while not stop.is_set():
        rss, cpu = 0, None
        try:
            rss = int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text()).group(1)) * 1024
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            cpu = (int(fields[11]) + int(fields[12])) / tick          # utime + stime
        except (OSError, AttributeError, IndexError, ValueError):
            pass
        frames = None
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
            conn.close()
            found = re.search(r"^counterd_frames_processed_total (\S+)$", text, re.M)
            frames = float(found.group(1)) if found else None
        except OSError:
            pass
        results.append((time.time(), rss, frames, cpu))
        stop.wait(0.5)
    out.put(results)


# ---- the attacks (asyncio, in this process) ------------------------------------------------------

class Tally:
    def __init__(self):
        self.requests = 0
        self.errors_5xx = 0
        self.statuses: dict[int, int] = {}

    def add(self, status: int) -> None:
        self.requests += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status >= 500:
            self.errors_5xx += 1


async def http_get(port: int, path: str, headers: dict | None = None, read_body: bool = True) -> int:
    """One GET on its own connection; the status (0: no answer in time), the body read and dropped."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT_S)
    except (OSError, asyncio.TimeoutError):
        return 0
    try:
        head = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{head}\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), 120)
        status = int(line.split()[1]) if len(line.split()) > 1 else 0
        if read_body:
            while await asyncio.wait_for(reader.read(1 << 16), 120):
                pass
        return status
    except (OSError, asyncio.TimeoutError, ValueError):
        return 0
    finally:
        writer.close()


async def slowloris(port: int, until: float, connections: int, tally: Tally) -> None:
    async def one() -> None:
        while time.monotonic() < until:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            tally.add(0)
            try:
                writer.write(b"GET " + LIVE_SUM.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                while time.monotonic() < until:          # a header line every 2 s, never the end
                    await asyncio.sleep(2.0)
                    writer.write(b"X-a: b\r\n")
                    await writer.drain()
                    if reader.at_eof():
                        break
            except OSError:
                pass
            finally:
                writer.close()
    await asyncio.gather(*(one() for _ in range(connections)))


async def exports(port: int, until: float, parallel: int, tally: Tally) -> None:
    async def one() -> None:
        while time.monotonic() < until:
            status = await http_get(port, YEAR_EXPORT)
            tally.add(status)
            if status == 429:
                await asyncio.sleep(1.0)          # Retry-After says 30; a hostile client comes back sooner
    await asyncio.gather(*(one() for _ in range(parallel)))


async def brute_force(port: int, until: float, tally: Tally) -> None:
    """45 guesses in flight at once at the admin's password, a valid viewer login every 3 guesses."""
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ada:guess").decode()}
    valid = {"Authorization": "Basic " + base64.b64encode(b"vera:view-pw").decode()}

    async def one(i: int) -> None:
        n = 0
        while time.monotonic() < until:
            n += 1
            if n % 4 == 0:
                tally.add(await http_get(port, LIVE_SUM, valid))
            else:
                tally.add(await http_get(port, ADMIN, wrong))
    await asyncio.gather(*(one(i) for i in range(45)))


FUZZ_PATHS = ["/local/tvpc/.api", "/local/people-counter/.apioperator", "/api/v1/counts", "/api/v1/events",
              "/local/tvpc/.api?export-csv", "/healthz", "/", "/local/tvpc/appdata.dtd"]


def fuzz_request(rng: random.Random) -> bytes:
    path = rng.choice(FUZZ_PATHS)
    query = "&".join(rng.choice(["date=", "res=", "%ff%fe", "a" * rng.randint(1, 9000), "export-json",
                                 "date=99999999-00000000", "res=7m", "limit=-1", "since=nan", "occ=1e309",
                                 "setparams", "Counter.Name=%EF%BF%BF", "x=" + "%00" * 50])
                     for _ in range(rng.randint(0, 6)))
    method = rng.choice(["GET", "POST", "HEAD", "PUT", "DELETE", "GE\x01T", "OPTIONS"])
    headers = rng.choice(["", "Authorization: Digest username=\"x\", nc=zz\r\n", "Authorization: Basic !!!\r\n",
                          "Content-Length: 99999999\r\n", "Content-Length: -5\r\n", "Transfer-Encoding: chunked\r\n",
                          "Bad\x01Header: 1\r\n", "X-" + "h" * 9000 + ": 1\r\n"])
    body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    return f"{method} {path}?{query} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode("latin-1", "replace") + body


async def fuzz(port: int, until: float, count: int, tally: Tally) -> None:
    rng = random.Random(13)

    async def one(payload: bytes) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT_S)
        except (OSError, asyncio.TimeoutError):
            tally.add(0)
            return
        try:
            writer.write(payload)
            line = await asyncio.wait_for(reader.readline(), TIMEOUT_S)
            tally.add(int(line.split()[1]) if len(line.split()) > 1 and line.split()[1].isdigit() else 0)
        except (OSError, asyncio.TimeoutError):
            tally.add(0)
        finally:
            writer.close()

    sent = 0
    while sent < count and time.monotonic() < until:
        batch = [fuzz_request(rng) for _ in range(min(20, count - sent))]
        await asyncio.gather(*(one(p) for p in batch))
        sent += len(batch)


# ---- running it --------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def summarize(name: str, start: float, end: float, tally: Tally, probes, samples) -> dict:
    lat = [s for t, s, _ in probes if start <= t <= end]
    probe_5xx = sum(1 for t, _, status in probes if start <= t <= end and status >= 500)
    failed = sum(1 for t, _, status in probes if start <= t <= end and status != 200)
    window = [row for row in samples if start <= row[0] <= end]
    frames = [(t, f) for t, _, f, _ in window if f is not None]
    fps = (frames[-1][1] - frames[0][1]) / (frames[-1][0] - frames[0][0]) if len(frames) > 1 else float("nan")
    cpu = [(t, c) for t, _, _, c in window if c is not None]
    cpu_share = 100 * (cpu[-1][1] - cpu[0][1]) / (cpu[-1][0] - cpu[0][0]) if len(cpu) > 1 else float("nan")
    return {"phase": name, "requests": tally.requests, "5xx": tally.errors_5xx + probe_5xx,
            "rss_mb": max((row[1] for row in window), default=0) / 2**20, "cpu": cpu_share, "p99_ms": 1000 * percentile(lat, 0.99),
            "probe_failed": failed, "probes": len(lat), "fps": fps, "statuses": dict(sorted(tally.statuses.items()))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase-s", type=float, default=20.0, help="seconds per phase (default 20)")
    parser.add_argument("--slowloris", type=int, default=1100, help="half-open connections (default 1100)")
    parser.add_argument("--exports", type=int, default=4, help="parallel year exports (default 4)")
    parser.add_argument("--fuzz", type=int, default=2000, help="malformed requests at most (default 2000)")
    parser.add_argument("--daemon-cpus", default="",
                        help="run the daemon on these CPUs only (taskset list, e.g. 0,1: an edge box's two "
                             "cores, with the attack on the others like a remote attacker)")
    parser.add_argument("--synthetic", action="store_true",
                        help="count the demo scene written to a file with the motion detector, instead of "
                             "the PETS clip with the ONNX detector (no ../shared needed)")
    args = parser.parse_args()
    for need in () if args.synthetic else (VIDEO, MODEL):
        if not need.exists():
            print(f"attack: {need} is missing (../shared is needed; or use --synthetic)", file=sys.stderr)
            return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))      # our side of 1100 connections
    with tempfile.TemporaryDirectory(prefix="counterd-attack-") as tmp:
        state = Path(tmp)
        seed_year(state / "counts.db", time.time())
        port = free_port()
        if args.synthetic:
            config = write_config(state, port, synthetic_video(state / "scene.avi"), 'type = "motion"')
        else:
            config = write_config(state, port, VIDEO, f'model = "{MODEL}"\nthreads = 1')
        pin = ["taskset", "-c", args.daemon_cpus] if args.daemon_cpus else []
        daemon = subprocess.Popen([*pin, sys.executable, "-m", "counterd", "run", "--config", str(config)],
                                  cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            return run_phases(args, daemon, port, state)
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()


def run_phases(args, daemon: subprocess.Popen, port: int, state: Path) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/metrics")
            if re.search(r"^counterd_frames_processed_total [1-9]", conn.getresponse().read().decode(), re.M):
                break
        except OSError:
            pass
        if daemon.poll() is not None:
            print(f"attack: the daemon exited {daemon.returncode}; see {state}/counterd.log", file=sys.stderr)
            return 1
        time.sleep(0.5)
    stop = mp.Event()
    probes_q, samples_q = mp.Queue(), mp.Queue()
    workers = [mp.Process(target=probe, args=(port, stop, probes_q)),
               mp.Process(target=sample, args=(daemon.pid, port, stop, samples_q))]
    for w in workers:
        w.start()
    phases = []
    phase_s = args.phase_s

    def run(name: str, attack) -> None:
        tally = Tally()
        start = time.time()
        until = time.monotonic() + phase_s
        if attack is not None:
            asyncio.run(asyncio.wait_for(attack(until, tally), phase_s + 130))
        remaining = until - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        phases.append((name, start, time.time(), tally))
        time.sleep(3.0)                               # let the daemon settle between phases

    run("baseline", None)
    run("slowloris", lambda until, tally: slowloris(port, until, args.slowloris, tally))
    run(f"{args.exports} year exports", lambda until, tally: exports(port, until, args.exports, tally))
    run("brute force", lambda until, tally: brute_force(port, until, tally))
    run("fuzz", lambda until, tally: fuzz(port, until, args.fuzz, tally))
    run("baseline again", None)        # brackets the attacks: the box's own load drifts
    stop.set()
    probes, samples = probes_q.get(timeout=60), samples_q.get(timeout=60)
    for w in workers:
        w.join(timeout=30)
    rows = [summarize(name, a, b, tally, probes, samples) for name, a, b, tally in phases]
    alive = daemon.poll() is None
    print_table(rows, alive)
    return 0


def print_table(rows: list[dict], alive: bool) -> None:
    base_fps = (rows[0]["fps"] + rows[-1]["fps"]) / 2
    print(f"uptime: {os.getloadavg()}  (1/5/15-min load of this box)")
    print(f"{'phase':<16}{'requests':>9}{'5xx':>5}{'max RSS MB':>11}{'live-sum p99 ms':>16}"
          f"{'probes ok':>10}{'fps':>7}{'fps vs base':>12}{'daemon CPU':>11}  statuses")
    for r in rows:
        change = 100 * (r["fps"] / base_fps - 1) if base_fps else float("nan")
        print(f"{r['phase']:<16}{r['requests']:>9}{r['5xx']:>5}{r['rss_mb']:>11.0f}{r['p99_ms']:>16.1f}"
              f"{r['probes'] - r['probe_failed']:>5}/{r['probes']:<4}{r['fps']:>7.1f}{change:>+11.0f}%"
              f"{r['cpu']:>10.0f}%  {r['statuses']}")
    worst_p99 = max(r["p99_ms"] for r in rows[1:3])
    worst_rss = max(r["rss_mb"] for r in rows)
    worst_drop = max(100 * (1 - r["fps"] / base_fps) for r in rows[1:-1]) if base_fps else float("nan")
    print(f"targets: live-sum p99 < 100 ms through slowloris and exports: {worst_p99:.1f} ms "
          f"({'met' if worst_p99 < 100 else 'MISSED'}); RSS < 400 MB: {worst_rss:.0f} MB "
          f"({'met' if worst_rss < 400 else 'MISSED'}); fps drop < 20%: {worst_drop:.0f}% "
          f"({'met' if worst_drop < 20 else 'MISSED'}); 5xx: {sum(r['5xx'] for r in rows)}; "
          f"daemon alive at the end: {alive}")


if __name__ == "__main__":
    sys.exit(main())
