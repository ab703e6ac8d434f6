"""Inference engines side by side: the same weights, the same letterboxed frames, one thread.

    python bench/inference.py [--models yolox_nano,yolo11n_int8_320,yolov8n_int8_640] [--rounds 5]
                              [--frames 40] [--optimized DIR]

For each model: ONNX Runtime as counterd ships it, the copy `counterd model optimize` writes
(calibrated on the PETS clip, the site of this benchmark; made here unless --optimized holds
<model>_optimized.onnx; its candidates' times and agreement are printed), and OpenVINO's runtime on
both files when `openvino` is installed. CPU time per
inference (process CPU, one intra-op thread, pinned to one core), the least over rounds that rotate
who goes first, so other work on a shared box disturbs it less; the wall time beside it.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

from counterd.config import DetectorConfig  # noqa: E402
from counterd.detect import make_detector  # noqa: E402
from counterd.errors import UserError  # noqa: E402
from counterd.detect.optimize import calibration_frames, optimize  # noqa: E402

SHARED = Path(os.environ.get("COUNTERD_SHARED", BENCH.parent.parent / "shared"))
VIDEO = SHARED / "data" / "pets09_s2l1" / "vtest_480x360.avi"


def engines(model: Path, qdq: Path) -> dict[str, DetectorConfig]:
    out = {
        "ort": DetectorConfig(model=str(model)),
        "ort optimized": DetectorConfig(model=str(qdq)),
    }
    try:
        import openvino  # noqa: F401
    except ImportError:
        print("openvino not installed: its rows are left out", file=sys.stderr)
        return out
    out["openvino"] = DetectorConfig(type="openvino", model=str(model))
    out["openvino optimized"] = DetectorConfig(type="openvino", model=str(qdq))
    return out


def time_engine(detector, frames: list[np.ndarray]) -> tuple[float, float]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for frame in frames:
        detector.detect(frame)
    n = len(frames)
    return 1000 * (time.process_time() - cpu0) / n, 1000 * (time.perf_counter() - wall0) / n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="yolox_nano,yolo11n_int8_320,yolov8n_int8_640")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--optimized", default="", help="directory with <model>_qdq.onnx (default: make them)")
    args = p.parse_args()
    if not VIDEO.exists():
        print(f"needs {VIDEO} (../shared beside the repo)", file=sys.stderr)
        return 2
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    frames = calibration_frames(str(VIDEO), args.frames, 7)   # a different subset from calibration's
    workdir = Path(args.optimized or tempfile.mkdtemp(prefix="counterd-qdq-"))
    print(f"load average {os.getloadavg()[0]:.2f}; {len(frames)} frames x {args.rounds} rounds", flush=True)
    print(f"{'model':18} {'engine':14} {'CPU ms (min)':>12} {'wall ms (median)':>17} {'x ort':>6}")
    result = []
    for name in args.models.split(","):
        model = SHARED / "models" / f"{name}.onnx"
        qdq = workdir / f"{name}_optimized.onnx"
        if not qdq.exists():
            summary = optimize(model, str(VIDEO), qdq)
            print(f"{name}: counterd model optimize kept {summary['kept']} at {summary['input_size']}; "
                  f"candidates CPU ms {summary['ms_per_frame']}, agreement {summary['agreement']}", flush=True)
        detectors = {}
        for k, cfg in engines(model, qdq).items():
            try:
                detectors[k] = make_detector(cfg)
            except UserError as exc:
                print(f"{name:18} {k:14} cannot run it: {str(exc)[:160]}")
        cpu: dict[str, list[float]] = {k: [] for k in detectors}
        wall: dict[str, list[float]] = {k: [] for k in detectors}
        order = list(detectors)
        for r in range(args.rounds):
            for k in order[r % len(order):] + order[:r % len(order)]:
                c, w = time_engine(detectors[k], frames)
                cpu[k].append(c)
                wall[k].append(w)
        base = min(cpu["ort"])
        for k in order:
            best = min(cpu[k])
            print(f"{name:18} {k:14} {best:12.2f} {float(np.median(wall[k])):17.2f} {base / best:6.2f}")
            result.append(f"{name}/{k.replace(' ', '_')}={best:.2f}")
        for d in detectors.values():
            d.close()
    print(f"load average {os.getloadavg()[0]:.2f}")
    print("RESULT " + " ".join(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
