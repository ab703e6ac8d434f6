"""Mosaic detection: several small frames through one inference of a fixed-size model.

A model with a fixed 640x640 input costs the same whatever it is fed. A 480x360 frame letterboxed
into it is scaled up by 1.33 and padded by a quarter: most of that inference is spent on
interpolated pixels and grey bars that carry no information. Two such frames scaled by 0.89 fill
the same input, one above the other, and one inference detects both: about half the CPU per frame,
with people a little smaller than in the source rather than a little larger.

    mosaic = MosaicDetector(onnx_detector)          # any OnnxDetector (YOLOv8/YOLO11 or YOLOX head)
    for a, b in pairs(frames):
        dets_a, dets_b = mosaic.detect_many([a.image, b.image])

The caller holds one frame back until its partner arrives (one frame of latency). A frame that
would shrink below `min_scale` in the mosaic is detected on its own instead.
"""
from __future__ import annotations

import cv2
import numpy as np

from counterd.detect.yolo import PAD_VALUE, decode_ultralytics, decode_yolox, select
from counterd.detections import Detections


class MosaicDetector:
    def __init__(self, detector, min_scale: float = 0.75):
        self.detector = detector            # an OnnxDetector: its session, head and class tables
        self.min_scale = min_scale
        self.inferences = 0

    def layout(self, count: int, height: int, width: int) -> tuple[float, list[tuple[int, int]], tuple[int, int]]:
        """(scale, top-left corner of each frame, (h, w) of each placed frame) for `count` frames
        of height x width stacked in the rows or the columns of the input, whichever scales more."""
        th, tw = self.detector.size
        rows = min(th / (height * count), tw / width)       # one above the other
        cols = min(th / height, tw / (width * count))       # side by side
        scale = max(rows, cols)
        nh, nw = round(height * scale), round(width * scale)
        if rows >= cols:
            top0, left = (th - nh * count) // 2, (tw - nw) // 2
            corners = [(top0 + k * nh, left) for k in range(count)]
        else:
            top, left0 = (th - nh) // 2, (tw - nw * count) // 2
            corners = [(top, left0 + k * nw) for k in range(count)]
        return scale, corners, (nh, nw)

    def detect_many(self, frames: list[np.ndarray]) -> list[Detections]:
        """Detections for each of same-sized BGR frames, from one inference when they fit."""
        height, width = frames[0].shape[:2]
        scale, corners, (nh, nw) = self.layout(len(frames), height, width)
        if len(frames) == 1 or scale < self.min_scale or any(f.shape[:2] != (height, width) for f in frames):
            return [self.detector.detect(f) for f in frames]
        det = self.detector
        canvas = np.full((*det.size, 3), PAD_VALUE, np.uint8)
        for (top, left), frame in zip(corners, frames):
            canvas[top:top + nh, left:left + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
        output = det._infer(canvas, det.head)
        self.inferences += 1
        if det.head == "ultralytics":
            xyxy, scores = decode_ultralytics(output)
        else:
            xyxy, scores = decode_yolox(output, det.size)
        # Each box belongs to the tile its centre lies in; NMS runs per tile, so a person at the
        # bottom of one frame never suppresses one at the top of the next.
        cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
        out = []
        for top, left in corners:
            inside = (cy >= top) & (cy < top + nh) & (cx >= left) & (cx < left + nw)
            boxes, conf, cls = select(xyxy[inside], scores[inside], det.coco_ids, det.wanted,
                                      det.cfg.confidence, det.cfg.nms_iou)
            boxes = (boxes - np.array([left, top, left, top], np.float32)) / scale
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
            real = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            out.append(Detections.from_arrays(boxes[real], conf[real], cls[real]))
        return out
