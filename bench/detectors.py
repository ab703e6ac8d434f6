"""Detector quality and speed on PETS09-S2L1: every shared model and the motion detector.

    python bench/detectors.py [--step 8] [--threads 1]

Runs each detector on every STEP-th frame of ../shared/data/pets09_s2l1/vtest_480x360.avi and
compares its person boxes with the ground truth (gt_480x360.txt): recall and precision at
IoU >= 0.5, and the share of true feet (bottom-centre anchors, what the line counter uses) with a
detection's anchor within 15 px. Time is the whole detect() call per frame. Inference times on a
shared machine are noisy: compare the detectors of one run with each other.

The motion detector sees every frame (it models the background over time) but is scored on the
same frames as the others.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from groundtruth import read_mot  # noqa: E402

from counterd.config import DetectorConfig  # noqa: E402
from counterd.detect import make_detector  # noqa: E402
from counterd.track import box_iou  # noqa: E402

SHARED = Path(os.environ.get("COUNTERD_SHARED", BENCH.parent.parent / "shared"))
VIDEO = SHARED / "data" / "pets09_s2l1" / "vtest_480x360.avi"
GT = SHARED / "data" / "pets09_s2l1" / "gt_480x360.txt"
MODELS = ("yolox_nano", "yolo11n_int8_320", "yolov8n_int8_640")
ANCHOR_PX = 15.0


class Score:
    def __init__(self):
        self.truth = self.found = self.detected = self.correct = self.feet = 0
        self.seconds = 0.0
        self.frames = 0

    def add(self, truth, dets, seconds: float) -> None:
        self.frames += 1
        self.seconds += seconds
        self.truth += len(truth)
        self.detected += len(dets)
        if len(truth) and len(dets):
            iou = box_iou(truth.xyxy, dets.xyxy)
            self.found += int((iou.max(axis=1) >= 0.5).sum())
            self.correct += int((iou.max(axis=0) >= 0.5).sum())
            gap = np.linalg.norm(truth.anchors()[:, None] - dets.anchors()[None], axis=2)
            self.feet += int((gap.min(axis=1) <= ANCHOR_PX).sum())

    def row(self, name: str) -> str:
        return (f"| {name} | {self.found / self.truth:.3f} | {self.correct / max(self.detected, 1):.3f} | "
                f"{self.feet / self.truth:.3f} | {1000 * self.seconds / self.frames:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=int, default=8, help="score every STEP-th frame")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    for path in (VIDEO, GT):
        if not path.exists():
            print(f"needs {path} (the project's ../shared material)", file=sys.stderr)
            return 2
    truth = dict(read_mot(GT).frames())
    capture = cv2.VideoCapture(str(VIDEO))
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    capture.release()
    scored = set(range(0, len(frames), args.step))

    detectors = {name: make_detector(DetectorConfig(model=str(SHARED / "models" / f"{name}.onnx"),
                                                    classes=("person",), threads=args.threads))
                 for name in MODELS}
    detectors["motion"] = make_detector(DetectorConfig(type="motion", classes=("person",)))
    scores = {name: Score() for name in detectors}
    for index, frame in enumerate(frames):
        for name, detector in detectors.items():
            if index not in scored and name != "motion":
                continue
            start = time.perf_counter()
            dets = detector.detect(frame)
            seconds = time.perf_counter() - start
            if index in scored:
                scores[name].add(truth[index + 1], dets, seconds)

    print(f"PETS09-S2L1, {len(scored)} of {len(frames)} frames, {args.threads} thread(s)\n")
    print("| detector | recall@0.5 | precision@0.5 | feet within 15 px | ms/frame |")
    print("|---|---|---|---|---|")
    for name, score in scores.items():
        print(score.row(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
