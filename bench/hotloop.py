"""Hot-loop benchmark: Tracker + LineCounter milliseconds per frame on synthetic detections.

    python bench/hotloop.py [--objects 10 50 200] [--frames 600] [--repeats 5]

Objects walk across a 1280x720 frame at 10 fps with noisy boxes; some detections are missed, some
score low, a few are false; four lines (vertical, horizontal, two diagonal) count them. Detections
are generated before timing, so only tracking and counting are measured, on one core. Prints a
table and one machine-readable line starting with `HOTLOOP_JSON `.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"    # before numpy loads: one core, as on a busy edge box

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from counterd.config import CountingConfig, LineConfig, TrackerConfig  # noqa: E402
from counterd.count import LineCounter  # noqa: E402
from counterd.detections import Detections  # noqa: E402
from counterd.track import Tracker  # noqa: E402

WIDTH, HEIGHT, FPS = 1280, 720, 10.0
LINES = (
    LineConfig("vertical", (640, 0), (640, 720)),
    LineConfig("horizontal", (0, 360), (1280, 360)),
    LineConfig("diagonal", (100, 100), (1180, 620)),
    LineConfig("short", (900, 600), (1200, 200)),
)


def synthetic_scene(objects: int, frames: int, seed: int = 0) -> list[Detections]:
    """Detections for each frame of a scene where `objects` people walk about."""
    rng = np.random.default_rng(seed)
    size = rng.uniform([20, 50], [40, 100], (objects, 2))
    pos = rng.uniform([0, 0], [WIDTH, HEIGHT], (objects, 2))
    vel = rng.normal(0, 40, (objects, 2))             # px/s
    out = []
    for _ in range(frames):
        vel = 0.98 * vel + rng.normal(0, 5, vel.shape)   # wanders, but keeps walking pace
        pos += vel / FPS
        # Walkers leaving the frame turn back, so the count of objects stays put.
        bounce = (pos < 0) | (pos > (WIDTH, HEIGHT))
        vel[bounce] *= -1
        pos = np.clip(pos, 0, (WIDTH, HEIGHT))
        centre = pos + rng.normal(0, 1.5, pos.shape)
        box = np.concatenate([centre - size / 2, centre + size / 2], 1)
        score = np.where(rng.random(objects) < 0.15, rng.uniform(0.15, 0.5, objects),
                         rng.uniform(0.6, 0.95, objects))
        seen = rng.random(objects) > 0.05
        false = max(1, objects // 20)                   # clutter: a few boxes that are no one
        fp_centre = rng.uniform([0, 0], [WIDTH, HEIGHT], (false, 2))
        fp_box = np.concatenate([fp_centre - 15, fp_centre + 15], 1)
        order = rng.permutation(int(seen.sum()) + false)   # detectors return no particular order
        out.append(Detections.from_arrays(
            np.concatenate([box[seen], fp_box])[order],
            np.concatenate([score[seen], rng.uniform(0.2, 0.7, false)])[order],
            np.zeros(len(order), np.int32)))
    return out


def run_once(frames: list[Detections]) -> tuple[float, float, int]:
    """Wall and CPU seconds spent tracking and counting every frame, and the crossings counted."""
    tracker = Tracker(TrackerConfig())
    counter = LineCounter(LINES, CountingConfig())
    crossings = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for i, dets in enumerate(frames):
        t = i / FPS
        crossings += len(counter.update(tracker.update(dets, t), t, (WIDTH, HEIGHT)))
    return time.perf_counter() - wall, time.process_time() - cpu, crossings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    # On a shared machine other processes steal the core now and then: the least CPU time over the
    # repeats is the figure closest to what a dedicated core gives; wall times are shown beside it.
    results = {}
    print(f"{'objects':>7} {'cpu ms/frame (min)':>18} {'wall median':>11} {'wall min':>8} {'crossings':>9}")
    for objects in args.objects:
        frames = synthetic_scene(objects, args.frames)
        run_once(frames[:50])                           # warm caches and imports
        runs = [run_once(frames) for _ in range(args.repeats)]
        wall = [1000 * w / len(frames) for w, _, _ in runs]
        cpu = [1000 * c / len(frames) for _, c, _ in runs]
        results[objects] = {"cpu_min_ms": round(min(cpu), 4), "wall_median_ms": round(statistics.median(wall), 4),
                            "wall_min_ms": round(min(wall), 4)}
        print(f"{objects:>7} {min(cpu):>18.3f} {statistics.median(wall):>11.3f} {min(wall):>8.3f} {runs[0][2]:>9}")
    print("HOTLOOP_JSON " + json.dumps({"frames": args.frames, "repeats": args.repeats,
                                       "python": platform.python_version(),
                                       "numpy": np.__version__, "ms_per_frame": results}))


if __name__ == "__main__":
    main()
