"""Motion gating: skip detection while the scene is static.

Each frame is shrunk to `width` pixels wide in grey and compared with the last frame that was
detected on. Motion means at least `min_changed` of the pixels moved by `pixel_delta` grey levels.
Comparing with the last *detected* frame, not the previous one, means a slow walker still
accumulates enough change to wake detection. A detection runs at least every `max_skip_s` anyway,
so something that became still (a parked car) is re-confirmed and its track kept fresh.
"""
from __future__ import annotations

import cv2
import numpy as np

from counterd.config import GatingConfig


class MotionGate:
    def __init__(self, cfg: GatingConfig):
        self.cfg = cfg
        self._reference: np.ndarray | None = None
        self._detected_at = float("-inf")
        self.skipped = 0

    def reconfigure(self, cfg: GatingConfig) -> None:
        if cfg.width != self.cfg.width:
            self._reference = None
        self.cfg = cfg

    def should_detect(self, image: np.ndarray, timestamp: float) -> bool:
        """True when the frame must go through detection; False when it may be skipped."""
        if not self.cfg.enabled:
            return True
        small = self._shrink(image)
        moved = (self._reference is None or small.shape != self._reference.shape
                 or timestamp - self._detected_at >= self.cfg.max_skip_s
                 or timestamp < self._detected_at          # a looped file starts again
                 or self._changed_fraction(small) >= self.cfg.min_changed)
        if moved:
            self._reference = small
            self._detected_at = timestamp
        else:
            self.skipped += 1
        return moved

    def _shrink(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        width = min(self.cfg.width, w)
        height = max(1, round(h * width / w))
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        # INTER_AREA averages each block, which also suppresses sensor noise.
        return cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)

    def _changed_fraction(self, small: np.ndarray) -> float:
        diff = cv2.absdiff(small, self._reference)
        return float(np.count_nonzero(diff >= self.cfg.pixel_delta)) / diff.size
