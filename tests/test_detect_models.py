"""The onnx backend with every model in ../shared/models, checked against the PETS ground truth."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import PETS_GT, PETS_VIDEO, SHARED_MODELS, need_shared
from counterd.classes import CLASS_IDS, DEFAULT_CLASSES
from counterd.config import DetectorConfig
from counterd.detect import make_detector
from counterd.models import CHECKOUT_MODELS, load_manifest
from counterd.track import box_iou

FRAMES = 4


@pytest.fixture(scope="module")
def pets():
    """The first frames of the PETS clip and their ground-truth boxes (all pedestrians)."""
    capture = cv2.VideoCapture(str(need_shared(PETS_VIDEO)))
    frames = [capture.read()[1] for _ in range(FRAMES)]
    capture.release()
    gt = np.loadtxt(need_shared(PETS_GT), delimiter=",")
    boxes = []
    for i in range(FRAMES):
        rows = gt[gt[:, 0] == i + 1, 2:6]
        boxes.append(np.concatenate([rows[:, :2], rows[:, :2] + rows[:, 2:]], axis=1))
    return frames, boxes


def detector_for(name: str, **settings):
    return make_detector(DetectorConfig(model=str(need_shared(SHARED_MODELS[name])), **settings))


@pytest.mark.parametrize("name", sorted(SHARED_MODELS))
def test_every_shared_model_finds_the_pets_pedestrians(name, pets):
    frames, truth = pets
    entry = load_manifest(CHECKOUT_MODELS / "manifest.toml")[name]
    with detector_for(name) as detector:
        assert detector.head == entry.head and detector.size == entry.input_size   # read from the model
        found = total = 0
        for frame, boxes in zip(frames, truth):
            dets = detector.detect(frame)
            assert dets.xyxy.dtype == np.float32 and dets.class_id.dtype == np.int32
            assert (dets.xyxy[:, [0, 2]] <= 480).all() and (dets.xyxy[:, [1, 3]] <= 360).all()
            assert (dets.xyxy >= 0).all() and (dets.xyxy[:, 2:] > dets.xyxy[:, :2]).all()
            assert set(dets.class_id.tolist()) <= {CLASS_IDS[c] for c in DEFAULT_CLASSES}
            people = dets[dets.class_id == CLASS_IDS["person"]]
            found += int((box_iou(boxes, people.xyxy).max(axis=1) >= 0.5).sum())
            total += len(boxes)
    assert found / total >= 0.85, f"{name}: recall {found}/{total}"


def test_class_filter_and_confidence_threshold(pets):
    frame = pets[0][0]
    cars = detector_for("yolo11n_int8_320", classes=("car",)).detect(frame)
    assert len(cars) >= 1 and set(cars.class_id.tolist()) == {CLASS_IDS["car"]}   # the parked car
    every = detector_for("yolo11n_int8_320", confidence=0.25).detect(frame)
    sure = detector_for("yolo11n_int8_320", confidence=0.6).detect(frame)
    assert 0 < len(sure) < len(every) and (sure.confidence >= 0.6).all()


def test_thread_count_reaches_onnx_runtime():
    detector = detector_for("yolox_nano", threads=2)
    assert detector.engine.session.get_session_options().intra_op_num_threads == 2
    assert "2 thread(s)" in detector.describe()


def test_yolox_and_ultralytics_models_agree_on_a_frame(pets):
    """Two different heads, decoders and letterboxes must put the same people in the same place."""
    frame = pets[0][0]
    a = detector_for("yolox_nano", classes=("person",), confidence=0.4).detect(frame)
    b = detector_for("yolov8n_int8_640", classes=("person",), confidence=0.4).detect(frame)
    assert len(a) >= 3 and len(b) >= 3
    assert np.median(box_iou(a.xyxy, b.xyxy).max(axis=1)) > 0.7


def test_grey_and_bgra_frames_are_accepted(pets):
    frame = pets[0][0]
    detector = detector_for("yolo11n_int8_320", classes=("person",))
    colour = detector.detect(frame)
    grey = detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))      # IR cameras at night
    bgra = detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA))
    assert len(colour) >= 3 and len(grey) >= len(colour) - 1
    assert bgra.xyxy.tolist() == colour.xyxy.tolist()
