"""Which crossing rule earns its place: each rule of counterd/count/counter.py on and off, on every scene and model.

    python bench/ablate.py cache [--scenes ...] [--detectors ...] [--cache-dir DIR]
    python bench/ablate.py replay [--scenes ...] [--detectors ...] [--cache-dir DIR] [--reid-model FILE] [--every N]
    python bench/ablate.py oracle [--detectors ...] [--cache-dir DIR]
    python bench/ablate.py errors [--scenes ...] [--detectors ...] [--only TEXT] [--every N]
    python bench/ablate.py scale [--only TEXT] [--cache-dir DIR]

Detections do not depend on the counting rules, so `cache` runs each detector once per scene of
bench/accuracy.py (same scenes, lines, truth and scoring) and keeps every frame's detections in
DIR/SCENE-MODEL.npz (default /tmp/counterd-ablate; a few MB in all). `replay` then feeds the
cached detections through the tracker and LineCounter under each rule variant: seconds per
variant instead of minutes.

Cached runs detect EVERY frame (gating.enabled = false): the motion gate's rests depend on
whether a track is in a line's band, i.e. on the band being measured. So the numbers are those of
a counter without motion gating; the shipped gate never rests while a track is near a line.

Variants, each against the shipped defaults (counterd/config/sections.py CountingConfig):
- noise band: counting.hysteresis_noise (k x each track's own anchor noise across the line; 0 =
  off) and the estimate's bench-only constants (count.NOISE_SECONDS, NOISE_LEAP, NOISE_UNBIASED).
- band: counting.hysteresis_ratio / hysteresis_px (6 px fixed = the old rule), and a floor in
  the detector's input pixels (counting.hysteresis_input_px = k; one input px = max(width, height)
  / model input size frame px).
- hold: counting.reverse_hold_seconds 0 / 0.2 / 0.4.
- edge rule off: the counter is not told the frame size (cut_by_frame then cuts nothing).
- size-jump rule off: count.JUMP_RATIO = inf for the replay only (no box ever jumps).
- old: all four as before the crossing rules (6 px, no hold, no edge rule, no size jump).
- vehicles (applied to the cached detections before the tracker): detector.vehicle_nested_share
  off / 0.7 / 0.9 (counterd/detect/overlap.py; the cache holds the detector's boxes before that
  rule), and NMS across car/truck/bus by IoU instead of or on top of it (bench-only); the track's
  class vote decayed over time or weighted by box area to a power (bench-only); a box holding two
  vehicle boxes apart from each other dropped instead of them (bench-only); a rider rule (bench-only):
  every bicycle/motorcycle crossing also counts a person, with or without dropping the person
  boxes that lie on a two-wheeler first; an anchor hidden behind a nearer box (inside another
  track's box whose bottom is lower by more than 5% of its own height) decides no side
  (bench-only, `HiddenAnchorCounter`).
- tracker: the recovery of lost tracks by distance off, or with another reach or height ratio
  (counterd/track.py RECOVER_HEIGHTS_PER_SECOND, RECOVER_SPEED_SHARE, RECOVER_SIZE_RATIO,
  RECOVER_GROWTH_RATIO for a whole box, for the replay only).
- dwell (count._dwell_sides, counting.dwell_seconds): off, with the cut rule as before (any cut
  box decides no side; count.ANCHOR_EDGES_ONLY off) or not, another stay, radius or confidence.
- hold (bench-only, `BandHoldCounter`): a crossing back is cancelled by a frame whose anchor is
  back inside the band, not only by one back on the counted side.
- tracker thresholds: tracker.new_track_score / high_score / max_coast_seconds (config keys, set
  for the replay).
- edge: a box cut only by the frame's side deciding lines drawn across the picture
  (counting.side_cut_lines, count.cut_moves_across).
- whole box (count._whole_boxes, HEIGHT_JUMP_RATIO / HEIGHT_SETTLE_SECONDS): off, and the ratio
  and the time a re-drawn box is kept, either side of the shipped 1.25 and 1.0 s.
- with --reid-model: the shipped rules plus appearance stitching (counterd/reid.py, tracker.reid_model),
  alone and with the 3 input px floor; the replay then decodes the video too (the stitcher crops
  people from the frames) and prints the crops embedded and the stitcher's CPU per frame.
Bench-only switches: nothing here changes the product.

`errors` lists, per scene x model, every (line, class, direction) key whose count is wrong and
every counted crossing (time, decoded frame, track id; marked when it matches no true crossing:
wrong direction or spurious) and every true crossing missed (with its ground-truth track, where
the truth has tracks), under the shipped rules (or the one variant --only names): what to look at
in the frames. Decoded frames, not time x frame rate: the PETS video skips 7 frames.

`scale` replays tests/test_scale.py's case on cached detections: its 400 PETS frames upscaled
1x, 2x, 4x and to 1920x1080 (lines scaled with them), yolox_nano, every frame detected (the
test's "every-frame" case also keeps the motion gate on, which never rests near a line); the
first run caches each scaling's detections (DIR/scale-NAME.npz, about a minute each), then each
variant prints its in / out per line and scaling and whether every line holds within 1.

`oracle` says how much association could buy on the scenes with MOT ground truth (pets, tud): the
shipped counter fed (1) the tracker's output, (2) the tracker's own boxes each relabelled with the
id of the ground-truth person it overlaps (IoU >= 0.3; perfect association of what the tracker
reports), (3) every cached detection matched to a ground-truth person, with that person's id
(perfect association of what the detector found), (4) the ground-truth boxes themselves.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import accuracy  # noqa: E402  (scenes, detectors, config building: one definition)
from counterd.count import counter as count  # noqa: E402  (the rules' constants live there)
from counterd import track  # noqa: E402
from counterd.classes import CLASS_IDS, class_name  # noqa: E402
from counterd.count import CrossingEvent, LineCounter, cut_by_frame  # noqa: E402
from counterd.detect.overlap import VEHICLE_IDS, drop_nested_vehicles  # noqa: E402
from counterd.detect.yolo import nms  # noqa: E402
from counterd.detections import Detections  # noqa: E402
from counterd.reid import Embedder, Stitcher  # noqa: E402
from counterd.track import Tracker  # noqa: E402
from counterd.truth import Counted, event_errors, score  # noqa: E402

CACHE_DIR = Path("/tmp/counterd-ablate")
REID_WORK: list[tuple[int, int, int, float]] = []   # (crops embedded, tracks stitched, frames, seconds) per replay
REID_VARIANTS = {     # with --reid-model: name -> the counting variant the stitcher runs with
    "shipped + appearance stitching (tracker.reid_model)": ({}, True, True),
    "appearance stitching + band floor 3 input px": ({"hysteresis_input_px": 3.0}, True, True),
}
MODELS = ("yolox_nano", "yolo11n_int8_320", "yolov8n_int8_640")
INPUT_SIZE = {"yolox_nano": 416, "yolo11n_int8_320": 320, "yolov8n_int8_640": 640}


def scene_config(scene, detector: dict, threads: int = 1, extra: dict | None = None):
    extra = extra or {}
    return accuracy.config_from_dict({
        **extra, "detector": {**detector, "classes": list(scene.classes), "threads": threads},
        "gating": {"enabled": False, "stride": False},   # every frame detected (the stride is on by default)
        "lines": [{"name": line.name, "start": list(line.start), "end": list(line.end)} for line in scene.lines],
    }, "bench/ablate.py")


def cache_path(cache_dir: Path, scene: str, model: str) -> Path:
    return cache_dir / f"{scene}-{model}.npz"


def cache_scene(scene, model: str, cache_dir: Path, threads: int) -> Path:
    """Detect every frame of the scene once; store what the tracker was given, frame by frame."""
    from counterd.pipeline import Pipeline
    from counterd.source import open_source

    # The detector's own boxes: the vehicle rule is one of the variants replayed on them.
    config = scene_config(scene, {**accuracy.DETECTORS[model], "vehicle_nested_share": 0.0}, threads)
    with open_source(str(scene.video)) as source:
        pipeline = Pipeline(config)
        recorder = DetectionRecorder(pipeline)
        try:
            for frame in source:
                pipeline.step(frame)
            pipeline.finish()
        finally:
            pipeline.close()
        size, fps = (source.width, source.height), source.fps
    path = cache_path(cache_dir, scene.name, model)
    tmp = path.with_suffix(".tmp.npz")
    recorder.save(tmp, size, fps=np.array(fps))
    tmp.replace(path)
    return path


class DetectionRecorder:
    """Keeps what a pipeline's tracker is given, frame by frame, for the cache files."""

    def __init__(self, pipeline):
        self.boxes, self.confidence, self.class_id, self.offsets, self.stamps = [], [], [], [0], []
        self._track = pipeline.tracker.update
        pipeline.tracker.update = self._recording

    def _recording(self, detections: Detections, timestamp: float):
        self.boxes.append(detections.xyxy)
        self.confidence.append(detections.confidence)
        self.class_id.append(detections.class_id)
        self.offsets.append(self.offsets[-1] + len(detections))
        self.stamps.append(timestamp)
        return self._track(detections, timestamp)

    def save(self, path: Path, frame_size: tuple[int, int], **extra) -> None:
        np.savez_compressed(path, xyxy=np.concatenate(self.boxes), confidence=np.concatenate(self.confidence),
                            class_id=np.concatenate(self.class_id), offsets=np.array(self.offsets),
                            timestamps=np.array(self.stamps), frame_size=np.array(frame_size), **extra)


