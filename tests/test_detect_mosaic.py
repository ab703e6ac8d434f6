"""detector.mosaic: two frames through one inference, each getting its own boxes back; and the
pipeline holding a frame for its partner without changing what is counted or in which order."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from conftest import PETS_VIDEO, SHARED_MODELS, need_shared
from counterd.config import ConfigError, DetectorConfig, config_from_dict
from counterd.detect import Detector
from counterd.detect.mosaic import MIN_MOSAIC_HEIGHT, mosaic_plan, mosaic_scale
from counterd.detections import Detections
from counterd.pipeline import Pipeline
from counterd.source import Frame


def frames(n=2, h=360, w=480):
    return [np.zeros((h, w, 3), np.uint8) for _ in range(n)]


def test_plan_stacks_two_small_frames_and_maps_boxes_back():
    plan = mosaic_plan((640, 640), frames())
    assert plan.scale == pytest.approx(320 / 360) == mosaic_scale((640, 640), 480, 360)
    (top_a, left_a), (top_b, left_b) = plan.corners
    nh, nw = plan.placed
    assert top_a + nh <= top_b and top_b + nh <= 640 and left_a + nw <= 640
    # A box drawn in each tile comes back in its own frame's pixels, and only there.
    frame_box = np.array([100, 200, 140, 300], np.float32)
    in_input = np.stack([frame_box * plan.scale + [left, top, left, top] for top, left in plan.corners])
    for k, (inside, box) in enumerate(plan.split(in_input)):
        assert inside.tolist() == [i == k for i in range(2)]
        np.testing.assert_allclose(box.to_frame(in_input[inside], 480, 360)[0], frame_box, atol=0.01)


def test_plan_refuses_what_does_not_fit():
    assert mosaic_plan((640, 640), frames(1)) is None          # one frame
    assert mosaic_plan((640, 640), [np.zeros((360, 480, 3), np.uint8), np.zeros((240, 320, 3), np.uint8)]) is None
    # Wide frames go one above the other: 1080p into 640 at 640 / 2160, not side by side at 640 / 3840.
    assert mosaic_scale((640, 640), 1920, 1080) == pytest.approx(640 / 2160)


def test_onnx_mosaic_finds_the_same_people_in_one_inference():
    from counterd.detect.onnx import OnnxDetector
    model = need_shared(SHARED_MODELS["yolov8n_int8_640"])
    capture = cv2.VideoCapture(str(need_shared(PETS_VIDEO)))
    images = []
    for _ in range(2):
        capture.set(cv2.CAP_PROP_POS_FRAMES, 100 + 200 * len(images))
        images.append(capture.read()[1])
    capture.release()
    detector = OnnxDetector(DetectorConfig(model=str(model), classes=("person",), mosaic=True))
    alone = [detector.detect(image) for image in images]
    before = detector.inferences
    together = detector.detect_many(images)
    assert detector.inferences == before + 1
    for a, b in zip(alone, together):
        assert len(a) >= 4
        # Nearly every person found alone is found in the mosaic too, at the same place.
        ious = box_iou(a.xyxy, b.xyxy)
        assert (ious.max(1) >= 0.5).mean() >= 0.8


def box_iou(a, b):
    from counterd.track import box_iou as iou
    return iou(a.astype(np.float32), b.astype(np.float32))


class PairCountingDetector(Detector):
    """One 60 x 120 px box walking right (20 px a frame by default), and optionally a second one
    `small_height` px tall standing still with its feet at x = small_x until frame `small_until`;
    records how frames reached it. Its mosaic would draw frames at `scale` of their size."""

    def __init__(self, cfg, start=0.0, speed=20.0, scale=0.5, small_height=None, small_x=20.0, small_until=0):
        super().__init__(cfg)
        self.calls = []
        self.start, self.speed, self.scale = start, speed, scale
        self.small_height, self.small_x, self.small_until = small_height, small_x, small_until

    def box(self, frame):
        i = float(frame[0, 0, 0])
        x = self.start + i * self.speed
        boxes = [[x, 100, x + 60, 220]]
        if self.small_height is not None and i < self.small_until:
            half = self.small_height / 4
            boxes.append([self.small_x - half, 300 - self.small_height, self.small_x + half, 300])
        return Detections.from_arrays(boxes, [0.9] * len(boxes), [0] * len(boxes))

    def mosaic_scale(self, width, height):
        return self.scale

    def detect(self, frame):
        self.calls.append(1)
        return self.box(frame)

    def detect_many(self, frames):
        self.calls.append(len(frames))
        return [self.box(f) for f in frames]


def run_pairs(mosaic, frames=21, **fake):
    config = config_from_dict({"detector": {"mosaic": mosaic}, "gating": {"enabled": False, "stride": False},
                               "lines": [{"name": "door", "start": [200, 0], "end": [200, 360]}]})
    pipeline = Pipeline(config, PairCountingDetector(config.detector, **fake))
    events = []
    for i in range(frames):
        image = np.full((360, 480, 3), i, np.uint8)   # the frame number tells the fake where the box is
        events += pipeline.step(Frame(image, i / 10, i))
    events += pipeline.finish()
    return pipeline, events


def test_pipeline_holds_a_frame_for_its_partner_and_counts_the_same():
    plain, plain_events = run_pairs(False)
    paired, paired_events = run_pairs(True)
    assert plain.detector.calls == [1] * 21
    # The first frame alone (nothing tracked yet: a newcomer is looked for at full size), then
    # pairs of frames while the 120 px person stays 60 px tall in the mosaic.
    assert paired.detector.calls == [1] + [2] * 10
    assert [(e.timestamp, e.direction) for e in paired_events] == [(e.timestamp, e.direction) for e in plain_events]
    assert paired.totals == plain.totals == {"door": {"in": {"person": 1}, "out": {}}}


def test_pipeline_pairs_only_while_tracked_objects_stay_large_enough():
    # The 120 px person walking through the door (anchor on it at frame 8.5) drawn below the
    # floor in the mosaic: every frame alone until it is past the door's band by more than it
    # can walk back unseen, then pairs; just above the floor: pairs from the second frame on.
    too_small = 0.99 * MIN_MOSAIC_HEIGHT / 120
    shrunk, events = run_pairs(True, scale=too_small)
    assert shrunk.detector.calls == [1] * 9 + [2] * 6
    assert [e.timestamp for e in events] == [0.9]
    large_enough = 1.01 * MIN_MOSAIC_HEIGHT / 120
    assert run_pairs(True, scale=large_enough)[0].detector.calls == [1] + [2] * 10


def test_a_small_object_at_a_line_stops_the_pairing_and_one_far_off_does_not():
    small = 0.9 * MIN_MOSAIC_HEIGHT / 0.5     # drawn at 0.9 of the floor in the mosaic
    # Standing on the door line (in its band) until frame 10: frames go alone while it is there
    # and while its track coasts; then the pairs start.
    at_door, _ = run_pairs(True, frames=41, speed=10.0, small_height=small, small_x=200.0, small_until=10)
    calls = at_door.detector.calls
    assert calls[:10] == [1] * 10 and 2 in calls and sum(calls) == 41
    coasting = at_door.config.tracker.max_coast_seconds * 10
    assert calls.index(2) >= 10 + int(coasting) - 1
    assert at_door.totals["door"]["in"] == {"person": 1}
    # Standing still far from the door (a parked car, a person far off): it cannot reach the
    # line while its track would survive unseen, so it does not stop the pairing.
    # Only while it is new (seen once: no velocity yet, it might be heading anywhere) it does.
    far_off, _ = run_pairs(True, frames=41, speed=10.0, small_height=small, small_x=20.0, small_until=41)
    assert far_off.detector.calls == [1, 1] + [2] * 19 + [1]
    assert far_off.totals["door"]["in"] == {"person": 1}


def test_stride_rests_the_detector_on_slow_scenes():
    config = config_from_dict({"gating": {"stride": True, "enabled": False},
                               "lines": [{"name": "door", "start": [200, 0], "end": [200, 360]}]})
    detector = PairCountingDetector(config.detector, start=130, speed=4)   # 0.07 of its width a frame
    pipeline = Pipeline(config, detector)
    events = []
    for i in range(21):
        events += pipeline.step(Frame(np.full((360, 480, 3), i, np.uint8), i / 10, i))
    events += pipeline.finish()
    assert len(detector.calls) < 21                       # some frames were rested
    assert pipeline.totals["door"]["in"] == {"person": 1}  # and the crossing still counted


def test_mosaic_is_refused_for_a_backend_that_cannot_batch():
    with pytest.raises(ConfigError, match="detector.mosaic: the motion backend cannot share one inference"):
        config_from_dict({"detector": {"type": "motion", "mosaic": True}}, "c.toml")
    config = config_from_dict({"detector": {"type": "motion"}}, "c.toml")
    # as `counterd process --detector motion` builds it over a config written for onnx + mosaic
    forced = dataclasses.replace(config, detector=dataclasses.replace(config.detector, mosaic=True))
    with pytest.raises(ConfigError, match="cannot share one inference"):
        Pipeline(forced)


def test_a_smaller_model_input_pairs_fewer_pets_frames():
    # PETS people are 30-100 px tall. Two 480x360 frames in a 640 input are drawn at 0.89, in a
    # 320 input at 0.44: the 640 model pairs most frames, the 320 one detects more of them alone
    # (people near the line would fall below MIN_MOSAIC_HEIGHT).
    inferences = {}
    for model in ("yolov8n_int8_640", "yolo11n_int8_320"):
        path = need_shared(SHARED_MODELS[model])
        config = config_from_dict({"detector": {"model": str(path), "mosaic": True}, "gating": {"enabled": False, "stride": False},
                                   "lines": [{"name": "door", "start": [240, 0], "end": [240, 360]}]})
        pipeline = Pipeline(config)
        assert pipeline.detector.mosaic_scale(480, 360) == pytest.approx(min(pipeline.detector.size) / 720)
        capture = cv2.VideoCapture(str(need_shared(PETS_VIDEO)))
        for i in range(50):
            pipeline.step(Frame(capture.read()[1], i / 10, i))
        capture.release()
        pipeline.finish()
        assert pipeline.times.frames == 50
        inferences[model] = pipeline.detector.inferences
        pipeline.close()
    assert inferences["yolov8n_int8_640"] <= 0.75 * 50
    assert inferences["yolo11n_int8_320"] > inferences["yolov8n_int8_640"]
