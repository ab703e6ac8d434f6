"""Multi-object tracking in the ByteTrack manner, every track's state held in numpy arrays.

Each frame: predict where every track's box is now (constant velocity), pair the confident
detections with all tracks by IoU, then pair the low-score detections with the tracks still
unpaired (a person half hidden behind another scores low but is still there), start tracks from
confident detections left over, and drop tracks unseen for longer than max_coast_seconds. Time
comes from the frame timestamps, so the same settings work at any frame rate.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from counterd.classes import COCO_NAMES
from counterd.config import TrackerConfig
from counterd.detections import Detections

# Alpha-beta filter gains: how far each observation pulls the centre, its velocity and the size.
# A young track's gains start at 1 (trust the first observations fully) and settle to these.
CENTRE_GAIN = 0.7
VELOCITY_GAIN = 0.35
SIZE_GAIN = 0.5
MIN_STEP_SECONDS = 1e-3   # two frames with one timestamp must not divide by zero
UNMATCHABLE = 1e6         # assignment cost of a pair below the IoU threshold


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of two sets of xyxy boxes."""
    inter_w = np.minimum(a[:, None, 2], b[:, 2]) - np.maximum(a[:, None, 0], b[:, 0])
    inter_h = np.minimum(a[:, None, 3], b[:, 3]) - np.maximum(a[:, None, 1], b[:, 1])
    inter = np.maximum(inter_w, 0) * np.maximum(inter_h, 0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b - inter, 1e-9)


