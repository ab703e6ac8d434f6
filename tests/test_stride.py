"""counterd/stride.py: when the detector may rest between frames."""
import numpy as np

from counterd.config import config_from_dict
from counterd.detect import Detector
from counterd.detections import Detections
from counterd.pipeline import Pipeline
from counterd.schedule import Decision
from counterd.source import Frame
from counterd.stride import DetectionStride


def tracks(ids, boxes):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections.from_arrays(boxes, np.ones(len(boxes)), np.zeros(len(boxes)), ids)


def walk(stride, speed_px_s, fps=10.0, frames=20, ids=(1,)):
    """A 20 px wide, 60 px tall box per id moving right; returns which frames were detected."""
    detected = []
    for i in range(frames):
        t = i / fps
        if stride.should_detect(t):
            detected.append(i)
            x = 100 + speed_px_s * t
            stride.observe(tracks(list(ids), [[x + 50 * k, 100, x + 50 * k + 20, 160] for k in range(len(ids))]), t)
    return detected


def test_an_empty_scene_is_detected_on_every_frame():
    stride = DetectionStride()
    for i in range(5):
        assert stride.should_detect(i / 10)
        stride.observe(Detections.empty(), i / 10)


def test_slow_walkers_let_the_detector_rest():
    # 30 px/s on a 20 px box = 1.5 widths/s: 0.3 of a width in 0.2 s, so every other frame at 10 fps.
    detected = walk(DetectionStride(max_shift=0.3), speed_px_s=30)
    assert len(detected) <= 12
    assert max(np.diff(detected)) <= 2


def test_fast_objects_are_detected_on_every_frame():
    detected = walk(DetectionStride(max_shift=0.3), speed_px_s=200)
    assert detected == list(range(20))


def test_a_new_track_gets_no_rest():
    stride = DetectionStride()
    stride.observe(tracks([1], [[0, 0, 20, 60]]), 0.0)
    assert stride.should_detect(0.1)
    stride.observe(tracks([1], [[0, 0, 20, 60]]), 0.1)
    assert not stride.should_detect(0.2)        # one still track: rests
    assert stride.should_detect(0.6)            # but never longer than max_rest_s
    stride.observe(tracks([1, 2], [[0, 0, 20, 60], [50, 0, 70, 60]]), 0.6)
    assert stride.should_detect(0.7)            # id 2 has no speed yet


def test_a_restarted_file_is_detected_at_once():
    stride = DetectionStride()
    stride.observe(tracks([1], [[0, 0, 20, 60]]), 5.0)
    stride.observe(tracks([1], [[0, 0, 20, 60]]), 5.1)
    assert stride.should_detect(0.0)


# The stride's look for newcomers (counterd/motiongate.py NewcomerLook, counterd/schedule.py).

GREY = 60


def picture(*boxes, size=(240, 320)):
    """A grey frame with a bright block per (x1, y1, x2, y2)."""
    image = np.full((*size, 3), GREY, np.uint8)
    for x1, y1, x2, y2 in boxes:
        image[max(y1, 0):y2, max(x1, 0):x2] = 230
    return image


def test_the_look_sees_motion_no_tracked_object_explains():
    from counterd.motiongate import NewcomerLook

    walker = (100, 60, 130, 120)
    look = NewcomerLook(pixel_delta=12, max_shift=0.2)
    look.detected(picture(walker), input_px=1.0)
    # The tracked walker moved 4 px (under stride_max_shift of its 30 px width): its own motion.
    assert not look.sees_newcomer(picture((104, 60, 134, 120)), np.array([walker], float))
    # Someone entered at the left edge, outside every tracked box: a newcomer.
    assert look.sees_newcomer(picture((104, 60, 134, 120), (0, 150, 20, 210)), np.array([walker], float))
    # The same change with nothing tracked there would be the walker as a newcomer.
    assert look.sees_newcomer(picture((104, 60, 134, 120)), np.zeros((0, 4)))
    # A change smaller than anything the detector can find (12 input px) is no newcomer.
    assert not look.sees_newcomer(picture(walker, (250, 200, 254, 206)), np.array([walker], float))
    # A frame of another size (camera reconfigured): look with the detector.
    assert look.sees_newcomer(picture(walker, size=(480, 640)), np.array([walker], float))


class ScriptedScene(Detector):
    """Finds what `steady(k)` lists on frame k confidently, and the box `newcomer(k)` (None: not in
    view) confidently (0.9) only on `confident_at` and weakly (0.3) on the other frames, as models
    often find an object entering the picture. The frame's index is in pixel (0, 0)."""

    def __init__(self, cfg, steady, newcomer, confident_at: int):
        super().__init__(cfg)
        self.steady, self.newcomer, self.confident_at = steady, newcomer, confident_at

    def detect(self, frame):
        k = int(frame[0, 0, 0])
        boxes = self.steady(k)
        scores = [0.9] * len(boxes)
        if self.newcomer(k) is not None:
            boxes = boxes + [self.newcomer(k)]
            scores.append(0.9 if k == self.confident_at else 0.3)
        if not boxes:
            return Detections.empty()
        return Detections.from_arrays(boxes, scores, [0] * len(boxes))


