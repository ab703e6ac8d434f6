"""HTTP API benchmark: live-sum.json latency under load while the store ingests, and the time to
export a year at 15 minutes.

    .venv/bin/python bench/api.py [--rate 200] [--requests 2000] [--ingest-hz 20]

The server (the real app on 127.0.0.1, a store seeded with a year of minute bins, an ingest
thread adding crossings and coverage) runs in this process; the load comes from a separate
process that sends requests on a fixed schedule (open loop) and measures each from its scheduled
start, so a stall delays every request behind it instead of hiding. Bounded: --requests at
--rate, and every wait has a timeout. Targets (issue 3): live-sum p99 <= 10 ms, year export <= 1 s.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aiohttp import web  # noqa: E402

from counterd.api.app import make_app  # noqa: E402
from counterd.bus import BatchBus, CommittedBatch  # noqa: E402
from counterd.config import config_from_dict  # noqa: E402
from counterd.count import CrossingEvent  # noqa: E402
from counterd.store import Store  # noqa: E402
from counterd.store.wallclock import format_wall, to_wall  # noqa: E402

TZ = ZoneInfo("Europe/Berlin")
CONFIG = {"camera": {"name": "bench", "serial": "ACCC8E54905A", "timezone": "Europe/Berlin"},
          "api": {"anonymous_viewer": True},
          "lines": [{"name": "door", "start": [320, 0], "end": [320, 360]}]}


def seed_year(path: Path, end: float) -> tuple[str, str]:
    """A year of minute bins 07:00-21:00 UTC (both directions) and full coverage, written straight
    into the tables (adding ~1 M crossings one by one would only benchmark the seeding)."""
    start_minute = int(end // 60) - 366 * 1440
    store = Store(path, TZ)
    counts, coverage = [], []
    for minute in range(start_minute, int(end // 60)):
        coverage.append((minute, 60.0))
        if 420 <= minute % 1440 < 1260:
            counts.append(("door", "person", minute, "in", 1 + minute % 3))
            counts.append(("door", "person", minute, "out", 1 + minute % 2))
    with store._write:
        store._write.execute("BEGIN")
        store._write.executemany("INSERT INTO counts VALUES (?, ?, ?, ?, ?)", counts)
        store._write.executemany("INSERT INTO coverage VALUES (?, ?)", coverage)
        store._write.execute("INSERT INTO counts_q SELECT line, class_name, minute / 15, direction, SUM(n) "
                             "FROM counts GROUP BY 1, 2, 3, 4")
        store._write.execute("INSERT INTO coverage_q SELECT minute / 15, SUM(seconds) FROM coverage GROUP BY 1")
    store.close()
    first = format_wall(to_wall(TZ, start_minute * 60 + 86400), "%Y%m%d")
    last = format_wall(to_wall(TZ, end - 86400), "%Y%m%d")
    return first, last


def ingest(store: Store, publish, stop: threading.Event, hz: float, counter: list[int]) -> None:
    """Crossings and coverage as the daemon's flusher adds them (one write, then the committed
    batch published on the loop, which feeds the live totals), until stopped."""
    track = 0
    last = time.time()
    while not stop.wait(1 / hz):
        now = time.time()
        track += 1
        batch = CommittedBatch((CrossingEvent(now, "door", "in" if track % 2 else "out", "person", track),),
                               coverage=((last, now),))
        store.write(batch.events, coverage=batch.coverage)
        publish(batch)
        last = now
        counter[0] += 1


async def serve(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "counts.db"
        t = time.perf_counter()
        first, last = seed_year(path, time.time())
        seeded_s = time.perf_counter() - t
        store = Store(path, TZ)
        bus = BatchBus()
        app = make_app(config_from_dict(CONFIG, "<bench>"), store, bus)
        handled: list[float] = []
        watcher: asyncio.Task | None = None

        @web.middleware
        async def timed(request, handler):     # server-side time, apart from the load process's
            t = time.perf_counter()
            try:
                return await handler(request)
            finally:
                if request.query_string == "live-sum.json":
                    handled.append(time.perf_counter() - t)
                elif request.query_string.startswith("export-csv"):
                    watcher.cancel()        # loop lag is measured during the live-sum phase only

        app.middlewares.insert(0, timed)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        stop, ingested = threading.Event(), [0]
        loop = asyncio.get_running_loop()
        publish = lambda batch: loop.call_soon_threadsafe(bus.publish, batch)  # noqa: E731
        feeder = threading.Thread(target=ingest, args=(store, publish, stop, args.ingest_hz, ingested),
                                  daemon=True)
        feeder.start()
        lags: list[float] = []
        watcher = asyncio.create_task(_watch_loop(lags))
        base = f"http://127.0.0.1:{port}/local/people-counter/.api?"
        load = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--load", base, "--rate", str(args.rate), "--requests", str(args.requests),
            "--export", f"export-csv&date={first}-{last}&res=15m", stdout=subprocess.PIPE)
        limit = args.requests / args.rate + 120
        try:
            out, _ = await asyncio.wait_for(load.communicate(), timeout=limit)
        finally:
            if load.returncode is None:
                load.kill()
            stop.set()
            watcher.cancel()
            feeder.join(timeout=5)
            await runner.cleanup()
            store.close()
        result = json.loads(out)
        handled.sort()
        lags.sort()
        result.update(server_p50_ms=_ms(handled, 0.5), server_p99_ms=_ms(handled, 0.99),
                      server_loop_lag_p99_ms=_ms(lags, 0.99), server_loop_lag_max_ms=_ms(lags, 1.0),
                      seeded_year_s=round(seeded_s, 2), ingest_writes=ingested[0],
                      export_days=f"{first}-{last}", cpus=os.cpu_count(),
                      load_average=[round(x, 1) for x in os.getloadavg()])
        return result


async def _watch_loop(lags: list[float]) -> None:
    """How late the server's event loop wakes from 10 ms sleeps: a stall of the server process
    (CPU taken by others, the GIL held) shows here; one of the load process does not."""
    while True:
        t = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - t - 0.01)


async def load(args) -> dict:
    """The load process: live-sum.json on a fixed schedule, then the year export three times."""
    import aiohttp
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
        async def one(scheduled: float) -> None:
            nonlocal errors
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            try:
                async with session.get(args.load + "live-sum.json", timeout=aiohttp.ClientTimeout(total=10)) as r:
                    await r.read()
                    errors += r.status != 200
            except (aiohttp.ClientError, asyncio.TimeoutError):
                errors += 1
            latencies.append(time.perf_counter() - scheduled)

        async with session.get(args.load + "live-sum.json") as r:     # connect once before timing
            await r.read()
        t0 = time.perf_counter() + 0.1
        await asyncio.gather(*(one(t0 + i / args.rate) for i in range(args.requests)))
        elapsed = time.perf_counter() - t0
        exports = []
        for _ in range(3):
            t = time.perf_counter()
            async with session.get(args.load + args.export, timeout=aiohttp.ClientTimeout(total=60)) as r:
                body = await r.read()
            exports.append(time.perf_counter() - t)
    latencies.sort()
    return {"live_sum_requests": len(latencies), "achieved_rate": round(len(latencies) / elapsed, 1),
            "errors": errors, "p50_ms": _ms(latencies, 0.50), "p90_ms": _ms(latencies, 0.90),
            "p99_ms": _ms(latencies, 0.99),
            "max_ms": round(1000 * latencies[-1], 2),
            "export_year_15m_s": [round(x, 3) for x in exports],
            "export_median_s": round(statistics.median(exports), 3),
            "export_rows": body.count(b"\n") - 1, "export_bytes": len(body)}


def _ms(sorted_seconds: list[float], q: float) -> float:
    return round(1000 * sorted_seconds[min(len(sorted_seconds) - 1, int(q * len(sorted_seconds)))], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="live-sum requests per second")
    parser.add_argument("--requests", type=int, default=2000, help="live-sum requests in all")
    parser.add_argument("--ingest-hz", type=float, default=20.0, help="store writes per second meanwhile")
    parser.add_argument("--load", help=argparse.SUPPRESS)      # internal: run as the load process
    parser.add_argument("--export", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(asyncio.run(load(args))))
        return
    result = asyncio.run(serve(args))
    print(json.dumps(result, indent=2))
    ok = result["p99_ms"] <= 10 and result["export_median_s"] <= 1 and not result["errors"]
    print(f"targets (p99 <= 10 ms, year export <= 1 s, no errors): {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
