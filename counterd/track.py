"""Multi-object tracking in the ByteTrack manner, every track's state held in numpy arrays.

Each frame: predict where every track's box is now (constant velocity), pair the confident
detections with all tracks by IoU, then pair the low-score detections with the tracks still
unpaired (a person half hidden behind another scores low but is still there), offer the confident
detections left over to the tracks lost for a while by distance from their predicted path (a
person walking out from behind another, where IoU no longer finds them), start tracks from those
still left over, and drop tracks unseen for longer than max_coast_seconds. Time
comes from the frame timestamps, so the same settings work at any frame rate.
"""
from __future__ import annotations

import lap
import numpy as np

from counterd.classes import COCO_NAMES
from counterd.config import TrackerConfig
from counterd.detections import Detections
from counterd.heap import keep_arrays_on_the_heap
from counterd.packed import PackedRows

keep_arrays_on_the_heap()     # the per-frame (tracks x detections) temporaries: see counterd/heap.py

# Each box coordinate (x1, y1, x2, y2) is its own alpha-beta filter, as in ByteTrack's Kalman
# filter whose coordinates are independent. The gains say how far each observation pulls the
# position and the velocity; a young track's gains start at 1 (its first observations are all
# there is to go on) and settle to these.
POSITION_GAIN = 0.7
VELOCITY_GAIN = 0.35
MIN_STEP_SECONDS = 1e-3   # two frames with one timestamp must not divide by zero
# Assignment cost of a pair below the IoU threshold. Above any sum of real costs (each <= 1, so
# more pairs always win), yet small enough for lap's Jonker-Volgenant to stay exact: at 1e6 its
# float tolerances disagree with an exact solver in about 2% of random crowds.
UNMATCHABLE = 1e3
# Below this many track x detection pairs the assignment solver takes the whole matrix at once;
# above it, splitting out the uncontested pairs first is cheaper (measured: 50 vs 200 objects).
SOLVE_WHOLE_UP_TO = 80 * 80
# A lost track is recovered by distance (Tracker._recover) from its predicted path within the
# most its velocity can have changed while it was unseen, times the time lost: its own speed
# (a walker hidden behind someone may have stopped, or turned back) plus the speed it may have
# taken up, up to RECOVER_HEIGHTS_PER_SECOND of its own box heights a second (the fastest walk:
# a walker covers 0.6-0.9 of their height a second, a hurried one up to about 1.5). So a standing
# person is looked for no farther than the walk they might have started, a walker farther. Both
# terms are scale-free and nil right after a miss, where IoU decides. Measured on every scene
# and model (bench/RESULTS.md, "A reach that follows the lost track"). 0 and 0 switch recovery
# off (bench only).
RECOVER_HEIGHTS_PER_SECOND = 1.5
RECOVER_SPEED_SHARE = 1.0      # of the track's own speed; 0 = the height term alone (bench only)
# ... and only by a box of the same class at most this many times taller or shorter: half of a
# person hidden is still the person; twice or half the size is someone nearer or farther.
RECOVER_SIZE_RATIO = 2.0
# A track whose last box was whole (no box detected over where it was when it was lost, not
# shrunk from the tallest box it has had) comes back at most this much taller: a detector's boxes
# of one whole person vary by less (count.HEIGHT_JUMP_RATIO, the same bound), and a person's size
# changes by little more in the second or two a track coasts. A taller box there is someone
# nearer, or the person merged with someone in front (PETS h180 75.3 s: a 53 px walker "found"
# 1.3 s later on a 74 px box over the walker in front, whose crossing it counted again). Only a
# partial box - hidden behind someone, cut by the picture's edge - grows back to RECOVER_SIZE_RATIO.
RECOVER_GROWTH_RATIO = 1.25


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of two sets of xyxy boxes."""
    # Coordinates as contiguous rows first: the (len(a), len(b)) operations then run on
    # contiguous memory, which is what makes them fast.
    ax1, ay1, ax2, ay2 = a.T.copy()[:, :, None]
    bx1, by1, bx2, by2 = b.T.copy()
    inter_w = np.minimum(ax2, bx2)
    inter_w -= np.maximum(ax1, bx1)
    inter_h = np.minimum(ay2, by2)
    inter_h -= np.maximum(ay1, by1)
    np.maximum(inter_w, 0, out=inter_w)
    np.maximum(inter_h, 0, out=inter_h)
    inter = np.multiply(inter_w, inter_h, out=inter_w)
    union = np.add((ax2 - ax1) * (ay2 - ay1), (bx2 - bx1) * (by2 - by1), out=inter_h)
    union -= inter
    np.maximum(union, 1e-9, out=union)          # two empty boxes: IoU 0, not NaN
    return np.divide(inter, union, out=inter)


def match(iou: np.ndarray, min_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) pairing rows with columns one to one, most pairs first, then most total IoU;
    only pairs with IoU >= min_iou."""
    allowed = iou >= min_iou
    flat = allowed.ravel().nonzero()[0]
    rows, cols = np.divmod(flat, iou.shape[1])
    # When no row and no column has two options (people apart from each other: nearly always),
    # the allowed pairs are the assignment and the solver is skipped. (rows come sorted.)
    if not len(flat) or (not np.count_nonzero(rows[1:] == rows[:-1])
                         and not np.count_nonzero(np.bincount(cols) > 1)):
        return rows, cols
    if iou.size <= SOLVE_WHOLE_UP_TO:
        return _solve(allowed, iou)
    # In a crowd, solve only among the rows and columns that compete: a row and a column that
    # are each other's only option always pair.
    row_options = np.bincount(rows, minlength=iou.shape[0])
    col_options = np.bincount(cols, minlength=iou.shape[1])
    sole = (row_options[rows] == 1) & (col_options[cols] == 1)
    row_options[rows[sole]] = 0
    col_options[cols[sole]] = 0
    open_rows = np.flatnonzero(row_options)
    open_cols = np.flatnonzero(col_options)
    block = np.ix_(open_rows, open_cols)
    sub_rows, sub_cols = _solve(allowed[block], iou[block])
    return (np.concatenate([rows[sole], open_rows[sub_rows]]),
            np.concatenate([cols[sole], open_cols[sub_cols]]))