def run_scripted(steady, newcomer, confident_at: int, gating: dict, line: tuple, frames: int,
                 size=(240, 320), look: bool = True):
    """(crossings of the line, frames the schedule rested) of a scripted scene at 10 fps, each
    object drawn as a bright block; look=False: the schedule never sees a newcomer."""
    config = config_from_dict({"detector": {"classes": ["person"]}, "gating": gating,
                               "lines": [{"name": "door", "start": list(line[0]), "end": list(line[1])}]}, "t")
    pipeline = Pipeline(config, ScriptedScene(config.detector, steady, newcomer, confident_at))
    if not look:
        pipeline.schedule.look.sees_newcomer = lambda image, tracked: False
    rested = []
    for k in range(frames):
        boxes = steady(k) + ([newcomer(k)] if newcomer(k) is not None else [])
        image = picture(*(tuple(int(v) for v in b) for b in boxes), size=size)
        image[0, 0] = k
        pipeline.step(Frame(image, k / 10, k))
        if pipeline.last_decision.rested:
            rested.append(k)
    pipeline.finish()
    return {d: sum(c.values()) for d, c in pipeline.totals["door"].items()}, rested


def walker_box(k):
    return [(20 + 2 * k, 20, 50 + 2 * k, 80)]


def newcomer_box(k):
    x = -30 + 8 * (k - 20)
    return (x, 150, x + 30, 210) if k >= 20 and x + 30 > 4 else None


def run_scene(stride: bool, confident_at: int, look: bool = True):
    """A slow walker at the top, far from the door (x = 200, lower half), and a newcomer entering
    from the left at the bottom, through the door; the motion gate off."""
    return run_scripted(walker_box, newcomer_box, confident_at, {"enabled": False, "stride": stride},
                        ((200, 120), (200, 240)), 60, look=look)


def test_a_newcomer_confident_only_on_a_frame_the_stride_would_rest_is_counted():
    """The highway car of bench/RESULTS.md ("The stride guard follows the counter"): a newcomer
    found confidently (>= tracker.new_track_score) on one frame only, which the stride would rest
    for the walker it tracks. Without the look it is never tracked and its crossing is lost; the
    look sees its motion, which no tracked box explains, and the detector runs."""
    _, rested_blind = run_scene(stride=True, confident_at=-1, look=False)
    confident_at = next(k for k in rested_blind if k >= 21)      # a frame the stride rests, newcomer in view
    ungated, _ = run_scene(stride=False, confident_at=confident_at)
    blind, _ = run_scene(stride=True, confident_at=confident_at, look=False)
    looked, rested = run_scene(stride=True, confident_at=confident_at)
    assert ungated == {"in": 1, "out": 0}
    assert blind == {"in": 0, "out": 0}                           # what the stride cost before
    assert looked == ungated
    assert confident_at not in rested
    assert any(k < 20 for k in rested)                            # the walker alone still lets it rest


def small_newcomer_box(k):
    """A person 12 x 24 px walking in from the left at 2 px a frame: in a 1280x720 picture, under
    the motion gate's share of changed pixels at its 64 px width."""
    x = -12 + 2 * k
    return (x, 400, x + 12, 424) if x + 12 > 2 else None


def run_gated_scene(confident_at: int, gate: bool, look: bool = True):
    """The small newcomer alone in an empty 1280x720 picture, through a door at x = 60; no stride."""
    return run_scripted(lambda k: [], small_newcomer_box, confident_at, {"enabled": gate, "stride": False},
                        ((60, 300), (60, 500)), 70, size=(720, 1280), look=look)


def test_the_motion_gate_looks_for_newcomers_too():
    """The motion gate rests while under min_changed of the picture changes: a small newcomer stays
    under it, and if its one confident detection falls on a rested frame it is never tracked. The
    gate asks the same look as the stride before it rests."""
    _, rested_blind = run_gated_scene(-1, gate=True, look=False)
    confident_at = next(k for k in rested_blind if small_newcomer_box(k) is not None and k >= 4)
    ungated, _ = run_gated_scene(confident_at, gate=False)
    blind, _ = run_gated_scene(confident_at, gate=True, look=False)
    looked, rested = run_gated_scene(confident_at, gate=True)
    assert ungated == {"in": 1, "out": 0}
    assert blind == {"in": 0, "out": 0}
    assert looked == ungated
    assert confident_at not in rested
    assert rested                       # the empty picture before the newcomer still rests
