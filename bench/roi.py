"""Region of interest: count accuracy and speed with the detector cropped to each line's region.

    python bench/roi.py [--detectors yolox_nano,yolov8n_int8_640] [--margins 1.0]

A camera usually counts at one door: each line of bench/accuracy.py is counted on its own, once on
the whole frame and once with `detector.roi_from_lines` (the box around the line's band grown by
--margins object sizes, learned from the detections). Per line the true crossings (in/out) and
each run's counts; accuracy = 1 - sum|counted - true| / sum(true) over all lines, and frames per
CPU-second over all runs (one ONNX Runtime thread).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from accuracy import DETECTORS, GT, LINES, VIDEO  # noqa: E402
from groundtruth import crossing_totals, read_mot, true_crossings  # noqa: E402

from counterd.config import config_from_dict  # noqa: E402
from counterd.pipeline import Pipeline  # noqa: E402
from counterd.source import open_source  # noqa: E402


def count_line(detector: dict, line: tuple, roi_margin: float | None) -> tuple[dict, int, float, tuple | None]:
    """One line on its own: (counts in/out, frames, CPU seconds, the last crop region)."""
    (a, b) = line
    settings = {"detector": {**detector, "classes": ["person"], "threads": 1},
                "lines": [{"name": "line", "start": list(a), "end": list(b)}]}
    if roi_margin is not None:
        settings["detector"].update(roi_from_lines=True, roi_margin=roi_margin)
    config = config_from_dict(settings, "bench/roi.py")
    pipeline = Pipeline(config)
    frames, cpu0 = 0, time.process_time()
    region = None
    with open_source(str(VIDEO)) as source:
        for frame in source:
            pipeline.step(frame)
            frames += 1
            region = pipeline.roi.region(frame.image.shape[1], frame.image.shape[0])
        pipeline.finish()
    cpu = time.process_time() - cpu0
    pipeline.close()
    counts = {d: sum(c.values()) for d, c in pipeline.totals["line"].items()}
    return counts, frames, cpu, region


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--detectors", default="yolox_nano,yolov8n_int8_640")
    p.add_argument("--margins", default="1.0", help="comma-separated roi_margin values to try")
    args = p.parse_args()
    if not VIDEO.exists():
        print(f"needs {VIDEO} (../shared beside the repo)", file=sys.stderr)
        return 2
    gt = read_mot(GT)
    truth = {name: crossing_totals(true_crossings(gt, a, b)) for name, (a, b) in LINES.items()}
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
    result = []
    for det in args.detectors.split(","):
        variants = {"whole frame": None, **{f"roi margin {m}": float(m) for m in args.margins.split(",")}}
        errors = {v: 0 for v in variants}
        cpu = {v: 0.0 for v in variants}
        frames = {v: 0 for v in variants}
        print(f"\n{det}\n{'line':18} {'true':>7}" + "".join(f" {v:>16}" for v in variants) + "  region")
        for name, line in LINES.items():
            t = truth[name]
            row = f"{name:18} {t['in']:>3}/{t['out']:<3}"
            region = None
            for v, margin in variants.items():
                counts, n, seconds, last = count_line(DETECTORS[det], line, margin)
                errors[v] += abs(counts["in"] - t["in"]) + abs(counts["out"] - t["out"])
                cpu[v] += seconds
                frames[v] += n
                region = last if margin is not None else region
                row += f" {counts['in']:>8}/{counts['out']:<7}"
            print(row + f"  {region or 'whole frame'}", flush=True)
        total = sum(t["in"] + t["out"] for t in truth.values())
        print(f"{'accuracy':26}" + "".join(f" {1 - errors[v] / total:>16.3f}" for v in variants))
        print(f"{'frames per CPU-second':26}" + "".join(f" {frames[v] / cpu[v]:>16.1f}" for v in variants))
        result += [f"acc_{det}_{v.replace(' ', '_')}={1 - errors[v] / total:.3f}" for v in variants]
    print(f"load average {os.getloadavg()[0]:.2f}")
    print("RESULT " + " ".join(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
