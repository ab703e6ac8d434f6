"""Gating that does not cost counts: no frame is skipped while a tracked object is in a line's band
or about to enter it (counterd/count/geometry.py near_lines, Pipeline.watching_lines)."""
import numpy as np

from counterd.config import CountingConfig, LineConfig, config_from_dict
from counterd.count import LineCounter, LineGeometry, near_lines
from counterd.detect import Detector
from counterd.detections import Detections
from counterd.pipeline import Pipeline
from counterd.source import Frame

VERTICAL = LineGeometry.of([LineConfig("door", (100, 0), (100, 200))])


def points(*xy):
    return np.array(xy, float).reshape(-1, 2)


def test_inside_the_band_is_near():
    assert near_lines(points((104, 50)), points((104, 50)), VERTICAL, band=6)


def test_entering_the_band_within_the_horizon_is_near():
    assert near_lines(points((80, 50)), points((96, 50)), VERTICAL, band=6)      # reaches the band
    assert near_lines(points((80, 50)), points((130, 50)), VERTICAL, band=6)     # jumps across it


def test_far_away_or_beside_the_segment_is_not_near():
    assert not near_lines(points((20, 50)), points((40, 50)), VERTICAL, band=6)   # still far
    assert not near_lines(points((80, 300)), points((130, 300)), VERTICAL, band=6)  # crosses below its end
    assert not near_lines(points(), points(), VERTICAL, band=6)


