"""The one struct-of-arrays that flows through the hot loop: detect -> track -> count."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from counterd.choices import ANCHORS
# Each anchor as weights on a box's (x1, y1, x2, y2): anchors = xyxy @ ANCHOR_WEIGHTS[anchor],
# one matrix product for all boxes (the counter calls this every frame).
ANCHOR_WEIGHTS = {
    name: np.array([[0.5, 0], [0, 1 - bottom], [0.5, 0], [0, bottom]], np.float32)
    for name, bottom in (("bottom-center", 1.0), ("center", 0.5), ("top-center", 0.0))
}


@dataclass(slots=True)
class Detections:
    """N objects in one frame. Rows line up across the arrays; filter with a boolean mask.

    xyxy: (N, 4) float32 pixel boxes in the original frame; confidence: (N,) float32;
    class_id: (N,) int32 COCO ids; tracker_id: (N,) int64, -1 until the tracker assigns one.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    tracker_id: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                   np.zeros(0, np.int32), np.zeros(0, np.int64))

    @classmethod
    def from_arrays(cls, xyxy, confidence, class_id, tracker_id=None) -> Detections:
        xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
        n = len(xyxy)
        tracker_id = np.full(n, -1, np.int64) if tracker_id is None else np.asarray(tracker_id, np.int64)
        return cls(xyxy, np.asarray(confidence, np.float32).reshape(n),
                   np.asarray(class_id, np.int32).reshape(n), tracker_id.reshape(n))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> Detections:
        """Rows by boolean mask, index array or slice; always returns Detections."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index],
                          self.tracker_id[index])

    def anchors(self, anchor: str = "bottom-center") -> np.ndarray:
        """(N, 2) points that stand for each object when it crosses a line."""
        weights = ANCHOR_WEIGHTS.get(anchor)
        if weights is None:
            raise ValueError(f"unknown anchor {anchor!r}; expected one of {', '.join(ANCHORS)}")
        return self.xyxy @ weights