def cmd_cache(args) -> int:
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    for name in args.scenes.split(","):
        scene = accuracy.SCENES[name]()
        for model in args.detectors.split(","):
            path = cache_path(args.cache_dir, name, model)
            if path.exists():
                print(f"{path} exists", file=sys.stderr)
                continue
            started = time.perf_counter()
            cache_scene(scene, model, args.cache_dir, args.threads)
            print(f"cached {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return 0



# name -> (counting overrides, edge rule on, size-jump rule on[, detection overrides])
SHIPPED = ({}, True, True)
VARIANTS = {
    "shipped (ratio 0.05 + 2 px, 2x anchor noise, hold 0.2 s, edge, jump)": SHIPPED,
    "noise band off (hysteresis_noise 0: the band before)": ({"hysteresis_noise": 0.0}, True, True),
    "band 6 px fixed": ({"hysteresis_ratio": 0.0, "hysteresis_px": 6.0}, True, True),
    "band ratio 0.05 + 4 px floor": ({"hysteresis_px": 4.0}, True, True),
    "band ratio 0.05 + 6 px floor": ({"hysteresis_px": 6.0}, True, True),
    "band ratio 0.025 + 2 px floor": ({"hysteresis_ratio": 0.025}, True, True),
    "band ratio 0.075 + 2 px floor": ({"hysteresis_ratio": 0.075}, True, True),
    "band ratio 0.1 + 2 px floor": ({"hysteresis_ratio": 0.1}, True, True),
    "band ratio 0.05 + 4 px floor, hold 0.4 s": ({"hysteresis_px": 4.0, "reverse_hold_seconds": 0.4}, True, True),
    # A floor in the detector's input pixels instead of the frame's (box edges are quantised there):
    # frame px = input px x max(width, height) / input size; the same under any upscaling.
    "band ratio 0.05 + 3 input px floor": ({"hysteresis_input_px": 3.0}, True, True),
    "band ratio 0.05 + 5 input px floor": ({"hysteresis_input_px": 5.0}, True, True),
    "hold 0 s": ({"reverse_hold_seconds": 0.0}, True, True),
    "hold 0.4 s": ({"reverse_hold_seconds": 0.4}, True, True),
    "edge rule off": ({}, False, True),
    "size-jump rule off": ({}, True, False),
    "band 6 px fixed + hold 0 s (old band and hold, new edge and jump)": (
        {"hysteresis_ratio": 0.0, "hysteresis_px": 6.0, "reverse_hold_seconds": 0.0, "hysteresis_noise": 0.0}, True, True),
    "old (6 px, no hold, no edge, no jump)": (
        {"hysteresis_ratio": 0.0, "hysteresis_px": 6.0, "reverse_hold_seconds": 0.0, "hysteresis_noise": 0.0}, False, False),
    "vehicles: nested boxes kept (vehicle_nested_share 0)": ({}, True, True, {"vehicle_nested_share": 0.0}),
    "vehicles: nested share 0.7": ({}, True, True, {"vehicle_nested_share": 0.7}),
    "vehicles: nested share 0.9": ({}, True, True, {"vehicle_nested_share": 0.9}),
    "vehicles: NMS across car/truck/bus (IoU 0.45) instead of nested": (
        {}, True, True, {"vehicle_nested_share": 0.0, "vehicle_nms_iou": 0.45}),
    "vehicles: NMS across car/truck/bus (IoU 0.45) and nested 0.8": ({}, True, True, {"vehicle_nms_iou": 0.45}),
    "vehicles: a box holding two apart vehicle boxes is dropped, they stay": ({}, True, True, {"merged": True}),
    "class vote decayed, time constant 1 s": ({}, True, True, {"vote_tau": 1.0}),
    "class vote decayed, time constant 0.5 s": ({}, True, True, {"vote_tau": 0.5}),
    "class vote decayed, time constant 2 s": ({}, True, True, {"vote_tau": 2.0}),
    "class vote decayed, time constant 4 s": ({}, True, True, {"vote_tau": 4.0}),
    "class vote decayed, time constant 8 s": ({}, True, True, {"vote_tau": 8.0}),
    "class: the track's vote when it was last seen (a crossing's class settled when its track ends)": (
        {}, True, True, {"final_class": True}),
    "class: the track's last vote, with side_cut_lines": ({"side_cut_lines": True}, True, True, {"final_class": True}),
    "class vote by score x sqrt(box area)": ({}, True, True, {"vote_area": 0.5}),
    "class vote by score x box area": ({}, True, True, {"vote_area": 1.0}),
    "class vote by score x box area squared": ({}, True, True, {"vote_area": 2.0}),
    "riders: a bicycle/motorcycle crossing also counts a person": ({}, True, True, {"riders": "events"}),
    "riders: same, person boxes on a two-wheeler dropped first": ({}, True, True, {"riders": "drop"}),
    "anchor hidden behind a nearer box decides no side": ({}, True, True, {"hidden_margin": 0.05}),
    # The band at least k times the anchor's own noise across the line (counting.hysteresis_noise;
    # noise: residual of an alpha-beta filter on each track's anchor, averaged over NOISE_SECONDS).
    "noise band: 1x the anchor's noise": ({"hysteresis_noise": 1.0}, True, True),
    "noise band: 1.5x": ({"hysteresis_noise": 1.5}, True, True),
    "noise band: 3x": ({"hysteresis_noise": 3.0}, True, True),
    "noise band: 2x, averaged over 1 s": ({"hysteresis_noise": 2.0}, True, True, {"noise_seconds": 1.0}),
    "noise band: 2x, averaged over 4 s": ({"hysteresis_noise": 2.0}, True, True, {"noise_seconds": 4.0}),
    "noise band: 2x, leap 0.15 box height": ({"hysteresis_noise": 2.0}, True, True, {"noise_leap": 0.15}),
    "noise band: 2x, leap 0.5 box height": ({"hysteresis_noise": 2.0}, True, True, {"noise_leap": 0.5}),
    "noise band: 2x, no leap rule": ({"hysteresis_noise": 2.0}, True, True, {"noise_leap": np.inf}),
    "noise band: 2x, a young track's average biased low (no correction)": (
        {"hysteresis_noise": 2.0}, True, True, {"noise_unbiased": False}),
    "noise band: 1x, no correction": ({"hysteresis_noise": 1.0}, True, True, {"noise_unbiased": False}),
    "noise band: 3x, no correction": ({"hysteresis_noise": 3.0}, True, True, {"noise_unbiased": False}),
    # The tracker's recovery of lost tracks by distance: within (own speed x RECOVER_SPEED_SHARE
    # + RECOVER_HEIGHTS_PER_SECOND own heights a second) x time lost of the predicted path
    # (track.py; shipped: own speed + 1.5 heights a second), and track.RECOVER_SIZE_RATIO.
    "tracker: no recovery of lost tracks by distance": ({}, True, True, {"recover_per_second": 0.0,
                                                                         "recover_speed": 0.0}),
    "tracker: 1 height a second, no speed term (session 4's rule)": (
        {}, True, True, {"recover_per_second": 1.0, "recover_speed": 0.0}),
    "tracker: 1.5 heights a second, no speed term": ({}, True, True, {"recover_per_second": 1.5, "recover_speed": 0.0}),
    "tracker: 2 heights a second, no speed term": ({}, True, True, {"recover_per_second": 2.0, "recover_speed": 0.0}),
    "tracker: own speed + 0.5 heights a second": ({}, True, True, {"recover_per_second": 0.5}),
    "tracker: own speed + 1 height a second": ({}, True, True, {"recover_per_second": 1.0}),
    "tracker: own speed + 2 heights a second": ({}, True, True, {"recover_per_second": 2.0}),
    "tracker: own speed + 3 heights a second": ({}, True, True, {"recover_per_second": 3.0}),
    "tracker: half the own speed + 1.5 heights a second": ({}, True, True, {"recover_speed": 0.5}),
    "tracker: 1.5x the own speed + 1.5 heights a second": ({}, True, True, {"recover_speed": 1.5}),
    "tracker: recovery, height within 1.5x": ({}, True, True, {"recover_size": 1.5}),
    "tracker: recovery, any height": ({}, True, True, {"recover_size": np.inf}),
    # A whole box (not overlapped when lost, not shrunk) comes back at most RECOVER_GROWTH_RATIO taller.
    "tracker: recovery, a whole box grows like a partial one (growth rule off)": (
        {}, True, True, {"recover_growth": track.RECOVER_SIZE_RATIO}),
    "tracker: recovery, a whole box grows at most 1.15x": ({}, True, True, {"recover_growth": 1.15}),
    "tracker: recovery, a whole box grows at most 1.4x": ({}, True, True, {"recover_growth": 1.4}),
    # A box whose height jumps with one edge kept is hidden or merged at the other (count._whole_boxes).
    "whole box: off (height jumps kept as the anchor)": ({}, True, True, {"height_jump": np.inf}),
    "whole box: ratio 1.15": ({}, True, True, {"height_jump": 1.15}),
    "whole box: ratio 1.2": ({}, True, True, {"height_jump": 1.2}),
    "whole box: ratio 1.3": ({}, True, True, {"height_jump": 1.3}),
    "whole box: held 0.5 s": ({}, True, True, {"height_settle": 0.5}),
    "whole box: held 0.75 s": ({}, True, True, {"height_settle": 0.75}),
    "whole box: held 1.25 s": ({}, True, True, {"height_settle": 1.25}),
    "whole box: held 1.5 s": ({}, True, True, {"height_settle": 1.5}),
    # Tracker thresholds (config keys, set for the replay): a vehicle the detector scores low
    # while it crosses starts its track only after the line. Tracks start at max(new_track_score,
    # high_score): below 0.5 new_track_score alone changes nothing more.
    "tracker: max_coast_seconds 1": ({}, True, True, {"tracker": {"max_coast_seconds": 1.0}}),
    "tracker: max_coast_seconds 2": ({}, True, True, {"tracker": {"max_coast_seconds": 2.0}}),
    "tracker: max_coast_seconds 3": ({}, True, True, {"tracker": {"max_coast_seconds": 3.0}}),
    "tracker: new_track_score 0.45 (tracks start at high_score 0.5)": (
        {}, True, True, {"tracker": {"new_track_score": 0.45}}),
    "tracker: new_track_score 0.4, high_score 0.4": (
        {}, True, True, {"tracker": {"new_track_score": 0.4, "high_score": 0.4}}),
    # A box cut by the frame's side still decides a line drawn across the picture (count.cut_moves_across).
    "edge: a box cut at the side decides lines drawn across (counting.side_cut_lines)": (
        {"side_cut_lines": True}, True, True),
    # Someone standing on a line (count._dwell_sides: the side of the stay's mean, counting.dwell_seconds),
    # and boxes cut only at edges the anchor does not use deciding sides (count.ANCHOR_EDGES_ONLY).
    "dwell: off (dwell_seconds 0)": ({"dwell_seconds": 0.0}, True, True),
    "dwell: off, and any cut box decides no side (the rules before)": (
        {"dwell_seconds": 0.0}, True, True, {"anchor_edges_only": False}),
    "dwell: on, any cut box decides no side": ({}, True, True, {"anchor_edges_only": False}),
    "dwell: 0.5 s": ({"dwell_seconds": 0.5}, True, True),
    "dwell: 2 s": ({"dwell_seconds": 2.0}, True, True),
    "dwell: radius 0.05 box height": ({}, True, True, {"dwell_radius": 0.05}),
    "dwell: radius 0.2 box height": ({}, True, True, {"dwell_radius": 0.2}),
    "dwell: 2 standard errors": ({}, True, True, {"dwell_confidence": 2.0}),
    "dwell: 5 standard errors": ({}, True, True, {"dwell_confidence": 5.0}),
    "hold: crossing back cancelled by a frame back inside the band (bench-only)": ({}, True, True, {"band_hold": True}),
    "hold: cancelled inside the band, dwell off": ({"dwell_seconds": 0.0}, True, True, {"band_hold": True}),
    # A held height change that moved the anchor's edge (count.SETTLE_AWAY of the old height from
    # where the re-drawn box kept it) is another object: the track's sides start over.
    "settled height, sides kept (off)": ({}, True, True, {"settle_away": np.inf}),
    "settled height, start over beyond 0.2 height": ({}, True, True, {"settle_away": 0.2}),
    "settled height, start over beyond 0.5 height": ({}, True, True, {"settle_away": 0.5}),
    # Two overlapping tracks crossing a line back in opposite directions on one frame exchanged
    # people: they exchange their histories on the line (count.EXCHANGE_IDS).
    "id exchange through a blob: counted as two crossings back (off)": ({}, True, True, {"exchange_ids": False}),
    # A crossing back on one box off its track's path, barely past the band (count._spikes).
    "spike: off (a box 3 sd off its path decides sides as any other)": ({}, True, True, {"spike_sd": np.inf}),
    "spike: 2 sd off the path": ({}, True, True, {"spike_sd": 2.0}),
    "spike: 4 sd off the path": ({}, True, True, {"spike_sd": 4.0}),
    "spike: any distance past the band": ({}, True, True, {"spike_past": np.inf}),
    "spike: up to 2 sd past the band": ({}, True, True, {"spike_past": 2.0}),
}
COUNT_SWITCHES = {    # bench key -> counterd/count/counter.py constant it sets for one replay
    "height_jump": "HEIGHT_JUMP_RATIO", "height_settle": "HEIGHT_SETTLE_SECONDS",
    "dwell_radius": "DWELL_RADIUS", "dwell_confidence": "DWELL_CONFIDENCE", "anchor_edges_only": "ANCHOR_EDGES_ONLY",
    "settle_away": "SETTLE_AWAY", "exchange_ids": "EXCHANGE_IDS", "spike_sd": "SPIKE_SD", "spike_past": "SPIKE_PAST"}
BENCH_ONLY = tuple(COUNT_SWITCHES) + ("vehicle_nms_iou", "vote_tau", "vote_area", "riders", "hidden_margin",
                                      "noise_seconds", "noise_leap", "noise_unbiased", "recover_per_second",
                                      "recover_size", "recover_speed", "recover_growth", "tracker", "band_hold",
                                      "merged", "final_class")
TWO_WHEELERS = np.array([CLASS_IDS["bicycle"], CLASS_IDS["motorcycle"]])


class VoteTracker(Tracker):
    """Bench-only: the class vote decayed with time constant tau (seconds) since the track was
    last seen, and/or each detection's score weighted by its box area to the power by_area."""

    def __init__(self, cfg, tau: float | None, by_area: float):
        super().__init__(cfg)
        self.tau, self.by_area = tau, by_area

    def _correct(self, rows, boxes, class_id, confidence, t):
        if self.tau is not None and len(rows):
            age = np.maximum(t - self._state[rows, track.SEEN], 0.0)
            self._votes[rows] *= np.exp(-age / self.tau)[:, None].astype(np.float32)
        if self.by_area:
            confidence = confidence * ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])) ** self.by_area
        return super()._correct(rows, boxes, class_id, confidence, t)


