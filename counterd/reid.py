"""Tracklet stitching by appearance, only where a lost person and a new one are ambiguous near a line.

When people pass each other or walk behind someone, the detector loses one of them for a few
frames and the tracker, whose boxes no longer overlap, starts a new id on the far side: the
crossing falls between two ids and neither counts it (bench/RESULTS.md, "Association through
crossings": with perfect ids on the tracker's own boxes TUD-Stadtmitte counts 0.957 instead of
0.70-0.78). This stage sits between the tracker and the counter. A person track the tracker
starts within `reid_reach` box heights of a person track lost at most max_coast_seconds ago, where
the way from one to the other is inside a line's band or crosses a line, takes the lost track's id
when an OSNet re-identification model finds the two alike (cosine >= reid_min_similarity). The
counter then sees one track that was missing for a while, and counts its crossing once.

CPU: the model runs only for such births (the new person's crop and each candidate's, at most
MAX_CROPS_PER_FRAME a frame); every other frame costs a resize of the crops of people standing
clear of others, refreshed every CROP_REFRESH_SECONDS. The model file is not shipped
(`tracker.reid_model`, OSNet x0.25 as ONNX: input [N,3,256,128] RGB, output [N,512]).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from counterd.classes import CLASS_IDS
from counterd.config import TrackerConfig
from counterd.detect import as_bgr
from counterd.detections import Detections
from counterd.errors import UserError
from counterd.packed import PackedRows
from counterd.track import box_iou

PERSON = CLASS_IDS["person"]
CROP_SIZE = (128, 256)            # width, height the model takes
CROP_REFRESH_SECONDS = 0.5        # a clear person's last look is at most this old when it is lost
MAX_CROPS_PER_FRAME = 4           # about 4 ms a crop on one core: a frame never waits more than ~20 ms
VELOCITY_GAP_SECONDS = 0.5       # a box seen again after longer says nothing of its speed
HEIGHT_RATIO = 2.0                # a new box this much taller or shorter than the lost one is not it
MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


class Embedder:
    """OSNet person re-identification through ONNX Runtime on one thread: crops -> unit vectors."""

    def __init__(self, path: str):
        from counterd.detect.engines import OrtEngine

        if not Path(path).is_file():
            raise UserError(f"tracker.reid_model: {path} does not exist (an OSNet re-id model as ONNX, "
                            f"input [N,3,256,128] RGB)")
        self.engine = OrtEngine(Path(path), 1, ("CPUExecutionProvider",))
        shape = self.engine.input_shape
        if len(shape) != 4 or shape[1:] != [3, CROP_SIZE[1], CROP_SIZE[0]]:
            raise UserError(f"tracker.reid_model: {path} takes input {shape}, not [N, 3, 256, 128]")
        self.crops_embedded = 0

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, 256, 128, 3) RGB uint8 crops -> (N, D) L2-normalised embeddings."""
        blob = ((crops.astype(np.float32) - MEAN) / STD).transpose(0, 3, 1, 2)
        features = self.engine.run(np.ascontiguousarray(blob))
        self.crops_embedded += len(crops)
        return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-9)

    def close(self) -> None:
        self.engine.close()