def _solve(allowed: np.ndarray, iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exact assignment (lap's Jonker-Volgenant) over the allowed pairs: most pairs, then
    least total 1 - IoU."""
    # Square, padded with unmatchable rows or columns by hand: lapjv's own extend_cost pads to
    # (rows + columns) square and its return_cost sums in Python-level code, together about 3x
    # the solve itself on the tracker's 50 x 40 matrices (bench/RESULTS.md).
    n_rows, n_cols = iou.shape
    cost = np.full((max(iou.shape),) * 2, UNMATCHABLE)   # float64, as lap wants it: no copy inside
    # 1 - IoU (in the IoU's precision) copied in where allowed: a masked copy costs half what a
    # masked subtract into the strided block does.
    np.copyto(cost[:n_rows, :n_cols], np.subtract(1.0, iou), where=allowed)
    row_to_col, _ = lap.lapjv(cost, extend_cost=False, return_cost=False)
    rows = (row_to_col[:n_rows] < n_cols).nonzero()[0]      # (np.flatnonzero adds a Python-level ravel)
    cols = row_to_col[rows]
    keep = allowed[rows, cols]
    return rows[keep], cols[keep]


# Columns of Tracker._state, one row per track.
BOX = slice(0, 4)         # filtered x1, y1, x2, y2 at the time the track was last seen
VELOCITY = slice(4, 8)    # of each coordinate, pixels per second
HITS = 8                  # detections paired so far
SEEN = 9                  # timestamp of the last paired detection
TALLEST = 10              # the tallest detection paired so far (a whole box, where any was)
COVERED = 11              # 1 when a box was detected over where it was when it was lost
COLUMNS = 12


class Tracker(PackedRows):
    """Give detections stable ids across frames. update() returns the tracks seen this frame,
    from their second detection on (a box seen once is more often clutter than a new object)."""

    _ARRAYS = ("_state", "_ids", "_votes")

    def __init__(self, cfg: TrackerConfig, capacity: int = 64):
        self.cfg = cfg
        self._capacity = capacity
        self._next_id = 1
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids keep counting up so they are never reused."""
        c = self._capacity
        self._count = 0                                   # live tracks are rows [0, _count)
        self._state = np.zeros((c, COLUMNS))
        self._ids = np.zeros(c, np.int64)
        self._votes = np.zeros((c, len(COCO_NAMES)), np.float32)  # confidence summed per class

    def __len__(self) -> int:
        """Tracks alive, coasting ones included."""
        return self._count

    def reconfigure(self, cfg: TrackerConfig) -> None:
        """New thresholds from the next frame on; live tracks are kept."""
        self.cfg = cfg

    def coast(self, timestamp: float) -> None:
        """A frame with nothing detected (or skipped): tracks coast and expire as usual."""
        self.update(Detections.empty(), timestamp)

    def update(self, dets: Detections, timestamp: float) -> Detections:
        cfg = self.cfg
        t = float(timestamp)
        n = self._count
        conf = dets.confidence
        iou = box_iou(self._predicted_boxes(t), dets.xyxy)    # every track x every detection, once
        high = conf >= cfg.high_score
        high_idx = high.nonzero()[0]

        # Stage 1: confident detections against every track.
        rows, cols = match(iou.take(high_idx, 1), cfg.match_iou)   # (take: cheaper than a fancy index)
        det_idx = high_idx[cols]
        unpaired = np.empty(n, bool)
        unpaired.fill(True)                  # (np.ones costs four times as much at this size)
        unpaired[rows] = False
        # Stage 2: low-score detections against the tracks stage 1 left unpaired.
        if len(rows) < n and len(high_idx) < len(conf):
            low_idx = (~high & (conf >= cfg.low_score)).nonzero()[0]
            free_rows = unpaired.nonzero()[0]
            low_rows, low_cols = match(iou.take(free_rows, 0).take(low_idx, 1), cfg.match_iou)
            if len(low_rows):
                unpaired[free_rows[low_rows]] = False
                rows = np.concatenate([rows, free_rows[low_rows]])
                det_idx = np.concatenate([det_idx, low_idx[low_cols]])

        if len(rows) < n:
            self._note_cover(unpaired, iou)
        starters = conf >= max(cfg.new_track_score, cfg.high_score)
        starters[det_idx] = False
        # Stage 3: a confident detection that would start a track is first offered to the tracks
        # still unpaired, by distance from their predicted path (see _recover).
        if (RECOVER_HEIGHTS_PER_SECOND or RECOVER_SPEED_SHARE) and len(rows) < n and np.count_nonzero(starters):
            lost_rows, found_idx = self._recover(unpaired, dets, starters.nonzero()[0], t)
            if len(lost_rows):
                unpaired[lost_rows] = False
                starters[found_idx] = False
                rows = np.concatenate([rows, lost_rows])
                det_idx = np.concatenate([det_idx, found_idx])

        matched_box, matched_conf = dets.xyxy.take(det_idx, 0), conf[det_idx]
        voted = self._correct(rows, matched_box, dets.class_id[det_idx], matched_conf, t)
        tracks = Detections(matched_box, matched_conf, voted, self._ids[rows])

        # A track seen once and missed at once was likely clutter: it goes now. Others coast
        # until max_coast_seconds have passed since they were last seen (either way: a wall clock
        # stepped back must not keep them for as long as it went back).
        if len(rows) < n:
            state = self._state[:n]
            unseen = np.abs(t - state[:, SEEN])
            lost = unpaired & ((state[:, HITS] == 1) | (unseen > cfg.max_coast_seconds))
            if np.count_nonzero(lost):
                self._drop(lost)

        if np.count_nonzero(starters):
            self._start(dets, starters.nonzero()[0], t)
        return tracks

    def take_over(self, new_id: int, old_id: int) -> None:
        """The track new_id is the object old_id was (appearance says so, counterd/reid.py): it
        carries old_id from now on, and the lost track that carried old_id goes."""
        ids = self._ids[:self._count]
        carrier = ids == old_id
        if np.count_nonzero(carrier):
            self._drop(carrier)
            ids = self._ids[:self._count]
        ids[ids == new_id] = old_id

    def predicted_boxes(self, t: float) -> np.ndarray:
        """Every live track's box moved to time t at its estimated velocity."""
        return self._predicted_boxes(t)

    def sightings(self) -> tuple[np.ndarray, np.ndarray]:
        """Every live track's box where it was last seen (coasting ones too; its size, unlike a
        prediction's, is not extrapolated from a velocity that a long coast magnifies), and how
        many detections it has had (one: no velocity yet)."""
        state = self._state[:self._count]
        return state[:, BOX], state[:, HITS]

    def _note_cover(self, unpaired: np.ndarray, iou: np.ndarray) -> None:
        """For each track missed since the last frame anyone was seen (nearly always: missed
        for the first time this frame): whether a box is detected over where it should be (IoU > 0
        with its prediction: the person who hides it, most likely), so that it may come back
        taller (RECOVER_GROWTH_RATIO). A frame with nothing detected decides nothing for good:
        the next frame with detections judges again."""
        seen = self._state[:self._count, SEEN]
        newly = seen == seen.max()
        newly &= unpaired
        if np.count_nonzero(newly):
            # (compress: a third of a boolean index's cost on these 2-D rows)
            self._state[:self._count, COVERED][newly] = iou.compress(newly, 0).any(1)

    def _recover(self, unpaired: np.ndarray, dets: Detections, det_idx: np.ndarray, t: float):
        """(rows, detection indices): unpaired tracks paired one to one with these detections.

        Once a track has been lost for a while, its predicted box has drifted (a velocity
        measured while it was half hidden, a walker who slowed down) and overlaps too little for
        IoU to find it again: the person walks out from behind someone and would become a new
        track, its side of a line forgotten. The reach is (the track's own speed + its height times
        RECOVER_HEIGHTS_PER_SECOND) times the time it has been lost, measured between centres (the
        size is not extrapolated), so it is the same at any resolution and nil right after a miss,
        where IoU still decides."""
        lost = (unpaired & (self._state[:self._count, HITS] >= 2)).nonzero()[0]   # one sighting: no velocity
        state = self._state.take(lost, 0)
        box, velocity, lost_for = state[:, BOX], state[:, VELOCITY], t - state[:, SEEN:TALLEST]
        # Centres doubled (x1 + x2, y1 + y2): the same gaps over doubled reaches, fewer operations.
        path = box[:, :2] + box[:, 2:]
        centre_velocity = velocity[:, :2] + velocity[:, 2:]
        path += centre_velocity * lost_for
        found = dets.xyxy.take(det_idx, 0)
        gap = np.square(found[:, 0] + found[:, 2] - path[:, :1])
        gap += np.square(found[:, 1] + found[:, 3] - path[:, 1:])
        height = box[:, 3:] - box[:, 1:2]
        reach = np.hypot(centre_velocity[:, :1], centre_velocity[:, 1:])   # doubled, like the gaps
        reach *= RECOVER_SPEED_SHARE
        reach += height * (2 * RECOVER_HEIGHTS_PER_SECOND)
        reach *= lost_for
        near = gap < np.square(reach) * (reach > 0)
        if not np.count_nonzero(near):                   # nearly always: nothing to recover
            return lost[:0], det_idx[:0]
        np.sqrt(gap, out=gap)
        ratio = (found[:, 3] - found[:, 1])[None] / np.maximum(height, 1.0)
        partial = (state[:, COVERED:] > 0) | (height * RECOVER_GROWTH_RATIO < state[:, TALLEST:COVERED])
        near &= ratio <= np.where(partial, RECOVER_SIZE_RATIO, RECOVER_GROWTH_RATIO)
        near &= ratio * RECOVER_SIZE_RATIO >= 1
        near &= self._votes[lost].argmax(1)[:, None] == dets.class_id[det_idx][None]
        closeness = np.divide(gap, reach, out=np.ones_like(gap), where=near)
        rows, cols = match(np.subtract(1.0, closeness, out=closeness), 1e-9)   # any pair inside the reach
        return lost[rows], det_idx[cols]

    def _predicted_boxes(self, t: float) -> np.ndarray:
        state = self._state[:self._count]
        boxes = state[:, VELOCITY] * (t - state[:, SEEN:TALLEST])
        boxes += state[:, BOX]
        return boxes.astype(np.float32)     # like the detections, so the IoU runs in one precision

    def _correct(self, rows: np.ndarray, boxes: np.ndarray, class_id: np.ndarray, confidence: np.ndarray,
                 t: float) -> np.ndarray:
        """Alpha-beta update of the paired tracks from their boxes; returns their voted classes."""
        state = self._state.take(rows, 0)       # (take: a third of a fancy index's cost on rows)
        dt = np.maximum(t - state[:, SEEN:TALLEST], MIN_STEP_SECONDS)
        predicted = state[:, VELOCITY] * dt
        predicted += state[:, BOX]
        residual = boxes - predicted
        youth = 1.0 / state[:, HITS:SEEN]
        np.add(predicted, np.maximum(POSITION_GAIN, youth) * residual, out=state[:, BOX])   # (out=: no copy)
        state[:, VELOCITY] += np.maximum(VELOCITY_GAIN, youth) / dt * residual
        state[:, HITS] += 1
        state[:, SEEN] = t
        np.maximum(state[:, TALLEST], boxes[:, 3] - boxes[:, 1], out=state[:, TALLEST])
        self._state[rows] = state
        flat = rows * self._votes.shape[1]
        flat += class_id
        self._votes.reshape(-1)[flat] += confidence
        # argmax over the live rows in place, then picked: no copy of the paired rows' votes.
        return self._votes[:self._count].argmax(1)[rows].astype(np.int32)

    def _start(self, dets: Detections, det_idx: np.ndarray, t: float) -> None:
        k = len(det_idx)
        new = self._add_rows(k)
        state = self._state[new]
        state[:, BOX] = dets.xyxy.take(det_idx, 0)
        state[:, VELOCITY] = 0.0
        state[:, HITS] = 1
        state[:, SEEN] = t
        state[:, TALLEST] = state[:, 3] - state[:, 1]
        state[:, COVERED] = 0.0
        self._votes[new] = 0.0
        self._votes[np.arange(new.start, new.stop), dets.class_id[det_idx]] = dets.confidence[det_idx]
        self._ids[new] = np.arange(self._next_id, self._next_id + k)
        self._next_id += k

    def _drop(self, gone: np.ndarray) -> None:
        """Remove tracks by mask over the live rows."""
        self._keep_rows((~gone).nonzero()[0])