class BandHoldCounter(LineCounter):
    """Bench-only: a crossing back is held only while the track stays beyond the band on the far
    side. A frame whose anchor is back inside the band of that line (an uncut box whose size did
    not jump) cancels the pending reversal: the side returns to the one last counted, so leaving
    the band on the far side again starts a new hold."""

    def update(self, tracks, timestamp, frame_size=None, input_px=None):
        n = self._count
        if n and len(tracks) and self.lines and np.isfinite(self._reverse_at[:n]).any():
            tracks_ok = tracks[tracks.tracker_id >= 0]
            pos = np.minimum(self._sorted_ids.searchsorted(tracks_ok.tracker_id), n - 1)
            rows = self._order[pos]
            known = self._sorted_ids[pos] == tracks_ok.tracker_id
            xyxy = tracks_ok.xyxy[known]
            rows = rows[known]
            whole = ~cut_by_frame(xyxy, frame_size)
            rows, xyxy = rows[whole], xyxy[whole]
            anchor = xyxy @ count.ANCHOR_WEIGHTS[self.counting.anchor]
            band = self._band(rows, xyxy)
            back = (np.abs(count.signed_distance(anchor, self._geometry)) <= band) & np.isfinite(self._reverse_at[rows])
            r, j = np.nonzero(back)
            self._side[rows[r], j] = self._counted[rows[r], j]
            self._reverse_at[rows[r], j] = count.NO_TIME
        return super().update(tracks, timestamp, frame_size, input_px)


