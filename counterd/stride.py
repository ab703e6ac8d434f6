"""Detection stride: rest the detector on frames where no tracked object can have moved far.

Between two frames of a 10 fps clip, or of a 25 fps camera, a walking person moves a few pixels: a
small fraction of their own width. The tracker pairs detections with tracks by IoU after a
constant-velocity prediction, and the counter decides a crossing from the chord between two
sightings, so a detection on every such frame adds nothing but CPU time. After each detected frame
this estimates, from the tracks it returned and their previous sightings, how long the detector may
rest: the time in which the fastest-moving track shifts `max_shift` of its own box size (width for
horizontal motion, height for vertical), capped by `max_rest_s`. A scene with any track it has no
speed for yet (new, or seen only now), or with no tracks at all, gets no rest: newcomers are found
at once. An object nothing tracks yet is looked for on every frame the stride would rest
(motiongate.NewcomerLook: motion that no tracked box explains keeps the detector running), since
its only confident detections may fall on those frames.

The detection schedule (counterd/schedule.py) uses it when `gating.stride` is on. A rested
frame is not shown to the tracker (a coast would count as a miss and end tracks seen only once);
the tracker simply sees a longer time step at the next detection.
"""
from __future__ import annotations

import numpy as np

from counterd.detections import Detections


class DetectionStride:
    def __init__(self, max_shift: float = 0.2, max_rest_s: float = 0.15):
        self.max_shift = max_shift          # fraction of a box's size it may move unobserved
        self.max_rest_s = max_rest_s        # the detector runs at least this often
        self._due = float("-inf")
        self._ids = np.zeros(0, np.int64)   # sorted ids of the last detected frame's tracks
        self._boxes = np.zeros((0, 4))
        self._seen = 0.0
        self._rest = 0.0                    # the rest the last observation allowed

    def should_detect(self, timestamp: float) -> bool:
        """True when this frame must go through the detector."""
        return timestamp >= self._due - 1e-3 or timestamp < self._seen   # due, or a file started again

    def observe(self, tracks: Detections, timestamp: float) -> None:
        """The tracks the tracker returned for a detected frame: sets when the next one is due."""
        t = float(timestamp)
        ids = tracks.tracker_id
        order = np.argsort(ids, kind="stable")
        ids, boxes = ids[order], tracks.xyxy[order].astype(np.float64)
        rest = 0.0
        dt = t - self._seen
        if len(ids) and 0 < dt <= self.max_rest_s * 4 and len(self._ids):
            pos = np.searchsorted(self._ids, ids)
            pos = np.minimum(pos, len(self._ids) - 1)
            known = self._ids[pos] == ids
            if known.all():
                prev = self._boxes[pos]
                size = np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0)                # (w, h)
                shift = np.abs((boxes[:, :2] + boxes[:, 2:]) - (prev[:, :2] + prev[:, 2:])) / 2
                rate = float((shift / size).max()) / dt                             # sizes per second
                rest = self.max_rest_s if rate <= 0 else min(self.max_shift / rate, self.max_rest_s)
        self._ids, self._boxes, self._seen = ids, boxes, t
        self._rest = rest
        self._due = t + rest

    def hold(self, timestamp: float) -> None:
        """A due frame is held back to share an inference with a later one (detector.mosaic):
        the partner is the frame one rest later, as if the held frame had been observed."""
        self._due = float(timestamp) + self._rest
