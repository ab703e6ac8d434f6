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
from counterd.detect.mosaic import MIN_MOSAIC_SCALE, mosaic_plan
from counterd.detections import Detections
from counterd.pipeline import Pipeline
from counterd.source import Frame


def frames(n=2, h=360, w=480):
    return [np.zeros((h, w, 3), np.uint8) for _ in range(n)]


def test_plan_stacks_two_small_frames_and_maps_boxes_back():
    plan = mosaic_plan((640, 640), frames(), MIN_MOSAIC_SCALE)
    assert plan.scale == pytest.approx(320 / 360)
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
    assert mosaic_plan((640, 640), frames(1), MIN_MOSAIC_SCALE) is None          # one frame
    assert mosaic_plan((640, 640), frames(2, 1080, 1920), MIN_MOSAIC_SCALE) is None  # too small then
    assert mosaic_plan((640, 640), [np.zeros((360, 480, 3), np.uint8), np.zeros((240, 320, 3), np.uint8)],
                       MIN_MOSAIC_SCALE) is None                                  # sizes differ


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
    """One 60 px wide box walking right (20 px a frame by default); records how frames reached it."""

    def __init__(self, cfg, start=0.0, speed=20.0):
        super().__init__(cfg)
        self.calls = []
        self.start, self.speed = start, speed

    def box(self, frame):
        x = self.start + float(frame[0, 0, 0]) * self.speed
        return Detections.from_arrays([[x, 100, x + 60, 220]], [0.9], [0])

    def detect(self, frame):
        self.calls.append(1)
        return self.box(frame)

    def detect_many(self, frames):
        self.calls.append(len(frames))
        return [self.box(f) for f in frames]


def test_pipeline_holds_a_frame_for_its_partner_and_counts_the_same():
    def run(mosaic):
        config = config_from_dict({"detector": {"mosaic": mosaic}, "gating": {"enabled": False},
                                   "lines": [{"name": "door", "start": [200, 0], "end": [200, 360]}]})
        pipeline = Pipeline(config, PairCountingDetector(config.detector))
        events = []
        for i in range(21):
            image = np.full((360, 480, 3), i, np.uint8)   # the frame number tells the fake where the box is
            events += pipeline.step(Frame(image, i / 10, i))
        events += pipeline.finish()
        return pipeline, events

    plain, plain_events = run(False)
    paired, paired_events = run(True)
    assert plain.detector.calls == [1] * 21
    assert paired.detector.calls == [2] * 10 + [1]      # the last frame had no partner: finish()
    assert [(e.timestamp, e.direction) for e in paired_events] == [(e.timestamp, e.direction) for e in plain_events]
    assert paired.totals == plain.totals == {"door": {"in": {"person": 1}, "out": {}}}


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
