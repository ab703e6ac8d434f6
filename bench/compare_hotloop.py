"""Hot loop side by side: tracker + line counter of counterd, ultralytics and supervision.

Each is fed the same synthetic detection stream (numpy arrays per frame) in the form it takes as
input, so the cost of wrapping arrays into each library's own detections type is counted for each:

- counterd: Detections.from_arrays -> Tracker.update -> LineCounter.update (all lines at once).
- ultralytics 8.4: Boxes -> trackers.BYTETracker.update (bytetrack.yaml defaults) -> the tracks
  wrapped as model.track() wraps them -> solutions.ObjectCounter's own per-track history and
  count_objects(), one ObjectCounter per line. Its drawing (process() annotates every frame) is
  left out, which favours it.
- supervision 0.30: sv.Detections -> sv.ByteTrack.update_with_detections -> sv.LineZone.trigger,
  one LineZone per line, anchored at the box's bottom centre like counterd.

Runs alternate between the three in rounds, so that load from other processes on the machine
falls on all of them alike; the figure kept per library is the median round.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

FRAME_W, FRAME_H = 1920, 1080
FPS = 25.0
# Two lines, as a door or a road usually has: one vertical, one horizontal, both through the middle.
LINES = (("v", (FRAME_W / 2, 0.0), (FRAME_W / 2, float(FRAME_H))),
         ("h", (0.0, FRAME_H / 2), (float(FRAME_W), FRAME_H / 2)))


@dataclass
class Stream:
    """A synthetic scene: per frame, the detections a detector would report, and the truth."""

    xyxy: list[np.ndarray]        # per frame (M, 4) float32
    conf: list[np.ndarray]        # (M,) float32
    cls: list[np.ndarray]         # (M,) int32
    truth: list[tuple[np.ndarray, np.ndarray]]   # per frame (ids, xyxy) of every real object

    def __len__(self) -> int:
        return len(self.xyxy)


def synthetic_stream(n_objects: int, n_frames: int, seed: int = 0) -> Stream:
    """n_objects walking at constant velocity with box jitter, 5% missed detections, a tenth of
    the detections at low confidence (partly hidden), and two low-score false positives a frame.
    An object leaving the frame comes back as a new one at a random edge."""
    rng = np.random.default_rng(seed * 1000 + n_objects)
    size = rng.uniform(24, 48, n_objects)
    pos = rng.uniform([0, 0], [FRAME_W, FRAME_H], (n_objects, 2))
    vel = _random_velocity(rng, n_objects)
    ids = np.arange(n_objects)
    next_id = n_objects
    is_car = rng.random(n_objects) < 0.2
    out = Stream([], [], [], [])
    for _ in range(n_frames):
        pos += vel / FPS
        gone = (pos[:, 0] < -20) | (pos[:, 0] > FRAME_W + 20) | (pos[:, 1] < -20) | (pos[:, 1] > FRAME_H + 20)
        for i in np.flatnonzero(gone):
            edge = rng.integers(4)
            pos[i] = ((0, rng.uniform(0, FRAME_H)), (FRAME_W, rng.uniform(0, FRAME_H)),
                      (rng.uniform(0, FRAME_W), 0), (rng.uniform(0, FRAME_W), FRAME_H))[edge]
            vel[i] = _random_velocity(rng, 1)[0]
            vel[i] = np.abs(vel[i]) * ((1, 1), (-1, 1), (1, 1), (1, -1))[edge]
            ids[i] = next_id
            next_id += 1
        w = np.where(is_car, size * 2.5, size)
        h = np.where(is_car, size * 1.5, size * 2.6)
        true_boxes = np.stack([pos[:, 0] - w / 2, pos[:, 1] - h, pos[:, 0] + w / 2, pos[:, 1]], 1)
        out.truth.append((ids.copy(), true_boxes.astype(np.float32)))
        seen = rng.random(n_objects) >= 0.05
        boxes = true_boxes[seen] + rng.normal(0, 1.5, (seen.sum(), 4))
        conf = rng.uniform(0.55, 0.95, seen.sum())
        hidden = rng.random(seen.sum()) < 0.1
        conf[hidden] = rng.uniform(0.12, 0.45, hidden.sum())
        cls = np.where(is_car[seen], 2, 0)
        fp_centre = rng.uniform([0, 0], [FRAME_W, FRAME_H], (2, 2))
        fp = np.concatenate([fp_centre - 15, fp_centre + 15], 1)
        out.xyxy.append(np.concatenate([boxes, fp]).astype(np.float32))
        out.conf.append(np.concatenate([conf, rng.uniform(0.1, 0.3, 2)]).astype(np.float32))
        out.cls.append(np.concatenate([cls, [0, 0]]).astype(np.int32))
    return out


def _random_velocity(rng, n: int) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi, n)
    speed = rng.uniform(40, 160, n)     # px/s: a walker 1-4 s across a 1080p frame's lines
    return np.stack([np.cos(angle), np.sin(angle)], 1) * speed[:, None]


def true_counts(stream: Stream) -> dict[str, dict[str, int]]:
    """Crossings of the true bottom-centre paths, by the ground-truth rule of ../shared/data."""
    from groundtruth import GroundTruth, crossing_totals, true_crossings
    frames, ids, boxes = [], [], []
    for i, (tid, xyxy) in enumerate(stream.truth):
        frames.append(np.full(len(tid), i + 1))
        ids.append(tid)
        boxes.append(xyxy)
    frame, tid, xyxy = np.concatenate(frames), np.concatenate(ids), np.concatenate(boxes)
    order = np.lexsort((frame, tid))
    gt = GroundTruth(frame[order], tid[order], xyxy[order])
    return {name: crossing_totals(true_crossings(gt, a, b)) for name, a, b in LINES}


# ---------------------------------------------------------------------------------------------
# The three loops. Each has setup (untimed), step(i) (timed) and counts() -> {line: {in, out}}.


class CounterdLoop:
    name = "counterd"

    def __init__(self, stream: Stream):
        from counterd.config import config_from_dict
        from counterd.count import LineCounter
        from counterd.detections import Detections
        from counterd.track import Tracker
        cfg = config_from_dict({"lines": [{"name": n, "start": list(a), "end": list(b)} for n, a, b in LINES]})
        self.stream, self.Detections = stream, Detections
        self.tracker = Tracker(cfg.tracker)
        self.counter = LineCounter(cfg.lines, cfg.counting)

    def step(self, i: int) -> None:
        s = self.stream
        dets = self.Detections.from_arrays(s.xyxy[i], s.conf[i], s.cls[i])
        t = i / FPS
        self.counter.update(self.tracker.update(dets, t), t)

    def counts(self) -> dict[str, dict[str, int]]:
        totals = self.counter.totals
        return {n: {d: sum(totals[n][d].values()) for d in ("in", "out")} for n, _, _ in LINES}


class UltralyticsLoop:
    name = "ultralytics"

    def __init__(self, stream: Stream, model: str):
        import torch
        from ultralytics.engine.results import Boxes
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml
        cfg = IterableSimpleNamespace(**YAML.load(check_yaml("bytetrack.yaml")))
        self.stream, self.Boxes, self.torch = stream, Boxes, torch
        self.tracker = BYTETracker(args=cfg)   # track_buffer counts frames (30)
        self.counters = [make_object_counter(model, a, b) for _, a, b in LINES]
        self.shape = (FRAME_H, FRAME_W)

    def step(self, i: int) -> None:
        s = self.stream
        # As ultralytics.trackers.track.on_predict_postprocess_end: numpy boxes in, tracks out,
        # wrapped back into a Boxes tensor for the solution to read.
        det = self.Boxes(np.column_stack([s.xyxy[i], s.conf[i], s.cls[i]]), self.shape)
        tracks = self.tracker.update(det, None)
        boxes = self.Boxes(self.torch.as_tensor(tracks[:, :-1]), self.shape)
        removed = [t.track_id for t in self.tracker.removed_stracks_frame]
        for counter in self.counters:
            feed_object_counter(counter, boxes, removed)

    def counts(self) -> dict[str, dict[str, int]]:
        return {n: object_counter_counts(c, a, b) for c, (n, a, b) in zip(self.counters, LINES)}


class SupervisionLoop:
    name = "supervision"

    def __init__(self, stream: Stream):
        import supervision as sv
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.tracker = sv.ByteTrack(frame_rate=int(FPS))
        self.zones = [make_line_zone(a, b) for _, a, b in LINES]
        self.stream, self.sv = stream, sv

    def step(self, i: int) -> None:
        s = self.stream
        dets = self.sv.Detections(xyxy=s.xyxy[i], confidence=s.conf[i], class_id=s.cls[i])
        tracked = self.tracker.update_with_detections(dets)
        for zone in self.zones:
            zone.trigger(tracked)

    def counts(self) -> dict[str, dict[str, int]]:
        return {n: {"in": z.in_count, "out": z.out_count} for z, (n, _, _) in zip(self.zones, LINES)}


# ---------------------------------------------------------------------------------------------
# How each anchor is configured to count one line the way counterd does (shared with the
# end-to-end run).


def make_line_zone(start, end, anchor: str = "BOTTOM_CENTER"):
    """A LineZone whose 'in' is counterd's 'in': LineZone's in-side is where the cross product
    (B - A) x (P - A) < 0, i.e. toward (dy, -dx), the same convention, so no swap is needed."""
    import supervision as sv
    anchors = [getattr(sv.Position, anchor)] if anchor != "corners" else [
        sv.Position.TOP_LEFT, sv.Position.TOP_RIGHT, sv.Position.BOTTOM_LEFT, sv.Position.BOTTOM_RIGHT]
    return sv.LineZone(start=sv.Point(*start), end=sv.Point(*end), triggering_anchors=anchors)


def make_object_counter(model: str, start, end, anchor: str = "centre"):
    """A solutions.ObjectCounter for one line. `anchor="bottom"` records the box's bottom centre
    instead of its centre (the ground truth's anchor); "centre" is ObjectCounter as shipped."""
    import logging

    from ultralytics import solutions
    from ultralytics.utils import LOGGER
    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)   # it logs its config, and a no-display warning, on construction
    try:
        cls = solutions.ObjectCounter if anchor == "centre" else _bottom_anchored_counter()
        counter = cls(model=model, region=[tuple(start), tuple(end)], show=False, verbose=False,
                      classes=[0], tracker="bytetrack.yaml")
    finally:
        LOGGER.setLevel(level)
    counter.initialize_region()
    counter.region_initialized = True
    return counter