def match(iou: np.ndarray, min_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) pairing rows with columns one to one, most pairs first, then most total IoU;
    only pairs with IoU >= min_iou."""
    allowed = iou >= min_iou
    row_options = allowed.sum(1)
    col_options = allowed.sum(0)
    # A row and a column that are each other's only option always pair; in a scene of people
    # apart from each other that is every pair, and the assignment solver is skipped.
    sole = allowed & (row_options[:, None] == 1) & (col_options == 1)
    rows, cols = np.nonzero(sole)
    if len(rows) == row_options.astype(bool).sum():
        return rows, cols
    open_rows = np.flatnonzero(row_options.astype(bool) & ~sole.any(1))
    open_cols = np.flatnonzero(col_options.astype(bool) & ~sole.any(0))
    sub = iou[np.ix_(open_rows, open_cols)]
    sub_rows, sub_cols = linear_sum_assignment(np.where(sub >= min_iou, 1.0 - sub, UNMATCHABLE))
    keep = sub[sub_rows, sub_cols] >= min_iou
    return (np.concatenate([rows, open_rows[sub_rows[keep]]]),
            np.concatenate([cols, open_cols[sub_cols[keep]]]))


class Tracker:
    """Give detections stable ids across frames. update() returns the tracks seen this frame."""

    def __init__(self, cfg: TrackerConfig, capacity: int = 64):
        self.cfg = cfg
        self._capacity = capacity
        self._next_id = 1
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids keep counting up so they are never reused."""
        c = self._capacity
        self._count = 0                                   # live tracks are rows [0, _count)
        self._centre = np.zeros((c, 2))                   # filtered box centre at _seen
        self._velocity = np.zeros((c, 2))                 # centre velocity, pixels per second
        self._size = np.zeros((c, 2))                     # filtered width, height
        self._seen = np.zeros(c)                          # timestamp of the last paired detection
        self._hits = np.zeros(c, np.int64)                # detections paired so far
        self._ids = np.zeros(c, np.int64)
        self._votes = np.zeros((c, len(COCO_NAMES)), np.float32)  # confidence summed per class

    def __len__(self) -> int:
        """Tracks alive, coasting ones included."""
        return self._count

    def update(self, dets: Detections, timestamp: float) -> Detections:
        cfg = self.cfg
        t = float(timestamp)
        n = self._count
        conf = dets.confidence
        high = conf >= cfg.high_score
        high_idx = np.flatnonzero(high)
        predicted = self._predicted_boxes(t)

        # Stage 1: confident detections against every track.
        rows, cols = match(box_iou(predicted, dets.xyxy[high_idx]), cfg.match_iou)
        det_idx = high_idx[cols]
        # Stage 2: low-score detections against the tracks stage 1 left unpaired.
        low_idx = np.flatnonzero((conf >= cfg.low_score) & ~high)
        if len(low_idx) and len(rows) < n:
            free = np.ones(n, bool)
            free[rows] = False
            free_rows = np.flatnonzero(free)
            low_rows, low_cols = match(box_iou(predicted[free_rows], dets.xyxy[low_idx]), cfg.match_iou)
            rows = np.concatenate([rows, free_rows[low_rows]])
            det_idx = np.concatenate([det_idx, low_idx[low_cols]])

        self._correct(rows, dets, det_idx, t)
        out_ids = self._ids[rows]
        out_class = self._votes[rows].argmax(1).astype(np.int32)

        # A track seen once and missed at once was likely a false detection: it goes now.
        # Others coast until max_coast_seconds have passed since they were last seen.
        paired = np.zeros(n, bool)
        paired[rows] = True
        expired = ~paired & ((self._hits[:n] == 1) | (t - self._seen[:n] > cfg.max_coast_seconds))
        if expired.any():
            self._drop(expired)

        starters = high & (conf >= cfg.new_track_score)
        starters[det_idx] = False
        new_idx = np.flatnonzero(starters)
        if len(new_idx):
            new_ids = self._start(dets, new_idx, t)
            det_idx = np.concatenate([det_idx, new_idx])
            out_ids = np.concatenate([out_ids, new_ids])
            out_class = np.concatenate([out_class, dets.class_id[new_idx]])
        return Detections(dets.xyxy[det_idx], conf[det_idx], out_class, out_ids)

    def _predicted_boxes(self, t: float) -> np.ndarray:
        n = self._count
        centre = self._centre[:n] + self._velocity[:n] * (t - self._seen[:n])[:, None]
        half = self._size[:n] * 0.5
        return np.concatenate([centre - half, centre + half], axis=1)

    def _correct(self, rows: np.ndarray, dets: Detections, det_idx: np.ndarray, t: float) -> None:
        """Alpha-beta update of the paired tracks from their detections."""
        box = dets.xyxy[det_idx]
        measured_centre = (box[:, :2] + box[:, 2:]) * 0.5
        dt = np.maximum(t - self._seen[rows], MIN_STEP_SECONDS)[:, None]
        velocity = self._velocity[rows]
        predicted = self._centre[rows] + velocity * dt
        residual = measured_centre - predicted
        # Gains start at 1 for a young track (1/hits) and settle to the constants.
        youth = 1.0 / self._hits[rows][:, None]
        self._centre[rows] = predicted + np.maximum(CENTRE_GAIN, youth) * residual
        self._velocity[rows] = velocity + np.maximum(VELOCITY_GAIN, youth) * residual / dt
        size = self._size[rows]
        self._size[rows] = size + SIZE_GAIN * ((box[:, 2:] - box[:, :2]) - size)
        self._seen[rows] = t
        self._hits[rows] += 1
        self._votes[rows, dets.class_id[det_idx]] += dets.confidence[det_idx]

    def _start(self, dets: Detections, det_idx: np.ndarray, t: float) -> np.ndarray:
        k = len(det_idx)
        start, end = self._count, self._count + k
        if end > len(self._ids):
            self._grow(end)
        box = dets.xyxy[det_idx]
        self._centre[start:end] = (box[:, :2] + box[:, 2:]) * 0.5
        self._size[start:end] = box[:, 2:] - box[:, :2]
        self._velocity[start:end] = 0.0
        self._seen[start:end] = t
        self._hits[start:end] = 1
        self._votes[start:end] = 0.0
        self._votes[np.arange(start, end), dets.class_id[det_idx]] = dets.confidence[det_idx]
        ids = np.arange(self._next_id, self._next_id + k, dtype=np.int64)
        self._ids[start:end] = ids
        self._next_id += k
        self._count = end
        return ids

    def _arrays(self) -> list[str]:
        return ["_centre", "_velocity", "_size", "_seen", "_hits", "_ids", "_votes"]

    def _grow(self, needed: int) -> None:
        capacity = max(needed, 2 * len(self._ids))
        for name in self._arrays():
            old = getattr(self, name)
            new = np.zeros((capacity,) + old.shape[1:], old.dtype)
            new[:self._count] = old[:self._count]
            setattr(self, name, new)

    def _drop(self, gone: np.ndarray) -> None:
        """Remove tracks by mask over the live rows, keeping the rest packed at the front."""
        keep = np.flatnonzero(~gone)
        for name in self._arrays():
            arr = getattr(self, name)
            arr[:len(keep)] = arr[keep]
        self._count = len(keep)
