"""Mosaic: several small frames through one inference of a fixed-size model.

A model with a fixed 640x640 input costs the same whatever it is fed. A 480x360 frame letterboxed
into it is scaled up by 1.33 and padded by a quarter: most of that inference is spent on
interpolated pixels and grey bars that carry no information. Two such frames scaled by 0.89 fill
the same input one above the other, and one inference detects both: about half the CPU per frame,
with people a little smaller than in the source rather than a little larger. Measured in
bench/RESULTS.md ("Compared with ultralytics and supervision").

Whether two frames may share an inference depends on the objects, not the frame: the pipeline
pairs frames only while every tracked object at or heading for a line would still be at least
MIN_MOSAIC_HEIGHT pixels tall in the model's input at the mosaic's scale (Pipeline.mosaic_fits),
and detects singly otherwise, or when nothing is tracked yet (a newcomer is found at full size).
Off by default: even above that floor a mosaic changes counts by more than issue 11 allows on
three of the five scenes with ground truth (bench/RESULTS.md, "Detect less, count the same").
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from counterd.detect.yolo import PAD_VALUE, Letterbox

# Box height in model-input pixels below which the shared models lose people fast: of the PETS/TUD
# people a model finds at its own scale, drawn smaller it still finds 0.94-0.96 at 32-40 px (all
# three models), 0.87-0.94 at 24-28 px, 0.48-0.68 at 16-20 px (bench/size_recall.py, RESULTS.md
# "Detect less, count the same"). 32 px is also one cell of the models' coarsest (stride-32) grid.
# A mosaic that would draw a tracked object near a line smaller than this is not made.
MIN_MOSAIC_HEIGHT = 32.0


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


def _layout(input_size: tuple[int, int], width: int, height: int, count: int) -> tuple[float, bool]:
    """(scale, stacked in rows): rows or columns of the input, whichever scales the frames more."""
    th, tw = input_size
    rows = min(th / (height * count), tw / width)       # one above the other
    cols = min(th / height, tw / (width * count))       # side by side
    return max(rows, cols), rows >= cols


def mosaic_scale(input_size: tuple[int, int], width: int, height: int, count: int = 2) -> float:
    """Frame pixels -> model-input pixels for `count` frames of this size sharing one input."""
    return _layout(input_size, width, height, count)[0]


def mosaic_plan(input_size: tuple[int, int], frames: list[np.ndarray]) -> MosaicPlan | None:
    """Stack the frames in the rows or the columns of the input, whichever scales them more; None
    when there is one frame or their sizes differ. Whether their objects stay large enough is
    the pipeline's call, before it pairs them (Pipeline.mosaic_fits)."""
    height, width = frames[0].shape[:2]
    count = len(frames)
    if count < 2 or any(f.shape[:2] != (height, width) for f in frames):
        return None
    th, tw = input_size
    scale, in_rows = _layout(input_size, width, height, count)
    nh, nw = round(height * scale), round(width * scale)
    if in_rows:
        top0, left = (th - nh * count) // 2, (tw - nw) // 2
        corners = tuple((top0 + k * nh, left) for k in range(count))
    else:
        top, left0 = (th - nh) // 2, (tw - nw * count) // 2
        corners = tuple((top, left0 + k * nw) for k in range(count))
    return MosaicPlan(input_size, (width, height), (nh, nw), corners, scale)