def _bottom_anchored_counter():
    import torch
    from ultralytics import solutions

    class BottomAnchoredObjectCounter(solutions.ObjectCounter):
        def store_tracking_history(self, track_id, box):
            line = self.track_history[track_id]
            line.append(((float(box[0]) + float(box[2])) / 2, float(box[3])))
            if len(line) > 30:
                line.pop(0)
    del torch
    return BottomAnchoredObjectCounter


def feed_object_counter(counter, boxes, removed_ids) -> None:
    """ObjectCounter.extract_tracks() after model.track(), then process() without the drawing."""
    counter.boxes = boxes.xyxy.cpu()
    counter.clss = boxes.cls.cpu().tolist()
    counter.track_ids = boxes.id.int().cpu().tolist() if boxes.id is not None else []
    counter.confs = boxes.conf.cpu().tolist()
    counter.forget_tracks(removed_ids)
    for box, track_id, cls in zip(counter.boxes, counter.track_ids, counter.clss):
        counter.store_tracking_history(track_id, box)
        history = counter.track_history[track_id]
        prev = history[-2] if len(history) > 1 else None
        counter.count_objects(history[-1], track_id, prev, cls)


def object_counter_counts(counter, start, end) -> dict[str, int]:
    """ObjectCounter's IN/OUT in counterd's terms. It decides direction from the line's axis: for a
    steep line IN is moving right (+x), for a flat one IN is moving down (+y). counterd's 'in' is
    toward (dy, -dx); where that points against ObjectCounter's IN axis, its IN is counterd's out."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    axis = (1.0, 0.0) if abs(dx) < abs(dy) else (0.0, 1.0)
    same = dy * axis[0] - dx * axis[1] > 0
    i, o = counter.in_count, counter.out_count
    return {"in": i, "out": o} if same else {"in": o, "out": i}


# ---------------------------------------------------------------------------------------------


def accuracy(counted: dict[str, dict[str, int]], truth: dict[str, dict[str, int]]) -> float:
    """1 - sum|counted - true| / sum(true), over lines and both directions."""
    err = sum(abs(counted[n][d] - truth[n][d]) for n in truth for d in ("in", "out"))
    total = sum(truth[n][d] for n in truth for d in ("in", "out"))
    return 1.0 - err / total if total else float("nan")


def measure(object_counts=(10, 50, 200), frames: int = 300, rounds: int = 5, warmup: int = 25,
            model: str = "", log=print) -> dict:
    """ms/frame (median round) per library and object count, and each one's count accuracy on the
    synthetic truth (a sanity check of the direction mapping more than a benchmark)."""
    results = {}
    for n in object_counts:
        stream = synthetic_stream(n, frames)
        truth = true_counts(stream)
        times = {"counterd": [], "ultralytics": [], "supervision": []}
        acc = {}
        for r in range(rounds):
            loops = [CounterdLoop(stream), UltralyticsLoop(stream, model), SupervisionLoop(stream)]
            loops = loops[r % 3:] + loops[:r % 3]       # rotate who goes first
            for loop in loops:
                for i in range(warmup):
                    loop.step(i)
                t0 = time.perf_counter()
                for i in range(warmup, len(stream)):
                    loop.step(i)
                times[loop.name].append(1000 * (time.perf_counter() - t0) / (len(stream) - warmup))
                if r == 0:
                    acc[loop.name] = accuracy(loop.counts(), truth)
        ms = {k: float(np.median(v)) for k, v in times.items()}
        results[n] = {"ms": ms, "ms_rounds": times, "accuracy": acc,
                      "true_crossings": sum(truth[l][d] for l in truth for d in ("in", "out"))}
        log(f"hot loop, {n:3d} objects: " + ", ".join(f"{k} {v:.3f} ms" for k, v in ms.items())
            + f"; speedup vs best anchor {min(ms['ultralytics'], ms['supervision']) / ms['counterd']:.1f}x"
            + "; synthetic count accuracy " + ", ".join(f"{k} {v:.2f}" for k, v in acc.items()))
    return results
