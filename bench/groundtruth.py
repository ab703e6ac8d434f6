"""Ground-truth tracks (MOT format) and the true line crossings they imply.

The rule is the one in ../shared/data/README.md: the anchor is the box's bottom-centre; a true
crossing is a step between two consecutive annotated frames of one track whose path intersects the
counting segment A->B; 'in' is movement toward (dy, -dx) with (dx, dy) = B - A.

This is written plainly, a loop over steps, so that it checks the counter rather than repeating it.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from counterd.detections import Detections

PERSON = 0  # the ground truth has no class column: every object is a pedestrian


@dataclass(frozen=True)
class GroundTruth:
    """One row per annotated box, sorted by (track, frame). frame 1 is the video's first frame."""

    frame: np.ndarray     # (N,) int
    track_id: np.ndarray  # (N,) int64
    xyxy: np.ndarray      # (N, 4) float32

    def frames(self) -> Iterator[tuple[int, Detections]]:
        """(frame, boxes annotated in it, with the ground-truth ids) for every frame of the video."""
        by_frame = np.argsort(self.frame, kind="stable")
        bounds = np.searchsorted(self.frame[by_frame], np.arange(1, self.frame.max() + 2))
        for frame in range(1, int(self.frame.max()) + 1):
            rows = by_frame[bounds[frame - 1]:bounds[frame]]
            yield frame, Detections.from_arrays(self.xyxy[rows], np.ones(len(rows)),
                                                np.full(len(rows), PERSON), self.track_id[rows])


def read_mot(path: str | Path) -> GroundTruth:
    """Read `frame,id,x,y,w,h,...` rows (MOTChallenge gt.txt)."""
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    rows = rows[np.lexsort((rows[:, 0], rows[:, 1]))]
    x, y, w, h = rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5]
    xyxy = np.stack([x, y, x + w, y + h], axis=1).astype(np.float32)
    return GroundTruth(rows[:, 0].astype(int), rows[:, 1].astype(np.int64), xyxy)


@dataclass(frozen=True)
class TrueCrossing:
    frame: int          # the frame the anchor reached the far side in
    track_id: int
    direction: str      # "in" or "out"


def true_crossings(gt: GroundTruth, start: tuple[float, float], end: tuple[float, float]) -> list[TrueCrossing]:
    """Every step of a ground-truth track whose path intersects the segment start->end."""
    ax, ay = start
    dx, dy = end[0] - ax, end[1] - ay
    anchor_x = (gt.xyxy[:, 0] + gt.xyxy[:, 2]) / 2
    anchor_y = gt.xyxy[:, 3]
    found = []
    for i in range(len(gt.frame) - 1):
        if gt.track_id[i] != gt.track_id[i + 1]:
            continue
        p, q = (anchor_x[i], anchor_y[i]), (anchor_x[i + 1], anchor_y[i + 1])
        # Side of the line for each end of the step, and of the step's line for each end of the segment.
        side_p = dx * (p[1] - ay) - dy * (p[0] - ax)
        side_q = dx * (q[1] - ay) - dy * (q[0] - ax)
        sx, sy = q[0] - p[0], q[1] - p[1]
        side_a = sx * (ay - p[1]) - sy * (ax - p[0])
        side_b = sx * (end[1] - p[1]) - sy * (end[0] - p[0])
        if side_p * side_q < 0 and side_a * side_b <= 0:
            # side < 0 is the 'in' side: toward (dy, -dx)
            found.append(TrueCrossing(int(gt.frame[i + 1]), int(gt.track_id[i]), "in" if side_q < 0 else "out"))
    return found


def crossing_totals(crossings: list[TrueCrossing]) -> dict[str, int]:
    counts = Counter(c.direction for c in crossings)
    return {"in": counts["in"], "out": counts["out"]}
