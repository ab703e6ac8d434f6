"""Ground-truth tracks (MOT format) and the true line crossings they imply, for benchmarks and tests.

The rule and the reader live in counterd/truth.py (`counterd validate` uses them too); this module
keeps the frame-numbered view the benchmarks use and replays ground truth frame by frame.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from counterd.config import LineConfig
from counterd.detections import Detections
from counterd.truth import MotTracks, mot_crossings
from counterd.truth import read_mot as _read_mot

PERSON = 0  # the ground truth has no class column: every object is a pedestrian


class GroundTruth(MotTracks):
    """One row per annotated box, sorted by (track, frame). frame 1 is the video's first frame."""

    def frames(self) -> Iterator[tuple[int, Detections]]:
        """(frame, boxes annotated in it, with the ground-truth ids) for every frame of the video."""
        by_frame = np.argsort(self.frame, kind="stable")
        bounds = np.searchsorted(self.frame[by_frame], np.arange(1, self.frame.max() + 2))
        for frame in range(1, int(self.frame.max()) + 1):
            rows = by_frame[bounds[frame - 1]:bounds[frame]]
            yield frame, Detections.from_arrays(self.xyxy[rows], np.ones(len(rows)),
                                                np.full(len(rows), PERSON), self.track_id[rows])


def read_mot(path) -> GroundTruth:
    tracks = _read_mot(path)
    return GroundTruth(tracks.frame, tracks.track_id, tracks.xyxy)


@dataclass(frozen=True)
class TrueCrossing:
    frame: int          # the frame the anchor reached the far side in
    track_id: int
    direction: str      # "in" or "out"


def true_crossings(gt: MotTracks, start: tuple[float, float], end: tuple[float, float]) -> list[TrueCrossing]:
    """Every step of a ground-truth track whose path intersects the segment start->end."""
    line = LineConfig(name="line", start=tuple(start), end=tuple(end))
    return [TrueCrossing(frame, track, direction) for frame, track, direction in mot_crossings(gt, line)]


def crossing_totals(crossings: list[TrueCrossing]) -> dict[str, int]:
    counts = Counter(c.direction for c in crossings)
    return {"in": counts["in"], "out": counts["out"]}