def scene(line_x: int, stride: bool) -> tuple[int, dict]:
    """A block walking right at 4 px a frame past a vertical line at line_x, through the real
    motion detector; returns (frames detected, totals)."""
    cfg = config_from_dict({"detector": {"type": "motion"}, "gating": {"stride": stride, "stride_max_rest_s": 0.5},
                            "lines": [{"name": "door", "start": [line_x, 0], "end": [line_x, 240]}]}, "t")
    pipeline = Pipeline(cfg)
    for k in range(80):
        image = np.full((240, 320, 3), 60, np.uint8)
        image[80:200, 10 + 4 * k // 2:40 + 4 * k // 2] = 230
        pipeline.step(Frame(image, k / 10, k))
    pipeline.finish()
    return pipeline.times.frames, {d: sum(c.values()) for d, c in pipeline.totals["door"].items()}


def test_the_stride_rests_away_from_lines_and_never_near_them():
    far_frames, _ = scene(line_x=310, stride=True)        # the block never gets near the line
    near_frames, counted = scene(line_x=120, stride=True)
    _, ungated = scene(line_x=120, stride=False)
    assert far_frames < 60                                # a slow walker lets the detector rest
    assert near_frames > far_frames                       # but not while near the line
    assert counted == ungated == {"in": 1, "out": 0}


def test_the_motion_gate_never_rests_while_someone_stands_in_a_band():
    """A person standing still on the line: the picture does not change, yet every frame is
    detected (a crossing decided on a rested frame would be decided on a guess); the same person
    away from the line lets the gate rest."""
    from tests.test_daemon_worker import scheduled_pipeline, with_box

    calls = {}
    for line_x in (30, 140):              # the box's feet at x = 30: on the line, or far from it
        pipeline = scheduled_pipeline(line_x=line_x, max_skip_s=100.0)
        for i in range(10):
            pipeline.step(Frame(with_box(20), i * 0.1, i))
        calls[line_x] = pipeline.detector.calls
    assert calls == {30: 10, 140: 1}


class SlidingCar(Detector):
    """A 200 x 40 px box (a car) moving right 12 px a frame: more than its 2 px band each frame."""

    def detect(self, frame):
        x = 12.0 * float(frame[0, 0, 0])
        return Detections.from_arrays([[x, 100, x + 200, 140]], [0.9], [2])


def crossings_with_stride(stride: bool, detector, class_name: str, line: dict, frames: int):
    """(time, direction) of every crossing and how many frames were detected, one line, 10 fps."""
    config = config_from_dict({"detector": {"classes": [class_name]},
                               "gating": {"enabled": False, "stride": stride}, "lines": [line]}, "t")
    pipeline = Pipeline(config, detector(config.detector))
    events = []
    for k in range(frames):
        events += pipeline.step(Frame(np.full((360, 480, 3), k, np.uint8), k / 10, k))
    events += pipeline.finish()
    return [(round(e.timestamp, 2), e.direction) for e in events], pipeline.times.frames


def test_the_stride_never_rests_on_a_crossing_the_counter_has_not_decided():
    """The car's anchor steps from 8 px before the line to 4 px past its band in one frame. The
    frame after that step must be detected, though the car is predicted clear of the band by
    then: its crossing since it was last seen is only decided on a detected frame, so resting
    there would count it a frame late (or, with a turn, not at all)."""
    line = {"name": "road", "start": [300, 0], "end": [300, 360]}
    ungated, every_frame = crossings_with_stride(False, SlidingCar, "car", line, 30)
    strided, detected = crossings_with_stride(True, SlidingCar, "car", line, 30)
    assert detected < every_frame                     # the stride does rest this car elsewhere
    assert strided == ungated == [(1.7, "in")]


class StillBox(Detector):
    """One box that does not move."""

    def __init__(self, cfg, box):
        super().__init__(cfg)
        self.xyxy = box

    def detect(self, frame):
        return Detections.from_arrays([self.xyxy], [0.9], [2])


def test_an_object_cut_by_the_frame_edge_is_watched_within_its_own_height():
    """A car leaving through the right edge, its box's bottom 10 px above a line (more than its
    4.5 px band): cut by the edge, its anchor may be anywhere in the box, so the stride does
    not rest; the same car whole, in the middle of the picture, lets it rest."""
    def detected(box):
        config = config_from_dict({"detector": {"classes": ["car"]},
                                   "gating": {"enabled": False, "stride": True},
                                   "lines": [{"name": "pavement", "start": [20, 300], "end": [620, 300]}]}, "t")
        pipeline = Pipeline(config, StillBox(config.detector, box))
        for k in range(20):
            pipeline.step(Frame(np.zeros((360, 640, 3), np.uint8), k / 10, k))
        return pipeline.times.frames, pipeline.watching_lines(2.0, 0.15)

    assert detected([600, 200, 640, 290]) == (20, True)      # cut by the right edge
    frames, watching = detected([500, 200, 540, 290])        # whole
    assert frames < 20 and not watching


# A walker's anchor (bottom centre) per frame: down to the segment's band at x = 300, deciding its
# side 6 px above the line (band: 5 px, 0.05 of its 100 px height), then drifting right inside
# the band past the segment's end at x = 330, leaving the band on frame 15 at x = 356, and
# walking off to the right. Leaving there, the chord from where its side was decided meets the
# line at x = 328 (counts); one frame later it would meet it at x = 337, past the end.
WALKER = [(300, 100 + 4 * k) for k in range(12)] + [(320, 147), (340, 148), (350, 152), (356, 156)] + \
    [(380 + 16 * k, 157 + k) for k in range(6)] + [(470, 163)] * 14


class Walker(Detector):
    """A person (80 x 100 px box) whose anchor follows WALKER, frame by frame."""

    def detect(self, frame):
        x, y = WALKER[int(frame[0, 0, 0])]
        return Detections.from_arrays([[x - 40, y - 100, x + 40, y]], [0.9], [0])


def test_the_stride_never_rests_on_a_side_the_counter_has_yet_to_decide():
    """Inside the band past the segment's end the walker is far from the segment, yet the counter
    will judge its crossing by the chord from where its side was last decided: the frame it
    leaves the band on must be detected (LineCounter.undecided), or the crossing is lost."""
    line = {"name": "segment", "start": [150, 150], "end": [330, 150]}
    ungated, every_frame = crossings_with_stride(False, Walker, "person", line, len(WALKER))
    strided, detected = crossings_with_stride(True, Walker, "person", line, len(WALKER))
    assert detected < every_frame                     # the stride rests this walker elsewhere
    assert len(ungated) == 1 and strided == ungated


def counter_with(*boxes_by_frame, hold=0.2):
    """A LineCounter for a horizontal segment (150, 150)-(330, 150), fed one track's boxes at 10 fps."""
    counter = LineCounter([LineConfig("segment", (150, 150), (330, 150))],
                          CountingConfig(reverse_hold_seconds=hold))
    events = []
    for k, box in enumerate(boxes_by_frame):
        events += counter.update(Detections.from_arrays([box], [0.9], [0], [7]), k / 10)
    return counter, events


def person_at(x, y):
    return [x - 40, y - 100, x + 40, y]


def test_the_counter_is_undecided_inside_a_band_along_the_chord_it_will_judge():
    decided_inside = counter_with(person_at(300, 140), person_at(340, 148))[0]
    assert decided_inside.undecided()            # past the end, but the chord from x = 300 is not
    decided_past = counter_with(person_at(360, 140), person_at(380, 148))[0]
    assert not decided_past.undecided()          # the whole chord lies beyond the end and its band
    left = counter_with(person_at(300, 140), person_at(300, 148), person_at(300, 160))[0]
    assert not left.undecided()                  # out of the band: decided
    far = counter_with(person_at(300, 100))[0]
    assert not far.undecided()


def test_the_counter_is_undecided_while_a_reversal_is_held():
    counter, events = counter_with(person_at(300, 140), person_at(300, 160), person_at(300, 140), hold=0.5)
    assert len(events) == 1 and counter.undecided()      # crossed back: held, uncounted yet
    counter, _ = counter_with(person_at(300, 140), person_at(300, 160), person_at(300, 140),
                              person_at(300, 100), person_at(300, 100), person_at(300, 100), person_at(300, 100),
                              person_at(300, 100), hold=0.5)
    assert not counter.undecided()               # the reversal counted: nothing pending


def test_the_counter_is_undecided_while_a_box_jump_settles_near_a_line():
    steady, jumped = person_at(300, 120), [260, 100, 340, 125]     # half hidden: a quarter the height
    assert counter_with(steady, jumped)[0].undecided()              # 25 px above the line, within 100 px
    assert not counter_with(person_at(300, 20), [260, 0, 340, 25])[0].undecided()   # 125 px above


def test_a_reversal_held_exactly_reverse_hold_seconds_counts():
    """At 10 fps, 34.9 - 34.7 < 0.2 in floating point: a hold of exactly two frames still counts."""
    counter = LineCounter([LineConfig("segment", (150, 150), (330, 150))], CountingConfig(reverse_hold_seconds=0.2))
    events = []
    for k, y in zip(range(345, 350), (140, 160, 140, 140, 140)):
        events += counter.update(Detections.from_arrays([person_at(300, y)], [0.9], [0], [7]), k / 10)
    assert [e.direction for e in events] == ["out", "in"]
