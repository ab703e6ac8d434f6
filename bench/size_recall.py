"""How small may a person get in the model's input before the shared models stop finding them?

    python bench/size_recall.py [--detectors yolox_nano,yolo11n_int8_320,yolov8n_int8_640]
                                [--every 4] [--factors 1,0.75,0.5,0.35,0.25]

The floor of detector.mosaic's size rule (counterd/detect/mosaic.py MIN_MOSAIC_HEIGHT) comes from
here. The clips with box ground truth (PETS09-S2L1, TUD-Stadtmitte: MOT gt, every person in every
frame, occluded ones included) are shrunk into the model's input by each factor of the model's own
letterbox scale, placed as a mosaic tile is (grey around it, the frame resized with INTER_AREA),
and detected; a true box is found when a detected person overlaps it with IoU >= 0.5. Two
numbers per bin of the true box's height in model-input pixels (all factors together):
- recall: found / true. It mixes the clips (PETS people are small and often occluded, TUD's
  large), so it also says how hard each clip is, not only how size matters;
- kept: of the boxes found at the model's own scale (factor 1), the share still found when drawn
  at this height by a smaller factor: what shrinking costs the same people, free of that mix.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import accuracy  # noqa: E402  (shared paths and model files: one definition)
from counterd.config import config_from_dict  # noqa: E402
from counterd.detect import make_detector  # noqa: E402
from counterd.detect.mosaic import MosaicPlan  # noqa: E402
from counterd.detect.yolo import select, to_detections  # noqa: E402
from counterd.source import open_source  # noqa: E402
from counterd.track import box_iou  # noqa: E402
from counterd.truth import read_mot  # noqa: E402

CLIPS = {
    "pets": (accuracy.DATA / "pets09_s2l1" / "vtest_480x360.avi", accuracy.DATA / "pets09_s2l1" / "gt_480x360.txt"),
    "tud": (accuracy.DATA / "tud_stadtmitte" / "tud_stadtmitte_640x480.mp4",
            accuracy.DATA / "tud_stadtmitte" / "gt_640x480.txt"),
}
EDGES = (0, 8, 12, 16, 20, 24, 28, 32, 40, 48, 64, 96, 1e9)   # height bins, model-input pixels
MATCH_IOU = 0.5


def shrunk_plan(detector, width: int, height: int, factor: float) -> MosaicPlan:
    """One tile at `factor` of the model's letterbox scale, centred as the mosaic centres tiles."""
    th, tw = detector.size
    scale = min(th / height, tw / width) * factor
    nh, nw = round(height * scale), round(width * scale)
    return MosaicPlan(detector.size, (width, height), (nh, nw), (((th - nh) // 2, (tw - nw) // 2),), scale)


def detect_shrunk(detector, image: np.ndarray, plan: MosaicPlan) -> np.ndarray:
    xyxy, scores = detector._decode(detector._infer(plan.canvas([image]), detector.head))
    (inside, box), = plan.split(xyxy)
    kept = select(xyxy[inside], scores[inside], detector.coco_ids, detector.wanted,
                  detector.cfg.confidence, detector.cfg.nms_iou)
    return to_detections(*kept, box, *plan.frame_size).xyxy


def measure(model: str, every: int, factors: list[float]) -> tuple[np.ndarray, ...]:
    """(found, true, kept, found at factor 1) counts per height bin."""
    config = config_from_dict({"detector": {**accuracy.DETECTORS[model], "classes": ["person"], "threads": 1},
                               "lines": [{"name": "x", "start": [0, 0], "end": [1, 1]}]}, "bench/size_recall.py")
    detector = make_detector(config.detector)
    found, true, kept, base = (np.zeros(len(EDGES) - 1) for _ in range(4))
    for video, gt in CLIPS.values():
        mot = read_mot(gt)
        with open_source(str(video)) as source:
            for index, frame in enumerate(source, start=1):
                if index % every:
                    continue
                truth = mot.xyxy[mot.frame == index]
                if not len(truth):
                    continue
                at_full = None
                for factor in [1.0] + [f for f in factors if f != 1.0]:
                    plan = shrunk_plan(detector, source.width, source.height, factor)
                    boxes = detect_shrunk(detector, frame.image, plan)
                    hit = (box_iou(truth, boxes).max(axis=1) >= MATCH_IOU) if len(boxes) else np.zeros(len(truth), bool)
                    bins = np.digitize((truth[:, 3] - truth[:, 1]) * plan.scale, EDGES) - 1
                    if factor in factors:
                        np.add.at(true, bins, 1)
                        np.add.at(found, bins, hit)
                    if at_full is None:
                        at_full = hit
                    else:
                        np.add.at(base, bins, at_full)
                        np.add.at(kept, bins, hit & at_full)
    detector.close()
    return found, true, kept, base


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", default="yolox_nano,yolo11n_int8_320,yolov8n_int8_640")
    parser.add_argument("--every", type=int, default=4, help="use every Nth frame")
    parser.add_argument("--factors", default="1,0.75,0.5,0.35,0.25",
                        help="shrink factors of the model's own letterbox scale")
    args = parser.parse_args()
    if not (accuracy.DATA / "pets09_s2l1").exists():
        print(f"needs {accuracy.DATA} (../shared beside the repo)", file=sys.stderr)
        return 2
    factors = [float(f) for f in args.factors.split(",")]
    labels = [f"{EDGES[i]:g}-{EDGES[i + 1]:g}" if EDGES[i + 1] < 1e9 else f">={EDGES[i]:g}"
              for i in range(len(EDGES) - 1)]
    models = args.detectors.split(",")
    columns = {}
    for model in models:
        columns[model] = measure(model, args.every, factors)
        print(f"{model} done", file=sys.stderr, flush=True)
    print("true person boxes by height in model-input pixels: recall (found / true) | kept (still found "
          "when shrunk to this height / found at the model's own scale)\n")
    print("| height (input px) | " + " | ".join(f"{m} recall | {m} kept" for m in models) + " |")
    print("|---" * (2 * len(models) + 1) + "|")
    for i, label in enumerate(labels):
        cells = []
        for f, t, k, b in columns.values():
            cells.append(f"{f[i] / t[i]:.3f} ({int(t[i])})" if t[i] else "-")
            cells.append(f"{k[i] / b[i]:.3f} ({int(b[i])})" if b[i] else "-")
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
