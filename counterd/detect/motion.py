"""The `motion` backend: background subtraction, no weights.

For overhead cameras, where people seen from above are distinct blobs a COCO model was never
trained on, and for the demo. Every blob is one object of detector.motion.class_name.
"""
from __future__ import annotations

import cv2
import numpy as np

from counterd.classes import CLASS_IDS
from counterd.config import DetectorConfig
from counterd.detect import Detector
from counterd.detections import Detections

SHADOW_CUTOFF = 200    # MOG2 and KNN mark shadows 127 and foreground 255: shadows are not objects
WARMUP_FRAMES = 2      # the first frames are all "new"; their blobs are the whole scene
MAX_AREA_FRACTION = 0.5  # a blob over half the frame is a lighting change or camera shake
MOTION_CONFIDENCE = 1.0  # blobs carry no score; 1 lets the tracker start and keep tracks on them


class MotionDetector(Detector):
    def __init__(self, cfg: DetectorConfig):
        super().__init__(cfg)
        motion = cfg.motion
        self.class_id = CLASS_IDS[motion.class_name]
        self.open_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self.close_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (motion.merge_px, motion.merge_px))
        self.restart(None)

    def restart(self, shape: tuple[int, ...] | None) -> None:
        """A fresh background model, for the first frame or after the frame size changed (a
        camera that reconnects at another resolution): the old model cannot take the new size."""
        motion = self.cfg.motion
        if motion.algorithm == "knn":
            self.subtractor = cv2.createBackgroundSubtractorKNN(history=motion.history, detectShadows=True)
        else:
            self.subtractor = cv2.createBackgroundSubtractorMOG2(history=motion.history, detectShadows=True)
        self.shape = shape
        self.frames = 0

    def input_scale(self, width: int, height: int) -> float:
        """Background subtraction works on the frame's own pixels."""
        return 1.0

    def describe(self) -> str:
        m = self.cfg.motion
        return f"motion ({m.algorithm}, history {m.history}, min area {m.min_area} px, as {m.class_name})"

    def foreground(self, frame: np.ndarray) -> np.ndarray:
        """Binary mask of moving pixels, cleaned: specks removed, fragments of one body joined."""
        mask = self.subtractor.apply(frame)
        _, mask = cv2.threshold(mask, SHADOW_CUTOFF, 255, cv2.THRESH_BINARY)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self.open_kernel)
        return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.close_kernel)

    def detect(self, frame: np.ndarray) -> Detections:
        if frame.shape != self.shape:
            self.restart(frame.shape)
        mask = self.foreground(frame)
        self.frames += 1
        if self.frames <= WARMUP_FRAMES or not self.wanted[self.class_id]:
            return Detections.empty()
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        stats = stats[1:]   # row 0 is the background
        area = stats[:, cv2.CC_STAT_AREA]
        keep = (area >= self.cfg.motion.min_area) & (area <= MAX_AREA_FRACTION * mask.size)
        x, y, w, h = (stats[keep, k].astype(np.float32) for k in
                      (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
        n = len(x)
        return Detections.from_arrays(np.stack([x, y, x + w, y + h], axis=1), np.full(n, MOTION_CONFIDENCE),
                                      np.full(n, self.class_id))
