"""counterd/stride.py: when the detector may rest between frames."""
import numpy as np

from counterd.detections import Detections
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
