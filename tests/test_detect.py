"""Detector building blocks with hand-made tensors and synthetic frames: no weights needed."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from counterd.classes import CLASS_IDS
from counterd.config import DetectorConfig, MotionConfig
from counterd.detect import coco_ids_for, make_detector
from counterd.detect.yolo import decode_ultralytics, decode_yolox, letterbox, select, to_detections, yolox_grid
from counterd.errors import UserError
from counterd.track import box_iou

COCO = np.arange(80, dtype=np.int32)
WANT_PERSON_CAR = np.isin(np.arange(80), [CLASS_IDS["person"], CLASS_IDS["car"]])


@pytest.mark.parametrize("centre", [True, False])
def test_letterbox_keeps_aspect_and_boxes_map_back_to_the_frame(centre):
    frame = np.zeros((360, 480, 3), np.uint8)
    frame[100:200, 300:340] = 255                       # a box at x 300-340, y 100-200
    image, box = letterbox(frame, (640, 640), centre=centre)
    assert image.shape == (640, 640, 3)
    assert box.scale == pytest.approx(640 / 480)
    assert (box.pad_x, box.pad_y) == ((0, 80) if centre else (0, 0))
    assert image[-1, -1, 0] == 114                                # grey padding
    ys, xs = np.nonzero(image[:, :, 0] > 128)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    assert box.to_frame(found, 480, 360)[0] == pytest.approx([300, 100, 340, 200], abs=1.5)


def test_boxes_are_clipped_to_the_frame():
    _, box = letterbox(np.zeros((100, 200, 3), np.uint8), (64, 64))
    out = box.to_frame(np.array([[-10, -10, 100, 100]], np.float32), 200, 100)
    assert out[0].tolist() == [0, 0, 200, 100]


def test_ultralytics_head_decodes_centre_size_to_corners():
    output = np.zeros((84, 10), np.float32)
    output[:4, 3] = [100, 50, 20, 40]
    output[4 + CLASS_IDS["car"], 3] = 0.9
    xyxy, scores = decode_ultralytics(output)
    assert xyxy.shape == (10, 4) and scores.shape == (10, 80)
    assert xyxy[3].tolist() == [90, 30, 110, 70]
    assert scores[3, CLASS_IDS["car"]] == pytest.approx(0.9)


def test_yolox_head_decodes_grid_offsets_and_log_sizes():
    size = (416, 416)
    cells = len(yolox_grid(size)[0])
    assert cells == 52 * 52 + 26 * 26 + 13 * 13
    output = np.zeros((cells, 85), np.float32)
    row = 52 * 52 + 2 * 26 + 3                         # stride-16 cell at column 3, row 2
    output[row, :5] = [0.5, 0.5, np.log(2), np.log(3), 0.8]
    output[row, 5 + CLASS_IDS["person"]] = 0.5
    xyxy, scores = decode_yolox(output, size)
    # centre ((3 + 0.5) * 16, (2 + 0.5) * 16) = (56, 40); size (2 * 16, 3 * 16) = (32, 48)
    assert xyxy[row] == pytest.approx([40, 16, 72, 64])
    assert scores[row, CLASS_IDS["person"]] == pytest.approx(0.4)   # objectness x class score


def test_yolox_head_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="grid"):
        decode_yolox(np.zeros((100, 85), np.float32), (416, 416))


def scored(rows: list[tuple[list[float], int, float]]) -> tuple[np.ndarray, np.ndarray]:
    xyxy = np.array([r[0] for r in rows], np.float32)
    scores = np.zeros((len(rows), 80), np.float32)
    for i, (_, cls, score) in enumerate(rows):
        scores[i, cls] = score
    return xyxy, scores


def test_select_thresholds_filters_classes_and_suppresses_per_class():
    person, car, dog = CLASS_IDS["person"], CLASS_IDS["car"], CLASS_IDS["dog"]
    xyxy, scores = scored([
        ([10, 10, 50, 110], person, 0.9),
        ([12, 12, 52, 112], person, 0.8),     # same person again: suppressed
        ([11, 11, 51, 111], car, 0.7),        # a car in the same place: another class, kept
        ([200, 10, 240, 110], dog, 0.95),     # unwanted class
        ([300, 10, 340, 110], person, 0.2),   # below the confidence threshold
        ([400, 10, 440, 110], person, 0.6),
    ])
    out_xyxy, conf, cls = select(xyxy, scores, COCO, WANT_PERSON_CAR, confidence=0.25, nms_iou=0.45)
    assert conf.tolist() == pytest.approx([0.9, 0.7, 0.6])
    assert cls.tolist() == [person, car, person]
    assert out_xyxy[2].tolist() == [400, 10, 440, 110]


def test_a_box_whose_best_class_is_unwanted_is_dropped_not_relabelled():
    xyxy, scores = scored([([10, 10, 50, 110], CLASS_IDS["dog"], 0.9)])
    scores[0, CLASS_IDS["person"]] = 0.5
    assert len(select(xyxy, scores, COCO, WANT_PERSON_CAR, 0.25, 0.45)[1]) == 0


def test_model_classes_map_to_coco_ids_by_name():
    assert coco_ids_for(["car", "Person", "forklift"]).tolist() == [2, 0, -1]
    xyxy, scores = scored([([0, 0, 10, 10], 0, 0.9), ([20, 0, 30, 10], 1, 0.9), ([40, 0, 50, 10], 2, 0.9)])
    _, _, cls = select(xyxy, scores[:, :3], coco_ids_for(["car", "person", "forklift"]), WANT_PERSON_CAR, 0.25, 0.45)
    assert sorted(cls.tolist()) == [CLASS_IDS["person"], CLASS_IDS["car"]]


def test_an_unreadable_model_file_is_a_one_line_user_error(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(UserError, match="broken.onnx: ONNX Runtime cannot load it") as err:
        make_detector(DetectorConfig(model=str(bad)))
    assert "\n" not in str(err.value)


def test_a_missing_model_name_says_how_to_fetch_it(tmp_path):
    with pytest.raises(UserError, match="counterd model fetch yolox_nano"):
        make_detector(DetectorConfig(model="yolox_nano", models_dir=str(tmp_path)))


def test_ultralytics_backend_without_the_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ultralytics", None)   # makes `import ultralytics` fail
    with pytest.raises(UserError, match=r"pip install 'counterd\[ultralytics\]'"):
        make_detector(DetectorConfig(type="ultralytics", model="yolov8n.yaml"))


# ---------------------------------------------------------------------------------------------
# motion


PERSON_TEXTURE = np.random.default_rng(1).integers(0, 80, (60, 24, 3), np.uint8)


def scene(people: list[tuple[int, int]], seed: int = 0) -> np.ndarray:
    """A textured 240x320 background with dark textured 24x60 'people' at the given top-left corners."""
    rng = np.random.default_rng(seed)
    frame = np.full((240, 320, 3), 150, np.uint8) + rng.integers(0, 20, (240, 320, 1), np.uint8)
    for x, y in people:
        frame[y:y + 60, x:x + 24] = PERSON_TEXTURE
    return frame


@pytest.mark.parametrize("algorithm", ["knn", "mog2"])
def test_motion_finds_each_moving_blob_as_a_person(algorithm):
    detector = make_detector(DetectorConfig(type="motion", motion=MotionConfig(algorithm=algorithm)))
    for _ in range(20):
        assert len(detector.detect(scene([]))) == 0          # a still scene has no objects
    for step in range(8):
        dets = detector.detect(scene([(20 + 6 * step, 40), (200, 150 - 6 * step)]))
    assert len(dets) == 2
    assert set(dets.class_id.tolist()) == {CLASS_IDS["person"]}
    assert dets.confidence.tolist() == [1.0, 1.0]
    truth = [np.array([62, 40, 86, 100]), np.array([200, 108, 224, 168])]
    for t in truth:
        assert box_iou(dets.xyxy, t[None].astype(np.float32)).max() > 0.7


def test_motion_ignores_specks_and_uses_the_configured_class():
    cfg = DetectorConfig(type="motion", classes=("car",), motion=MotionConfig(class_name="car", min_area=100))
    detector = make_detector(cfg)
    for _ in range(10):
        detector.detect(scene([]))
    for step in range(5):
        frame = scene([(20 + 6 * step, 40)])
        frame[200:205, 300 - 6 * step:305 - 6 * step] = 0     # a 5x5 moving speck: noise
        dets = detector.detect(frame)
    assert dets.class_id.tolist() == [CLASS_IDS["car"]]


def test_motion_returns_nothing_when_its_class_is_not_counted():
    detector = make_detector(DetectorConfig(type="motion", classes=("car",)))   # motion class: person
    for step in range(10):
        assert len(detector.detect(scene([(20 + 6 * step, 40)]))) == 0


def test_motion_starts_a_new_background_when_the_frame_size_changes():
    detector = make_detector(DetectorConfig(type="motion"))
    for step in range(10):
        detector.detect(scene([(20 + 6 * step, 40)]))
    small = np.ascontiguousarray(scene([])[:120, :160])
    for _ in range(5):
        assert len(detector.detect(small)) == 0        # no error, and the new still scene is empty
    for step in range(6):
        dets = detector.detect(np.ascontiguousarray(scene([(20 + 6 * step, 40)])[:120, :160]))
    assert len(dets) == 1


def test_a_box_wholly_in_the_padding_is_dropped():
    _, box = letterbox(np.zeros((100, 200, 3), np.uint8), (64, 64))     # pads 16 px above and below
    xyxy = np.array([[10, 2, 20, 12], [10, 20, 20, 40]], np.float32)  # the first lies in the top band
    dets = to_detections(xyxy, np.array([0.9, 0.8]), np.array([0, 0]), box, 200, 100)
    assert dets.confidence.tolist() == pytest.approx([0.8])