def person_crops(image: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    """(N, 256, 128, 3) RGB crops of these boxes from a BGR frame (grey and BGRA converted, as
    night-time IR cameras send them), clipped to it."""
    image = as_bgr(image)
    height, width = image.shape[:2]
    out = np.empty((len(xyxy), CROP_SIZE[1], CROP_SIZE[0], 3), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(np.round(xyxy).astype(int)):
        x1, y1 = min(max(x1, 0), width - 1), min(max(y1, 0), height - 1)
        x2, y2 = max(min(x2, width), x1 + 1), max(min(y2, height), y1 + 1)
        out[i] = cv2.resize(image[y1:y2, x1:x2], CROP_SIZE, interpolation=cv2.INTER_AREA)[:, :, ::-1]
    return out


class Stitcher(PackedRows):
    """A new person track that looks like one lost beside it near a line takes the lost one's id.
    `near_line(lost_xyxy, new_xyxy)` says whether the way between two boxes is inside a line's
    band or crosses a line (LineCounter.watching); `take_over(new_id, old_id)` hands the id on in
    the tracker (Tracker.take_over), so the lost track, should it come back, cannot carry it too."""

    _ARRAYS = ("_ids", "_box", "_seen", "_velocity", "_crop_at")

    def __init__(self, cfg: TrackerConfig, embedder: Embedder, near_line: Callable[[np.ndarray, np.ndarray], bool],
                 take_over: Callable[[int, int], None]):
        self.cfg = cfg
        self.embedder = embedder
        self.near_line = near_line
        self.take_over = take_over
        self._count = 0
        self._ids = np.zeros(16, np.int64)            # output ids of the persons seen lately
        self._box = np.zeros((16, 4), np.float32)     # their last box
        self._seen = np.zeros(16)                     # when
        self._velocity = np.zeros((16, 2))            # of the box's centre, px/s (smoothed)
        self._crop_at = np.full(16, -np.inf)          # when their crop was taken
        self._crops: dict[int, np.ndarray] = {}       # output id -> last clear crop
        self._looks: dict[int, np.ndarray] = {}       # output id -> embedding of that crop
        self.stitched = 0

    def reconfigure(self, cfg: TrackerConfig) -> None:
        self.cfg = cfg

    def update(self, tracks: Detections, image: np.ndarray, timestamp: float) -> Detections:
        t = float(timestamp)
        person = tracks.class_id == PERSON
        if not np.count_nonzero(person):
            self._expire(t)
            return tracks
        rows, born = self._rows_for(tracks.tracker_id[person])
        if born is not None:
            renamed = self._stitch(tracks, np.flatnonzero(person)[born], rows[born], rows, image, t)
            if renamed:
                ids = tracks.tracker_id.copy()
                for new_id, old_id in renamed.items():
                    ids[ids == new_id] = old_id
                tracks = Detections(tracks.xyxy, tracks.confidence, tracks.class_id, ids)
                rows, _ = self._rows_for(tracks.tracker_id[person])
        self._move(rows, tracks.xyxy[person], t)
        self._refresh_crops(rows, tracks.xyxy[person], image, t)
        self._expire(t)
        return tracks

    # -- stitching ------------------------------------------------------------------------------

    def _stitch(self, tracks: Detections, which: np.ndarray, rows: np.ndarray, present: np.ndarray,
                image: np.ndarray, t: float) -> dict[int, int]:
        """New person tracks (tracks[which], state rows) near a lost one (not among the present
        rows) that looks alike take its id; returns {new id: old id}."""
        n = self._count
        absent = np.ones(n, bool)
        absent[present] = False
        lost = np.flatnonzero(absent & (t - self._seen[:n] <= self.cfg.max_coast_seconds) & np.isfinite(self._crop_at[:n]))
        if not len(lost):
            return {}
        new_box = tracks.xyxy[which]
        ahead = self._velocity[lost] * (t - self._seen[lost])[:, None]
        near = self._candidates(new_box, self._box[lost] + np.tile(ahead, 2))    # (new, lost)
        pairs = [(i, j) for i, j in zip(*np.nonzero(near))
                 if self.near_line(self._box[lost[j]][None], new_box[i][None])]
        if not pairs:
            return {}
        looks = self._looks_of(sorted({i for i, _ in pairs}), [int(self._ids[lost[j]]) for _, j in pairs],
                               new_box, image)
        # Most alike pairs first; each lost and each new track is stitched at most once.
        scored = sorted(((float(looks[i] @ self._looks[int(self._ids[lost[j]])]), i, j) for i, j in pairs
                         if i in looks and int(self._ids[lost[j]]) in self._looks), reverse=True)
        renamed, taken_lost = {}, set()
        for similarity, i, j in scored:
            if similarity < self.cfg.reid_min_similarity:
                break
            new_id, old_id = int(tracks.tracker_id[which[i]]), int(self._ids[lost[j]])
            if new_id in renamed or j in taken_lost:
                continue
            renamed[new_id] = old_id
            taken_lost.add(j)
            self.take_over(new_id, old_id)
            self._ids[rows[i]] = -1                 # the new row goes; the old one lives on under its id
        self.stitched += len(renamed)
        return renamed

    def _looks_of(self, new_i: list[int], lost_ids: list[int], new_box: np.ndarray, image: np.ndarray) -> dict:
        """Embeddings of the new tracks' crops ({index: vector}); the lost tracks' kept crops are
        embedded into self._looks once. At most MAX_CROPS_PER_FRAME crops."""
        new_i = new_i[:MAX_CROPS_PER_FRAME]
        todo = sorted({k for k in lost_ids if k not in self._looks})[:MAX_CROPS_PER_FRAME - len(new_i)]
        crops = np.concatenate([person_crops(image, new_box[new_i])] + [self._crops[k][None] for k in todo])
        vectors = self.embedder.embed(crops)
        self._looks.update(zip(todo, vectors[len(new_i):]))
        return dict(zip(new_i, vectors[:len(new_i)]))

    def _candidates(self, new_box: np.ndarray, lost_box: np.ndarray) -> np.ndarray:
        """(new, lost): centres within reid_reach of the new box's height of where the lost box
        would be now at its last velocity, heights alike."""
        new_h = np.maximum(new_box[:, 3] - new_box[:, 1], 1.0)
        lost_h = np.maximum(lost_box[:, 3] - lost_box[:, 1], 1.0)
        gap = np.hypot(*((new_box[:, None, :2] + new_box[:, None, 2:]) / 2
                         - (lost_box[None, :, :2] + lost_box[None, :, 2:]) / 2).transpose(2, 0, 1))
        ratio = new_h[:, None] / lost_h[None, :]
        return (gap <= self.cfg.reid_reach * new_h[:, None]) & (ratio < HEIGHT_RATIO) & (ratio > 1 / HEIGHT_RATIO)

    # -- per-person state -----------------------------------------------------------------------

    def _rows_for(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        n = self._count
        order = np.argsort(self._ids[:n], kind="stable")
        sorted_ids = self._ids[:n][order]
        pos = np.minimum(sorted_ids.searchsorted(ids), max(n - 1, 0))
        known = (sorted_ids[pos] == ids) if n else np.zeros(len(ids), bool)
        rows = order[pos] if n else np.zeros(len(ids), np.intp)
        if np.count_nonzero(known) == len(ids):
            return rows, None
        born = ~known
        new = self._add_rows(int(np.count_nonzero(born)))
        self._ids[new] = ids[born]
        self._seen[new] = -np.inf
        self._velocity[new] = 0.0
        self._crop_at[new] = -np.inf
        rows = rows.copy()
        rows[born] = np.arange(new.start, new.stop)
        return rows, born

    def _move(self, rows: np.ndarray, xyxy: np.ndarray, t: float) -> None:
        """New boxes; the centre's velocity is smoothed over the frames it was seen in a row."""
        dt = t - self._seen[rows]
        steady = (dt > 0) & (dt <= VELOCITY_GAP_SECONDS)
        centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
        step = (centre - (self._box[rows, :2] + self._box[rows, 2:]) / 2) / np.maximum(dt, 1e-3)[:, None]
        self._velocity[rows] = np.where(steady[:, None], 0.5 * self._velocity[rows] + 0.5 * step, 0.0)
        self._box[rows] = xyxy
        self._seen[rows] = t

    def _refresh_crops(self, rows: np.ndarray, xyxy: np.ndarray, image: np.ndarray, t: float) -> None:
        """Keep a recent crop of each person standing clear of the others (a crop half covered by
        someone else would describe them too)."""
        overlap = box_iou(xyxy, xyxy)
        np.fill_diagonal(overlap, 0.0)
        stale = (t - self._crop_at[rows] >= CROP_REFRESH_SECONDS) & ~(overlap > 0).any(1)
        if not np.count_nonzero(stale):
            return
        for row, crop in zip(rows[stale].tolist(), person_crops(image, xyxy[stale])):
            key = int(self._ids[row])
            self._crops[key] = crop
            self._looks.pop(key, None)
        self._crop_at[rows[stale]] = t

    def _expire(self, t: float) -> None:
        """Forget persons lost for longer than a track can coast (they cannot be stitched to)."""
        n = self._count
        keep = np.flatnonzero((self._ids[:n] >= 0) & (t - self._seen[:n] <= self.cfg.max_coast_seconds))
        if len(keep) == n:
            return
        alive = set(self._ids[keep].tolist())
        for key in [k for k in self._crops if k not in alive]:
            del self._crops[key]
            self._looks.pop(key, None)
        self._keep_rows(keep)
