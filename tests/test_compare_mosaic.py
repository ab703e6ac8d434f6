"""counterd/mosaic.py: frames packed into one inference come back with their own boxes."""
import cv2
import numpy as np

from counterd.classes import CLASS_IDS
from counterd.config import DetectorConfig
from counterd.mosaic import MosaicDetector


class FakeDetector:
    """An OnnxDetector stand-in: a 640x640 YOLOv8-style head that 'finds' every white square."""

    def __init__(self):
        self.cfg = DetectorConfig(confidence=0.25, nms_iou=0.45, classes=("person",))
        self.size = (640, 640)
        self.head = "ultralytics"
        self.coco_ids = np.arange(80, dtype=np.int32)
        self.wanted = np.zeros(80, bool)
        self.wanted[CLASS_IDS["person"]] = True
        self.canvas = None

    def _infer(self, image, head):
        self.canvas = image
        white = np.all(image > 250, axis=2)
        # One box per connected white blob (the squares here never touch).
        n, _, stats, _ = cv2.connectedComponentsWithStats(white.astype(np.uint8))
        out = np.zeros((84, max(n - 1, 1)), np.float32)
        for k in range(1, n):
            x, y, w, h = stats[k, :4]
            out[:4, k - 1] = (x + w / 2, y + h / 2, w, h)
            out[4 + 0, k - 1] = 0.9             # class 0: person
        return out

    def detect(self, frame):
        raise AssertionError("the mosaic should have been used")


def frame_with_square(x, y, size=40):
    f = np.zeros((360, 480, 3), np.uint8)
    f[y:y + size, x:x + size] = 255
    return f


def test_two_frames_one_inference_boxes_back_in_each_frame():
    mosaic = MosaicDetector(FakeDetector())
    a, b = frame_with_square(10, 300, 40), frame_with_square(400, 20, 40)
    dets_a, dets_b = mosaic.detect_many([a, b])
    assert mosaic.inferences == 1
    assert len(dets_a) == 1 and len(dets_b) == 1
    np.testing.assert_allclose(dets_a.xyxy[0], [10, 300, 50, 340], atol=2)
    np.testing.assert_allclose(dets_b.xyxy[0], [400, 20, 440, 60], atol=2)


def test_layout_stacks_wide_frames_and_keeps_the_scale():
    mosaic = MosaicDetector(FakeDetector())
    scale, corners, (h, w) = mosaic.layout(2, 360, 480)
    assert abs(scale - 320 / 360) < 1e-6
    assert corners[0][0] + h <= corners[1][0] and corners[1][0] + h <= 640 and w <= 640


def test_frames_too_large_to_share_go_alone():
    class Alone(FakeDetector):
        def detect(self, frame):
            return "alone"
    mosaic = MosaicDetector(Alone(), min_scale=0.75)
    big = np.zeros((1080, 1920, 3), np.uint8)
    assert mosaic.detect_many([big, big]) == ["alone", "alone"]
