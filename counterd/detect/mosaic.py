"""Mosaic: several small frames through one inference of a fixed-size model.

A model with a fixed 640x640 input costs the same whatever it is fed. A 480x360 frame letterboxed
into it is scaled up by 1.33 and padded by a quarter: most of that inference is spent on
interpolated pixels and grey bars that carry no information. Two such frames scaled by 0.89 fill
the same input one above the other, and one inference detects both: about half the CPU per frame,
with people a little smaller than in the source rather than a little larger. Measured in
bench/RESULTS.md ("Compared with ultralytics and supervision").
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from counterd.detect.yolo import PAD_VALUE, Letterbox

MIN_MOSAIC_SCALE = 0.75   # below this the people get too small: frames go through one at a time


@dataclass(frozen=True)
class MosaicPlan:
    input_size: tuple[int, int]          # network (height, width)
    frame_size: tuple[int, int]          # each frame's (width, height)
    placed: tuple[int, int]              # each frame's (height, width) in the input
    corners: tuple[tuple[int, int], ...]  # each frame's (top, left) in the input
    scale: float

    def canvas(self, frames: list[np.ndarray]) -> np.ndarray:
        image = np.full((*self.input_size, 3), PAD_VALUE, np.uint8)
        nh, nw = self.placed
        for (top, left), frame in zip(self.corners, frames):
            image[top:top + nh, left:left + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
        return image

    def split(self, xyxy: np.ndarray) -> list[tuple[np.ndarray, Letterbox]]:
        """Per frame: which boxes are its own (the box centre lies in its tile, so NMS never lets
        a person at the bottom of one frame suppress one at the top of the next), and the mapping
        of those boxes back to frame pixels."""
        cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
        nh, nw = self.placed
        return [((cy >= top) & (cy < top + nh) & (cx >= left) & (cx < left + nw),
                 Letterbox(self.scale, float(left), float(top))) for top, left in self.corners]


def mosaic_plan(input_size: tuple[int, int], frames: list[np.ndarray], min_scale: float) -> MosaicPlan | None:
    """Stack the frames in the rows or the columns of the input, whichever scales them more; None
    when there is one frame, their sizes differ, or they would shrink below min_scale."""
    height, width = frames[0].shape[:2]
    count = len(frames)
    if count < 2 or any(f.shape[:2] != (height, width) for f in frames):
        return None
    th, tw = input_size
    rows = min(th / (height * count), tw / width)       # one above the other
    cols = min(th / height, tw / (width * count))       # side by side
    scale = max(rows, cols)
    if scale < min_scale:
        return None
    nh, nw = round(height * scale), round(width * scale)
    if rows >= cols:
        top0, left = (th - nh * count) // 2, (tw - nw) // 2
        corners = tuple((top0 + k * nh, left) for k in range(count))
    else:
        top, left0 = (th - nh) // 2, (tw - nw * count) // 2
        corners = tuple((top, left0 + k * nw) for k in range(count))
    return MosaicPlan(input_size, (width, height), (nh, nw), corners, scale)
