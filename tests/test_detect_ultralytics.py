"""The `ultralytics` backend: a tiny untrained network built from a yaml, and a shared ONNX model.

Runs when the ultralytics extra is installed; CI sets COUNTERD_REQUIRE_ULTRALYTICS=1 so that a
broken install fails here instead of skipping. Nothing is downloaded."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from conftest import PETS_VIDEO, SHARED_MODELS, need_shared
from counterd.classes import CLASS_IDS
from counterd.config import DetectorConfig
from counterd.detect import make_detector
from counterd.errors import UserError

os.environ.setdefault("YOLO_OFFLINE", "1")
if os.environ.get("COUNTERD_REQUIRE_ULTRALYTICS") == "1":
    import ultralytics  # noqa: F401  (an ImportError here fails CI loudly)
else:
    pytest.importorskip("ultralytics", reason="the ultralytics extra is not installed")

# A network far smaller than yolov8n (a quarter of the width): builds in a fraction of a second.
TINY_YAML = """\
nc: 80
scales:
  t: [0.33, 0.0625, 256]
backbone:
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [128, 3, 2]]
  - [-1, 1, C2f, [128, True]]
  - [-1, 1, Conv, [256, 3, 2]]
  - [-1, 1, C2f, [256, True]]
  - [-1, 1, Conv, [512, 3, 2]]
  - [-1, 1, C2f, [512, True]]
  - [-1, 1, Conv, [1024, 3, 2]]
  - [-1, 1, C2f, [1024, True]]
  - [-1, 1, SPPF, [1024, 5]]
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 6], 1, Concat, [1]]
  - [-1, 1, C2f, [512]]
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 4], 1, Concat, [1]]
  - [-1, 1, C2f, [256]]
  - [-1, 1, Conv, [256, 3, 2]]
  - [[-1, 12], 1, Concat, [1]]
  - [-1, 1, C2f, [512]]
  - [-1, 1, Conv, [512, 3, 2]]
  - [[-1, 9], 1, Concat, [1]]
  - [-1, 1, C2f, [1024]]
  - [[15, 18, 21], 1, Detect, [nc]]
"""


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    capture = cv2.VideoCapture(str(need_shared(PETS_VIDEO)))
    image = capture.read()[1]
    capture.release()
    return image


def test_a_network_built_from_a_yaml_runs_and_returns_wanted_classes(tmp_path):
    yaml = tmp_path / "yolov8t.yaml"
    yaml.write_text(TINY_YAML)
    frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
    # Untrained: scores are tiny, so take every box to see the whole path run.
    with make_detector(DetectorConfig(type="ultralytics", model=str(yaml), confidence=0.0,
                                      classes=("person", "car"))) as detector:
        dets = detector.detect(frame)
    assert 0 < len(dets) <= 300
    assert dets.xyxy.dtype == np.float32 and dets.class_id.dtype == np.int32
    assert set(dets.class_id.tolist()) <= {CLASS_IDS["person"], CLASS_IDS["car"]}
    assert (dets.xyxy[:, [0, 2]] <= 320).all() and (dets.xyxy[:, [1, 3]] <= 240).all()


def test_a_shared_onnx_model_gives_the_same_boxes_as_the_onnx_backend(frame):
    model = str(need_shared(SHARED_MODELS["yolo11n_int8_320"]))
    # Ultralytics runs the file at its own square input; so must ours to give the same boxes
    # (detector.fit_input would cut the padding and move every score a little).
    ours = make_detector(DetectorConfig(type="onnx", model=model, fit_input=False)).detect(frame)
    theirs = make_detector(DetectorConfig(type="ultralytics", model=model)).detect(frame)
    assert len(ours) >= 4 and len(theirs) == len(ours)
    order = lambda d: np.lexsort(d.xyxy.T[::-1])  # noqa: E731  (sort by x1, then y1)
    a, b = ours[order(ours)], theirs[order(theirs)]
    assert a.class_id.tolist() == b.class_id.tolist()
    assert np.abs(a.xyxy - b.xyxy).max() < 2.0
    assert np.abs(a.confidence - b.confidence).max() < 0.02


def test_an_unloadable_file_is_a_one_line_user_error(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="broken.pt: Ultralytics cannot load it") as err:
        make_detector(DetectorConfig(type="ultralytics", model=str(bad)))
    assert "\n" not in str(err.value)