class HiddenAnchorCounter(LineCounter):
    """Bench-only: a track whose anchor lies inside another track's box, whose bottom edge is
    lower by more than margin x the track's height (the other is in front of it, hiding its
    feet or wheels), decides no side in that frame, like a box that jumped in size."""

    def __init__(self, lines, counting, margin: float):
        super().__init__(lines, counting)
        self.margin = margin

    def _unsteady(self, rows, xyxy, points, cut, t):
        odd = super()._unsteady(rows, xyxy, points, cut, t)
        ax, ay = points[:, :1], points[:, 1:]
        x1, y1, x2, y2 = xyxy.T[:, None, :]
        hidden = (ax > x1) & (ax < x2) & (ay > y1) & (y2 > ay + self.margin * (xyxy[:, 3:] - xyxy[:, 1:2]))
        np.fill_diagonal(hidden, False)
        return odd | hidden.any(axis=1)


def drop_riders(dets: Detections) -> Detections:
    """Bench-only: person boxes with half their area or more inside a bicycle/motorcycle box."""
    person = np.flatnonzero(dets.class_id == CLASS_IDS["person"])
    wheels = np.flatnonzero(np.isin(dets.class_id, TWO_WHEELERS))
    if not len(person) or not len(wheels):
        return dets
    a, b = dets.xyxy[person], dets.xyxy[wheels]
    size = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    keep = np.ones(len(dets), bool)
    keep[person[(size[..., 0] * size[..., 1] >= 0.5 * area[:, None]).any(axis=1)]] = False
    return dets[keep]


