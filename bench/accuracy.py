"""Count accuracy on PETS09-S2L1 against ground truth, for every shared model and the motion detector.

    python bench/accuracy.py [--detectors yolox_nano,motion] [--threads 1] [--model NAME=FILE ...]
                             [--option SECTION.KEY=VALUE ...]

For each detector, one pass over ../shared/data/pets09_s2l1/vtest_480x360.avi counts every line
below at once; true crossings come from gt_480x360.txt by the rule in ../shared/data/README.md.
Accuracy = 1 - sum|counted - true| / sum(true), over all lines and both directions. The clip is
10 fps, so fps > 10 is faster than real time.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from groundtruth import crossing_totals, read_mot, true_crossings  # noqa: E402

from counterd.config import config_from_dict  # noqa: E402
from counterd.pipeline import Pipeline  # noqa: E402
from counterd.source import open_source  # noqa: E402

SHARED = Path(os.environ.get("COUNTERD_SHARED", BENCH.parent.parent / "shared"))
VIDEO = SHARED / "data" / "pets09_s2l1" / "vtest_480x360.avi"
GT = SHARED / "data" / "pets09_s2l1" / "gt_480x360.txt"
CLIP_FPS = 10.0

# Vertical, horizontal, diagonal, a short segment, and lines near the frame's edges (480x360).
# Nearer the right edge than x = 440 the ground truth is incomplete: its tracks start and end
# 10-40 px inside the picture, where a detector already sees people entering, so a line there
# measures the annotation rather than the counter.
LINES = {
    "v120": ((120, 0), (120, 360)),
    "v240": ((240, 0), (240, 360)),
    "v360": ((360, 0), (360, 360)),
    "v440_right_edge": ((440, 0), (440, 360)),
    "v20_left_edge": ((20, 0), (20, 360)),
    "h330_bottom_edge": ((0, 330), (480, 330)),
    "h130": ((0, 130), (480, 130)),
    "h180": ((0, 180), (480, 180)),
    "h250": ((0, 250), (480, 250)),
    "diagonal": ((0, 0), (480, 360)),
    "antidiagonal": ((0, 360), (480, 0)),
    "segment": ((150, 150), (330, 150)),
}
DETECTORS = {
    "yolov8n_int8_640": {"type": "onnx", "model": str(SHARED / "models" / "yolov8n_int8_640.onnx")},
    "yolo11n_int8_320": {"type": "onnx", "model": str(SHARED / "models" / "yolo11n_int8_320.onnx")},
    "yolox_nano": {"type": "onnx", "model": str(SHARED / "models" / "yolox_nano.onnx")},
    "motion": {"type": "motion"},
}


def count_video(detector: dict, threads: int, options: dict | None = None) -> tuple[dict, float, int]:
    settings = {
        "detector": {**detector, "classes": ["person"], "threads": threads},
        "lines": [{"name": n, "start": list(a), "end": list(b)} for n, (a, b) in LINES.items()],
    }
    for key, value in (options or {}).items():
        section, _, name = key.rpartition(".")
        settings.setdefault(section, {})[name] = value
    config = config_from_dict(settings, "bench/accuracy.py")
    with open_source(str(VIDEO)) as source:
        pipeline = Pipeline(config)
        frames, started = 0, time.perf_counter()
        for frame in source:
            pipeline.step(frame)
            frames += 1
        pipeline.finish()
        seconds = time.perf_counter() - started
        pipeline.close()
    print(f"  {pipeline.times.frames} of {frames} frames went through the detector", file=sys.stderr)
    counted = {line: {d: sum(by_class.values()) for d, by_class in dirs.items()}
               for line, dirs in pipeline.totals.items()}
    return counted, frames / seconds, frames


def accuracy(counted: dict, truth: dict) -> float:
    error = sum(abs(counted[line][d] - truth[line][d]) for line in truth for d in ("in", "out"))
    return 1.0 - error / sum(truth[line][d] for line in truth for d in ("in", "out"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", default=",".join(DETECTORS), help="comma-separated subset")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FILE",
                        help="also measure this model file (e.g. one from `counterd model optimize`), "
                             "added to --detectors; repeatable")
    parser.add_argument("--option", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a config setting for every run, VALUE in TOML (e.g. detector.roi_from_lines=true, "
                             "gating.stride=true); repeatable")
    args = parser.parse_args()
    options = {k: tomllib.loads(f"v = {v}")["v"] for k, _, v in (o.partition("=") for o in args.option)}
    for spec in args.model:
        name, _, path = spec.partition("=")
        DETECTORS[name] = {"type": "onnx", "model": path}
        args.detectors += f",{name}"
    if not VIDEO.exists():
        print(f"needs {VIDEO} (../shared beside the repo)", file=sys.stderr)
        return 2
    gt = read_mot(GT)
    truth = {line: crossing_totals(true_crossings(gt, a, b)) for line, (a, b) in LINES.items()}
    results = {}
    for name in args.detectors.split(","):
        counted, fps, frames = count_video(DETECTORS[name], args.threads, options)
        results[name] = (counted, fps, accuracy(counted, truth))
        print(f"{name}: {frames} frames, {fps:.1f} fps, accuracy {results[name][2]:.3f}", file=sys.stderr)

    names = list(results)
    header = f"{'line':18} {'true in/out':>11}" + "".join(f" {n[:16]:>16}" for n in names)
    print(header)
    print("-" * len(header))
    for line in LINES:
        row = f"{line:18} {truth[line]['in']:>5}/{truth[line]['out']:<5}"
        for n in names:
            c = results[n][0][line]
            row += f" {c['in']:>8}/{c['out']:<7}"
        print(row)
    print("-" * len(header))
    print(f"{'accuracy':30}" + "".join(f" {results[n][2]:>16.3f}" for n in names))
    print(f"{'fps (clip is 10)':30}" + "".join(f" {results[n][1]:>16.1f}" for n in names))
    best = max(names, key=lambda n: (results[n][1] > CLIP_FPS, results[n][2]))
    print("RESULT " + " ".join(f"acc_{n}={results[n][2]:.3f} fps_{n}={results[n][1]:.1f}" for n in names)
          + f" best={best}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
