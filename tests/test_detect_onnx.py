"""The onnx backend end to end on tiny scripted models whose output is a fixed head tensor.

Each model ignores its image and always "sees" the boxes written into it, so the test knows
exactly where they must land in the frame: this checks layout and size detection, the letterbox
round trip, head decoding and class mapping through a real ONNX Runtime session."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the test extra's onnx package builds the scripted models")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from counterd.classes import CLASS_IDS  # noqa: E402
from counterd.config import DetectorConfig  # noqa: E402
from counterd.detect import make_detector  # noqa: E402
from counterd.errors import UserError  # noqa: E402

FRAME = np.zeros((480, 640, 3), np.uint8)


def scripted_model(path: Path, head: np.ndarray, input_shape: list, *, float16: bool = False,
                   metadata: dict[str, str] | None = None) -> str:
    """An ONNX model with one image input that outputs `head` (plus 0 x the image's mean, so the
    input is really used)."""
    image_type = TensorProto.FLOAT16 if float16 else TensorProto.FLOAT
    nodes = [
        helper.make_node("Cast", ["images"], ["image"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["image"], ["mean"], keepdims=0),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.float32))),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Constant", [], ["head"], value=numpy_helper.from_array(head.astype(np.float32))),
        helper.make_node("Add", ["head", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(nodes, "scripted", [helper.make_tensor_value_info("images", image_type, input_shape)],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(head.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.save(model, str(path))
    return str(path)


def ultralytics_head(boxes: list[tuple[list[float], int, float]], classes: int = 80, n: int = 2100) -> np.ndarray:
    """[1, 4 + classes, n] with the given (cx cy w h, class, score) in the first columns."""
    head = np.zeros((1, 4 + classes, n), np.float32)
    for i, (cxcywh, cls, score) in enumerate(boxes):
        head[0, :4, i] = cxcywh
        head[0, 4 + cls, i] = score
    return head


# A person box centred at (160, 160), 32x64, in a 320x320 input. The 640x480 frame is scaled by
# 0.5 to 320x240 and centred with 40 px above: in the frame the box is centred at (320, 240), 64x128.
PERSON_320 = ([160, 160, 32, 64], CLASS_IDS["person"], 0.9)
PERSON_IN_FRAME = [288, 176, 352, 304]


@pytest.mark.parametrize("layout", ["nchw", "nhwc", "nchw-float16"])
def test_ultralytics_head_box_lands_where_the_model_put_it(tmp_path, layout):
    shape = [1, 320, 320, 3] if layout == "nhwc" else [1, 3, 320, 320]
    model = scripted_model(tmp_path / "m.onnx", ultralytics_head([PERSON_320]), shape, float16="16" in layout)
    detector = make_detector(DetectorConfig(model=model))
    assert (detector.head, detector.size, detector.nhwc) == ("ultralytics", (320, 320), layout == "nhwc")
    dets = detector.detect(FRAME)
    assert dets.xyxy.tolist() == [pytest.approx(PERSON_IN_FRAME)]
    assert dets.class_id.tolist() == [CLASS_IDS["person"]]
    assert dets.confidence.tolist() == pytest.approx([0.9])


def test_yolox_head_box_lands_where_the_model_put_it(tmp_path):
    head = np.zeros((1, 3549, 85), np.float32)
    row = 52 * 52 + 26 * 26 + 6 * 13 + 5          # stride-32 cell at column 5, row 6
    head[0, row, :5] = [0.0, 0.0, np.log(2), np.log(2), 1.0]    # centre (160, 192), 64x64
    head[0, row, 5 + CLASS_IDS["car"]] = 0.8
    detector = make_detector(DetectorConfig(model=scripted_model(tmp_path / "x.onnx", head, [1, 3, 416, 416])))
    assert detector.head == "yolox"
    dets = detector.detect(FRAME)
    # Scale 416/640 = 0.65, image in the top-left corner: divide input pixels by 0.65.
    assert dets.xyxy.tolist() == [pytest.approx([128 / 0.65, 160 / 0.65, 192 / 0.65, 224 / 0.65], abs=1e-3)]
    assert dets.class_id.tolist() == [CLASS_IDS["car"]]


def test_end_to_end_head_boxes_land_where_the_model_put_them(tmp_path):
    head = np.zeros((1, 300, 6), np.float32)        # rows past the detections are all zero
    head[0, 0] = [144, 128, 176, 192, 0.9, CLASS_IDS["person"]]      # PERSON_320 as corners
    head[0, 1] = [10, 10, 40, 40, 0.95, CLASS_IDS["dog"]]            # a class not counted
    detector = make_detector(DetectorConfig(model=scripted_model(tmp_path / "e.onnx", head, [1, 3, 320, 320])))
    assert detector.head == "end2end"
    dets = detector.detect(FRAME)
    assert dets.xyxy.tolist() == [pytest.approx(PERSON_IN_FRAME)]
    assert dets.class_id.tolist() == [CLASS_IDS["person"]]
    assert dets.confidence.tolist() == pytest.approx([0.9])


def test_dynamic_input_size_comes_from_the_metadata(tmp_path):
    model = scripted_model(tmp_path / "d.onnx", ultralytics_head([PERSON_320]), ["batch", 3, "height", "width"],
                           metadata={"imgsz": "[320, 320]"})
    detector = make_detector(DetectorConfig(model=model))
    assert detector.size == (320, 320)
    assert detector.detect(FRAME).xyxy.tolist() == [pytest.approx(PERSON_IN_FRAME)]


def test_custom_class_names_are_matched_to_coco_by_name(tmp_path):
    boxes = [([60, 160, 32, 64], 0, 0.9), (PERSON_320[0], 1, 0.9)]   # a forklift, then a person
    model = scripted_model(tmp_path / "c.onnx", ultralytics_head(boxes, classes=2), [1, 3, 320, 320],
                           metadata={"names": "{0: 'forklift', 1: 'person'}"})
    dets = make_detector(DetectorConfig(model=model)).detect(FRAME)
    assert dets.class_id.tolist() == [CLASS_IDS["person"]]
    assert dets.xyxy.tolist() == [pytest.approx(PERSON_IN_FRAME)]


def test_unnamed_classes_must_be_coco_80(tmp_path):
    model = scripted_model(tmp_path / "n.onnx", ultralytics_head([], classes=3), [1, 3, 320, 320])
    with pytest.raises(UserError, match="3 classes and no class names"):
        make_detector(DetectorConfig(model=model))


@pytest.mark.parametrize("head, input_shape, message", [
    (np.zeros((1, 10, 7)), [1, 3, 320, 320], r"output shape \[10, 7\] is not a YOLOv8"),
    (np.zeros((1, 84, 10)), [1, 1, 320, 320], "expected an image tensor"),
])
def test_a_model_that_is_not_a_supported_detector_is_refused(tmp_path, head, input_shape, message):
    model = scripted_model(tmp_path / "bad.onnx", head.astype(np.float32), input_shape)
    with pytest.raises(UserError, match=message):
        make_detector(DetectorConfig(model=model))
