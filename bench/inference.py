"""Inference engines side by side: the same weights, the same letterboxed frames, one thread.

    python bench/inference.py [--models yolox_nano,yolo11n_int8_320,yolov8n_int8_640] [--rounds 5]
                              [--frames 40] [--optimized DIR]
    python bench/inference.py --fit [--models ...] [--rounds 5] [--frames 40]

For each model: ONNX Runtime as counterd ships it, the copy `counterd model optimize` writes
(calibrated on the PETS clip, the site of this benchmark; made here unless --optimized holds
<model>_optimized.onnx; its candidates' times and agreement are printed), and OpenVINO's runtime on
both files when `openvino` is installed. CPU time per
inference (process CPU, one intra-op thread, pinned to one core), the least over rounds that rotate
who goes first, so other work on a shared box disturbs it less; the wall time beside it.

With --fit: the square input against detector.fit_input (the input cut to the frames' aspect at
the first frame, counterd/detect/fitinput.py), in ONNX Runtime and OpenVINO, on 4:3 frames (PETS,
480x360) and 16:9 frames (the car clip, 640x360); no optimised copies are made.
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
FIT_VIDEOS = {"4:3": VIDEO, "16:9": SHARED / "data" / "traffic" / "car_traffic_small.mp4"}


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


def fit_engines(model: Path) -> dict[str, DetectorConfig]:
    out = {"ort square": DetectorConfig(model=str(model), fit_input=False),
           "ort fitted": DetectorConfig(model=str(model))}
    try:
        import openvino  # noqa: F401
    except ImportError:
        print("openvino not installed: its rows are left out", file=sys.stderr)
        return out
    out["openvino square"] = DetectorConfig(type="openvino", model=str(model), fit_input=False)
    out["openvino fitted"] = DetectorConfig(type="openvino", model=str(model))
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
    p.add_argument("--fit", action="store_true", help="square input against detector.fit_input, 4:3 and 16:9")
    args = p.parse_args()
    if not VIDEO.exists():
        print(f"needs {VIDEO} (../shared beside the repo)", file=sys.stderr)
        return 2
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    if args.fit:
        return compare_fit(args)
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
        result += time_engines(name, engines(model, qdq), frames, args.rounds, "ort")
    print(f"load average {os.getloadavg()[0]:.2f}")
    print("RESULT " + " ".join(result))
    return 0


def compare_fit(args) -> int:
    print(f"load average {os.getloadavg()[0]:.2f}; {args.frames} frames x {args.rounds} rounds", flush=True)
    print(f"{'model':18} {'engine':20} {'CPU ms (min)':>12} {'wall ms (median)':>17} {'x square':>8}")
    result = []
    for aspect, video in FIT_VIDEOS.items():
        frames = calibration_frames(str(video), args.frames, 7)
        height, width = frames[0].shape[:2]
        print(f"-- {aspect}: {video.name} {width}x{height}", flush=True)
        for name in args.models.split(","):
            configs = fit_engines(SHARED / "models" / f"{name}.onnx")
            rows = time_engines(name, configs, frames, args.rounds, "ort square", label=f"{aspect} ")
            result += [f"{aspect}/{row}" for row in rows]
    print(f"load average {os.getloadavg()[0]:.2f}")
    print("RESULT " + " ".join(result))
    return 0


def time_engines(name: str, configs: dict[str, DetectorConfig], frames: list[np.ndarray], rounds: int,
                 base_key: str, label: str = "") -> list[str]:
    """Each engine over the frames `rounds` times, rotating who goes first; prints a row per
    engine (least CPU ms, median wall ms, speed against base_key) and returns name/engine=ms."""
    result = []
    detectors = {}
    for k, cfg in configs.items():
        try:
            detectors[k] = make_detector(cfg)
            detectors[k].detect(frames[0])     # fit_input rewrites the graph at the first frame
        except UserError as exc:
            print(f"{name:18} {k:14} cannot run it: {str(exc)[:160]}")
    cpu: dict[str, list[float]] = {k: [] for k in detectors}
    wall: dict[str, list[float]] = {k: [] for k in detectors}
    order = list(detectors)
    for r in range(rounds):
        for k in order[r % len(order):] + order[:r % len(order)]:
            c, w = time_engine(detectors[k], frames)
            cpu[k].append(c)
            wall[k].append(w)
    base = min(cpu[base_key])
    for k in order:
        best = min(cpu[k])
        engine = f"{label}{k} {detectors[k].size[1]}x{detectors[k].size[0]}" if label else k
        print(f"{name:18} {engine:20} {best:12.2f} {float(np.median(wall[k])):17.2f} {base / best:8.2f}")
        result.append(f"{name}/{k.replace(' ', '_')}={best:.2f}")
    for d in detectors.values():
        d.close()
    return result


if __name__ == "__main__":
    raise SystemExit(main())