def drop_merged_vehicles(dets: Detections, share: float) -> Detections:
    """Bench-only: a vehicle box with two or more vehicle boxes lying `share` inside it that do
    not overlap each other (IoU < 0.3) is two vehicles drawn as one: it goes, they stay."""
    vehicle = np.flatnonzero(np.isin(dets.class_id, VEHICLE_IDS))
    if len(vehicle) < 3:
        return dets
    from counterd.track import box_iou
    b = dets.xyxy[vehicle]
    size = np.clip(np.minimum(b[:, None, 2:], b[None, :, 2:]) - np.maximum(b[:, None, :2], b[None, :, :2]), 0, None)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    inside = size[..., 0] * size[..., 1] >= share * area[:, None]        # [i, j]: i inside j
    np.fill_diagonal(inside, False)
    apart = box_iou(b, b) < 0.3
    merged = np.zeros(len(b), bool)
    for j in np.flatnonzero(inside.sum(0) >= 2):
        parts = np.flatnonzero(inside[:, j])
        merged[j] = bool((apart[np.ix_(parts, parts)] | np.eye(len(parts), dtype=bool)).all())
    if not merged.any():
        return dets
    keep = np.ones(len(dets), bool)
    keep[vehicle[merged]] = False
    return dets[keep]


def vehicle_nms(dets: Detections, iou: float) -> Detections:
    """Bench-only: NMS with car, truck and bus as one class (the higher score keeps its class)."""
    vehicle = np.isin(dets.class_id, VEHICLE_IDS)
    if np.count_nonzero(vehicle) < 2:
        return dets
    group = np.where(vehicle, -1, dets.class_id)
    return dets[np.sort(nms(dets.xyxy, dets.confidence, group, iou))]


