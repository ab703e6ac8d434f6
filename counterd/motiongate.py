"""Motion gating: skip detection while the scene is static; and the stride's look for newcomers.

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


def shrink_grey(image: np.ndarray, width: int) -> np.ndarray:
    """The frame in grey, `width` pixels wide (at most its own width), each pixel the mean of
    4 x 4 samples of its block: averaging quiets sensor and compression noise, which a sparser
    sample lets through as change (the motion gate, at its 64 px width, woke on 0.99 of the car
    clip's frames with 2 x 2 or 4 x 4 samples a pixel, 0.95 averaging every pixel; the look, on
    a grid 3 to 8 times finer, rests as often with 4 x 4 as with every pixel). Averaging every frame pixel (INTER_AREA at any ratio) costs 1.2 ms a
    640x480 frame and 4.4 ms a 1080p one; shrinking first to twice the size by linear
    interpolation (2 x 2 samples a pixel), then halving by INTER_AREA's exact 2:1 path costs
    about 0.1 ms. Grey after shrinking: it converts a few thousand pixels, not the whole frame."""
    h, w = image.shape[:2]
    width = min(width, w)
    height = max(1, round(h * width / w))
    if w >= 2 * width and h >= 2 * height:
        image = cv2.resize(image, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small


# The smallest object any shared model finds, in model-input pixels: below 12 px tall recall is
# 0.000-0.011 for every model (bench/size_recall.py, "Mosaic by object size" in bench/RESULTS.md).
# Something smaller that moves cannot become a track, so it is no newcomer yet.
FINDABLE_INPUT_PX = 12
CELLS_PER_FINDABLE = 3      # the look's grid: the smallest findable object spans this many cells


class NewcomerLook:
    """On a frame the stride or the motion gate would rest: has something moved that no tracked
    object explains?

    The guards look at tracked objects and at the counter; an object nothing tracks yet (just
    entered, or found only weakly so far) is invisible to them, and if its only confident
    detections fall on rested frames it is never tracked at all. The motion gate's share of
    changed pixels misses it too where it is small in the picture. So the frame is compared in grey,
    on a grid of a third of the smallest object the detector can find, with the last detected
    frame; changed cells inside a tracked object's box, widened by how far the stride lets it move
    during a rest (stride_max_shift of its size) plus a cell, are that object's own motion. A
    connected patch of the rest as tall as a findable object is a newcomer: the frame is detected.
    """

    def __init__(self, pixel_delta: int, max_shift: float):
        self.pixel_delta = pixel_delta      # grey-level change that counts as motion (gating.pixel_delta)
        self.max_shift = max_shift          # share of its size a track may move while the detector rests
        self._detected: np.ndarray | None = None    # the last detected frame, shrunk when first needed
        self._reference: np.ndarray | None = None
        self._size: tuple[int, int] | None = None   # (height, width) of the last detected frame
        self._cell = 1.0                    # frame pixels per grid cell

    def detected(self, image: np.ndarray, input_px: float | None) -> None:
        """A detected frame: the reference that rested frames are compared with. input_px: frame
        pixels per model-input pixel (None: unknown, then the frame's own pixels). Kept as it is
        until a rest is considered: a scene where the stride never rests pays nothing."""
        findable = FINDABLE_INPUT_PX * (input_px or 1.0)
        self._cell = max(findable / CELLS_PER_FINDABLE, 1.0)
        self._detected, self._reference, self._size = image, None, image.shape[:2]

    def sees_newcomer(self, image: np.ndarray, tracked: np.ndarray) -> bool:
        """Whether this frame shows unexplained motion; tracked: (N, 4) boxes of the objects
        tracked at the last detection, in frame pixels."""
        if self._size is None or image.shape[:2] != self._size:
            return True                     # nothing detected yet, or the frame size changed
        if self._reference is None:
            width = max(1, int(np.ceil(self._size[1] / self._cell)))
            self._reference, self._detected = shrink_grey(self._detected, width), None
        small = shrink_grey(image, self._reference.shape[1])
        changed = (cv2.absdiff(small, self._reference) >= self.pixel_delta).astype(np.uint8)
        if not np.count_nonzero(changed):
            return False
        for x1, y1, x2, y2 in self._explained_cells(tracked, small.shape, self._size[1] / small.shape[1]):
            changed[y1:y2, x1:x2] = 0
        if np.count_nonzero(changed) < CELLS_PER_FINDABLE:
            return False
        # A moving body's change comes in pieces (legs, edges); closing joins a body's pieces.
        changed = cv2.morphologyEx(changed, cv2.MORPH_CLOSE, CLOSE_KERNEL)
        count, _labels, stats, _centroids = cv2.connectedComponentsWithStats(changed, connectivity=8)
        return bool(count > 1 and stats[1:, cv2.CC_STAT_HEIGHT].max() >= CELLS_PER_FINDABLE)

    def _explained_cells(self, boxes: np.ndarray, shape: tuple[int, int], cell: float) -> np.ndarray:
        """(N, 4) int grid rectangles (cell: frame pixels per grid cell) that each tracked object
        may have changed during a rest."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        size = boxes[:, 2:] - boxes[:, :2]
        reach = self.max_shift * np.concatenate([size, size], axis=1) * [-1, -1, 1, 1]
        cells = (boxes + reach) / cell + [-1, -1, 1, 1]
        cells = np.concatenate([np.floor(cells[:, :2]), np.ceil(cells[:, 2:])], axis=1)
        height, width = shape
        return np.clip(cells, 0, [width, height, width, height]).astype(np.int64)


CLOSE_KERNEL = np.ones((3, 3), np.uint8)
