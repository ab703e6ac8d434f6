"""What the stride's look for newcomers costs per frame (counterd/motiongate.py NewcomerLook).

    python bench/newcomer_look.py [--frames 200] [--boxes 20]

For each scene of bench/accuracy.py (and PETS upscaled to 1920x1080, a common camera size), at
each shared model's input scale: the mean ms of shrinking a frame to the look's grid (the
reference, paid once per detected frame after which a rest is considered) and of
`sees_newcomer` (on each frame the stride would rest), on the clip's real frames, with `--boxes` tracked boxes to explain (spread over the picture). One core, one job;
note `uptime` beside the numbers, the box is shared.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import accuracy  # noqa: E402  (scenes and models: one definition)
from counterd.config import GatingConfig  # noqa: E402
from counterd.detect import make_detector  # noqa: E402
from counterd.motiongate import NewcomerLook, shrink_grey  # noqa: E402
from counterd.source import open_source  # noqa: E402

MODELS = ("yolox_nano", "yolo11n_int8_320", "yolov8n_int8_640")


def frames_of(video: Path, count: int, size: tuple[int, int] | None) -> list[np.ndarray]:
    with open_source(str(video)) as source:
        images = [f.image for f in itertools.islice(source, count)]
    return [cv2.resize(i, size) for i in images] if size else images


def spread_boxes(width: int, height: int, n: int) -> np.ndarray:
    """n person-sized boxes (a sixth of the height) on a grid over the picture."""
    h = height / 6
    xs = np.linspace(0, width - h / 2, n)
    ys = np.linspace(0, height - h, n)[np.random.default_rng(0).permutation(n)]
    return np.stack([xs, ys, xs + h / 2, ys + h], axis=1)


def cost(images: list[np.ndarray], input_px: float, boxes: np.ndarray) -> tuple[float, float]:
    gating = GatingConfig()
    look = NewcomerLook(gating.pixel_delta, gating.stride_max_shift)
    look.detected(images[0], input_px)
    look.sees_newcomer(images[1], boxes)          # shrinks the reference
    width = look._reference.shape[1]
    t0 = time.perf_counter()
    for image in images:
        shrink_grey(image, width)
    reference_ms = 1000 * (time.perf_counter() - t0) / len(images)
    t0 = time.perf_counter()
    for image in images[1:]:
        look.sees_newcomer(image, boxes)
    return reference_ms, 1000 * (time.perf_counter() - t0) / (len(images) - 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--boxes", type=int, default=20)
    args = parser.parse_args()
    if not (accuracy.DATA / "pets09_s2l1").exists():
        print(f"needs {accuracy.DATA} (../shared beside the repo)", file=sys.stderr)
        return 2
    cv2.setNumThreads(1)
    clips = [(name, accuracy.SCENES[name]().video, None) for name in accuracy.SCENES]
    clips.append(("pets at 1920x1080", accuracy.SCENES["pets"]().video, (1920, 1080)))
    scales = {}
    for model in MODELS:
        detector = make_detector(accuracy.config_from_dict(
            {"detector": accuracy.DETECTORS[model]}, "bench/newcomer_look.py").detector)
        scales[model] = detector
    print(f"ms per frame, reference (each detected frame) / look (each frame the stride would rest), "
          f"{args.boxes} tracked boxes; load {os.getloadavg()[0]:.1f}\n")
    print("| clip (frame size) | " + " | ".join(MODELS) + " |")
    print("|---" * (len(MODELS) + 1) + "|")
    for name, video, size in clips:
        images = frames_of(video, args.frames, size)
        h, w = images[0].shape[:2]
        boxes = spread_boxes(w, h, args.boxes)
        cells = []
        for model in MODELS:
            reference_ms, look_ms = cost(images, scales[model].input_scale(w, h), boxes)
            cells.append(f"{reference_ms:.2f} / {look_ms:.2f}")
        print(f"| {name} ({w}x{h}) | " + " | ".join(cells) + " |")
    for detector in scales.values():
        detector.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