def load_cache(path: Path, every: int = 1):
    """[(timestamp, Detections)], frame size; with every > 1, every nth frame only (the cache holds
    every frame: a box that cannot keep up with its camera analyses fewer)."""
    with np.load(path) as data:
        offsets = data["offsets"]
        frames = [(float(t), Detections.from_arrays(data["xyxy"][a:b], data["confidence"][a:b],
                                                    data["class_id"][a:b]))
                  for t, a, b in zip(data["timestamps"], offsets[:-1], offsets[1:])][::every]
        return frames, tuple(int(v) for v in data["frame_size"])


def decoded(video: Path):
    """The video's frames as BGR images, in order."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return
            yield image
    finally:
        capture.release()


def replay(scene, model, frames, frame_size, variant, reid_model: str = "", events_out: list | None = None) -> object:
    """Track and count cached detections under one rule variant (with appearance stitching when
    reid_model is given); the score against the truth. events_out, when given, gets the events."""
    events = replay_events(scene, model, frames, frame_size, variant, reid_model)
    if events_out is not None:
        events_out.extend(events)
    counted = [Counted(e.timestamp, e.line, e.direction, e.class_name) for e in events]
    return score(scene.truth.crossings, counted, classes=scene.classes)


def replay_events(scene, model, frames, frame_size, variant, reid_model: str = "",
                  input_px: float | None = None) -> list[CrossingEvent]:
    """Track and count cached detections under one rule variant: the crossing events."""
    counting, edge_rule, jump_rule, detection = (*variant, {})[:4]
    bench = {k: v for k, v in detection.items() if k in BENCH_ONLY}          # not config keys
    detection = {k: v for k, v in detection.items() if k not in BENCH_ONLY}
    nms_iou, riders = bench.get("vehicle_nms_iou"), bench.get("riders")
    if input_px is None:
        input_px = max(frame_size) / INPUT_SIZE[model]     # frame px per model input px (square inputs)
    tracking = {"reid_model": reid_model, **bench.get("tracker", {})}
    config = scene_config(scene, {"type": "motion", **detection}, extra={"counting": counting, "tracker": tracking})
    nested_share = config.detector.vehicle_nested_share
    tracker = VoteTracker(config.tracker, bench.get("vote_tau"), bench.get("vote_area", 0.0))
    counter = (HiddenAnchorCounter(config.lines, config.counting, bench["hidden_margin"])
               if "hidden_margin" in bench else BandHoldCounter(config.lines, config.counting)
               if bench.get("band_hold") else LineCounter(config.lines, config.counting))
    stitcher = Stitcher(config.tracker, Embedder(reid_model), counter.watching, tracker.take_over) if reid_model else None
    images = decoded(scene.video) if reid_model else iter(lambda: None, 0)
    switched = {name: getattr(count, name) for key, name in COUNT_SWITCHES.items() if key in bench}
    for key, name in COUNT_SWITCHES.items():
        if key in bench:
            setattr(count, name, bench[key])
    saved, saved_noise = count.JUMP_RATIO, count.NOISE_SECONDS
    count.JUMP_RATIO = saved if jump_rule else np.inf       # bench-only: no box ever jumps
    count.NOISE_SECONDS = bench.get("noise_seconds", saved_noise)
    saved_leap, saved_unbiased = count.NOISE_LEAP, count.NOISE_UNBIASED
    count.NOISE_LEAP = bench.get("noise_leap", saved_leap)
    count.NOISE_UNBIASED = bench.get("noise_unbiased", saved_unbiased)
    saved_recover = (track.RECOVER_HEIGHTS_PER_SECOND, track.RECOVER_SIZE_RATIO, track.RECOVER_SPEED_SHARE,
                     track.RECOVER_GROWTH_RATIO)
    track.RECOVER_HEIGHTS_PER_SECOND = bench.get("recover_per_second", saved_recover[0])
    track.RECOVER_SIZE_RATIO = bench.get("recover_size", saved_recover[1])
    track.RECOVER_SPEED_SHARE = bench.get("recover_speed", saved_recover[2])
    track.RECOVER_GROWTH_RATIO = bench.get("recover_growth", saved_recover[3])
    try:
        events, stitching, last_class = [], 0.0, {}
        for (t, detections), image in zip(frames, images):
            if nms_iou is not None:
                detections = vehicle_nms(detections, nms_iou)
            if bench.get("merged"):
                detections = drop_merged_vehicles(detections, nested_share)
            detections = drop_nested_vehicles(detections, nested_share)
            if riders == "drop":
                detections = drop_riders(detections)
            tracks = tracker.update(detections, t)
            if stitcher is not None:
                started = time.perf_counter()
                tracks = stitcher.update(tracks, image, t)
                stitching += time.perf_counter() - started
            if bench.get("final_class"):
                last_class.update(zip(tracks.tracker_id.tolist(), tracks.class_id.tolist()))
            events += counter.update(tracks, t, frame_size if edge_rule else None, input_px)
        events += counter.finish()
    finally:
        count.JUMP_RATIO, count.NOISE_SECONDS, count.NOISE_LEAP = saved, saved_noise, saved_leap
        count.NOISE_UNBIASED = saved_unbiased
        (track.RECOVER_HEIGHTS_PER_SECOND, track.RECOVER_SIZE_RATIO, track.RECOVER_SPEED_SHARE,
         track.RECOVER_GROWTH_RATIO) = saved_recover
        for name, value in switched.items():
            setattr(count, name, value)
    if stitcher is not None and variant == SHIPPED:       # the work of stitching alone, counted once
        REID_WORK.append((stitcher.embedder.crops_embedded, stitcher.stitched, len(frames), stitching))
    if last_class:        # each crossing under its track's vote when the track was last seen
        events = [CrossingEvent(e.timestamp, e.line, e.direction, class_name(last_class[e.track_id]), e.track_id)
                  for e in events]
    if riders:
        events += [CrossingEvent(e.timestamp, e.line, e.direction, "person", e.track_id)
                   for e in events if e.class_name in ("bicycle", "motorcycle")]
    return events


def oracle_tracks(mode: str, tracker: Tracker, detections: Detections, t: float, gt, frame: int) -> Detections:
    """One frame's tracks for the counter under an `oracle` mode (see the module's docstring)."""
    from counterd.track import box_iou, match

    here = gt.frame == frame
    if mode == "gt boxes":
        n = int(np.count_nonzero(here))
        return Detections.from_arrays(gt.xyxy[here], np.ones(n), np.zeros(n), gt.track_id[here])
    if mode == "tracker":
        return tracker.update(detections, t)
    if mode == "tracker boxes, true ids":
        tracks = tracker.update(detections, t)
        ids = tracks.tracker_id + (1 << 40)            # unmatched boxes keep an id of their own
    else:                                              # "detections, true ids"
        tracks = detections[detections.class_id == 0]
        ids = np.full(len(tracks), -1, np.int64)
    if len(tracks) and np.count_nonzero(here):
        rows, cols = match(box_iou(tracks.xyxy, gt.xyxy[here]), 0.3)
        ids[rows] = gt.track_id[here][cols]
    return Detections(tracks.xyxy, tracks.confidence, tracks.class_id, ids)


def cmd_oracle(args) -> int:
    from counterd.truth import read_mot

    modes = ("tracker", "tracker boxes, true ids", "detections, true ids", "gt boxes")
    gt_files = {"pets": "pets09_s2l1/gt_480x360.txt", "tud": "tud_stadtmitte/gt_640x480.txt"}
    print("| scene | model | " + " | ".join(modes) + " |\n" + "|---" * (len(modes) + 2) + "|")
    for name, gt_file in gt_files.items():
        scene, gt = accuracy.SCENES[name](), read_mot(accuracy.DATA / gt_file)
        for model in args.detectors.split(","):
            frames, size = load_cache(cache_path(args.cache_dir, name, model), args.every)
            cells = []
            for mode in modes:
                config = scene_config(scene, {"type": "motion"})
                tracker, counter = Tracker(config.tracker), LineCounter(config.lines, config.counting)
                events = []
                for index, (t, detections) in enumerate(frames):
                    events += counter.update(oracle_tracks(mode, tracker, detections, t, gt, index + 1), t, size)
                events += counter.finish()
                result = score(scene.truth.crossings, [Counted(e.timestamp, e.line, e.direction, e.class_name)
                                                       for e in events], classes=scene.classes)
                cells.append(f"{result.accuracy:.3f} / {result.wrong_direction}")
            print(f"| {name} | {model} | " + " | ".join(cells) + " |", flush=True)
    return 0


def cmd_errors(args) -> int:
    """Every wrong key and every counted or missed crossing, event by event (see the docstring)."""
    variant = next((VARIANTS[v] for v in VARIANTS if args.only and args.only in v), SHIPPED)
    for name in args.scenes.split(","):
        scene = accuracy.SCENES[name]()
        truth = [c for c in scene.truth.crossings if c.class_name in scene.classes]
        for model in args.detectors.split(","):
            frames, size = load_cache(cache_path(args.cache_dir, name, model), args.every)
            stamps = np.array([t for t, _ in frames])
            events: list[CrossingEvent] = []
            result = replay(scene, model, frames, size, variant, events_out=events)
            print(f"\n## {name} {model}: accuracy {result.accuracy:.3f}, wrong direction {result.wrong_direction}, "
                  f"spurious {result.spurious}, missed {result.missed}")
            for key in result.keys:
                if result.counted[key] != result.true[key]:
                    print(f"  key {'/'.join(key)}: counted {result.counted[key]}, true {result.true[key]}")
            events = [e for e in events if e.class_name in scene.classes]
            counted = [Counted(e.timestamp, e.line, e.direction, e.class_name) for e in events]
            missed, wrong, spurious = event_errors(truth, counted)
            verdict = {id(c): "  UNMATCHED: WRONG DIRECTION" for c in wrong}
            verdict.update({id(c): "  UNMATCHED: SPURIOUS" for c in spurious})
            rows = [(e.line, e.timestamp, f"counted {e.direction:3} {e.class_name:10} track {e.track_id}"
                     + verdict.get(id(c), "")) for e, c in zip(events, counted)]
            rows += [(c.line, c.time, f"MISSED  {c.direction:3} {c.class_name:10}"
                      + (f" truth track {c.track_id}" if c.track_id >= 0 else "")) for c in missed]
            for line, t, text in sorted(rows):
                frame = int(np.abs(stamps - t).argmin()) + 1       # the decoded frame stamped nearest
                print(f"  {line:9} decoded frame {frame:4d} ({t:6.2f} s) {text}")
    return 0


def scale_scenes() -> dict:
    """tests/test_scale.py's scalings: name -> (sx, sy, Scene with the test's lines scaled)."""
    sys.path.insert(0, str(BENCH.parent / "tests"))
    import test_scale   # noqa: E402  (its clip, lines and scalings: one definition)

    scalings = {"1x": (1, 1), **test_scale.SCALES}
    return {name: (sx, sy, accuracy.Scene(
        f"scale-{name}", test_scale.PETS_VIDEO, ("person",),
        tuple(accuracy.LineConfig(line, (a[0] * sx, a[1] * sy), (b[0] * sx, b[1] * sy))
              for line, (a, b) in test_scale.LINES.items()), None))
        for name, (sx, sy) in scalings.items()}, test_scale.FRAMES, test_scale.FPS


def cache_scaled(scene, sx: float, sy: float, frames: int, fps: float, path: Path) -> None:
    """Detect every frame of the scaled clip with yolox_nano, as the scale test does."""
    import cv2

    from counterd.pipeline import Pipeline
    from counterd.source import Frame

    config = scene_config(scene, accuracy.DETECTORS["yolox_nano"])
    pipeline = Pipeline(config)
    recorder = DetectionRecorder(pipeline)
    size = None
    try:
        for i, image in zip(range(frames), decoded(scene.video)):
            if size is None:
                size = (round(image.shape[1] * sx), round(image.shape[0] * sy))
            if (sx, sy) != (1, 1):
                image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
            pipeline.step(Frame(image, i / fps, i))
        pipeline.finish()
        input_px = pipeline.detector.input_scale(*size)
    finally:
        pipeline.close()
    recorder.save(path, size, input_px=np.array(input_px))


def cmd_scale(args) -> int:
    scalings, frames, fps = scale_scenes()
    cached = {}
    for name, (sx, sy, scene) in scalings.items():
        path = args.cache_dir / f"scale-{name}.npz"
        if not path.exists():
            args.cache_dir.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            cache_scaled(scene, sx, sy, frames, fps, path)
            print(f"cached {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        with np.load(path) as data:
            input_px = float(data["input_px"])
        cached[name] = (*load_cache(path), input_px)
    lines = [line.name for line in next(iter(scalings.values()))[2].lines]
    print("in / out per line, " + ", ".join(lines) + "\n")
    print("| variant | " + " | ".join(scalings) + " | within 1 |\n" + "|---" * (len(scalings) + 2) + "|")
    for variant, spec in VARIANTS.items():
        if spec is not SHIPPED and (args.only_shipped or args.only not in variant):
            continue
        totals = {}
        for name, (_, _, scene) in scalings.items():
            replayed, size, input_px = cached[name]
            events = replay_events(scene, "yolox_nano", replayed, size, spec, input_px=input_px)
            totals[name] = [(sum(e.line == line and e.direction == "in" for e in events),
                             sum(e.line == line and e.direction == "out" for e in events)) for line in lines]
        base = totals["1x"]
        holds = all(abs(a[0] - b[0]) <= 1 and abs(a[1] - b[1]) <= 1
                    for scaled in totals.values() for a, b in zip(base, scaled))
        cells = [", ".join(f"{i}/{o}" for i, o in totals[name]) for name in scalings]
        print(f"| {variant} | " + " | ".join(cells) + f" | {'yes' if holds else '**no**'} |", flush=True)
    return 0


def cmd_replay(args) -> int:
    scenes, models = args.scenes.split(","), args.detectors.split(",")
    for name in [v for v in VARIANTS if VARIANTS[v] is not SHIPPED]:
        if args.only_shipped or (args.only and args.only not in name):
            del VARIANTS[name]
    results = {}     # (variant, scene, model) -> score
    for name in scenes:
        scene = accuracy.SCENES[name]()
        for model in models:
            path = cache_path(args.cache_dir, name, model)
            if not path.exists():
                print(f"no cache {path}: run `python bench/ablate.py cache` first", file=sys.stderr)
                return 2
            frames, size = load_cache(path, args.every)
            started = time.perf_counter()
            for variant, spec in VARIANTS.items():
                results[variant, name, model] = replay(scene, model, frames, size, spec)
            for variant, spec in (REID_VARIANTS.items() if args.reid_model else ()):
                results[variant, name, model] = replay(scene, model, frames, size, spec, args.reid_model)
            print(f"{name} {model}: {len(VARIANTS)} variants in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr, flush=True)
    variants = list(VARIANTS) + (list(REID_VARIANTS) if args.reid_model else [])
    print_table(results, scenes, models, variants)
    if REID_WORK:
        crops, stitched, frames, seconds = (sum(w[i] for w in REID_WORK) for i in range(4))
        print(f"\nappearance stitching: {stitched} tracks stitched, {crops} crops embedded over {frames} frames "
              f"({crops / frames:.3f} a frame); the stitcher's CPU (crops kept, model runs): "
              f"{1000 * seconds / frames:.3f} ms a frame on average")
    return 0


def print_table(results: dict, scenes: list[str], models: list[str], variants: list[str]) -> None:
    """Per variant: accuracy per scene (one number per model), the mean over scenes per model and
    over everything, wrong-direction share of all true crossings, and the worst loss of any
    scene x model against the best variant for it."""
    cells = [(s, m) for s in scenes for m in models]
    best = {c: max(results[v, *c].accuracy for v in variants) for c in cells}
    print(f"models per cell: {' / '.join(models)}\n")
    print("| variant | " + " | ".join(scenes) + " | mean per model | mean | wrong dir | worst loss vs best |")
    print("|---" * (len(scenes) + 5) + "|")
    for v in variants:
        row = [" / ".join(f"{results[v, s, m].accuracy:.3f}" for m in models) for s in scenes]
        per_model = [np.mean([results[v, s, m].accuracy for s in scenes]) for m in models]
        wrong = sum(results[v, *c].wrong_direction for c in cells)
        true = sum(results[v, *c].true_total for c in cells)
        loss, where = max((best[c] - results[v, *c].accuracy, c) for c in cells)
        print(f"| {v} | " + " | ".join(row) + f" | {' / '.join(f'{a:.3f}' for a in per_model)} | "
              f"{np.mean(per_model):.3f} | {wrong}/{true} ({100 * wrong / true:.1f}%) | "
              f"{loss:.3f} ({where[0]} {where[1]}) |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("cache", "replay", "oracle", "errors", "scale"))
    parser.add_argument("--scenes", default=",".join(accuracy.SCENES), help="comma-separated subset")
    parser.add_argument("--detectors", default=",".join(MODELS), help="comma-separated subset")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (cache)")
    parser.add_argument("--reid-model", default="", metavar="FILE",
                        help="replay: also the shipped rules with appearance stitching by this OSNet ONNX file")
    parser.add_argument("--only", default="", metavar="TEXT",
                        help="replay: the shipped rules and the variants whose name contains TEXT")
    parser.add_argument("--only-shipped", action="store_true", help="replay: the shipped rules only (and --reid-model)")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="replay, errors, oracle: every Nth cached frame only (as bench/accuracy.py --every)")
    args = parser.parse_args()
    if not (accuracy.DATA / "pets09_s2l1").exists():
        print(f"needs {accuracy.DATA} (../shared beside the repo)", file=sys.stderr)
        return 2
    return {"cache": cmd_cache, "replay": cmd_replay, "oracle": cmd_oracle, "errors": cmd_errors,
            "scale": cmd_scale}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
