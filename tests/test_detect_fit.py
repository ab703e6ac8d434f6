"""detector.fit_input: the model's square input cut to the camera's aspect ratio at load.

A tiny graph that decodes like an Ultralytics head (anchor points, strides, a Reshape that names
the anchor count, an attention-style Reshape to [1, C, H, W]) shows each constant rewritten to
what the new grid needs; the shared models show the fitted input finding the square input's boxes
on real frames (4:3 PETS, the 16:9 car clip)."""
from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx rewrites the graph")
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from conftest import SHARED, SHARED_MODELS, need_shared  # noqa: E402
from counterd.config import DetectorConfig  # noqa: E402
from counterd.detect.fitinput import Grid, GraphNotFitted, fit_model, fitted_size  # noqa: E402
from counterd.detect import onnx as onnx_backend  # noqa: E402
from counterd.detect.onnx import OnnxDetector  # noqa: E402
from counterd.detect.yolo import letterbox  # noqa: E402
from counterd.detect.optimize import detection_agreement  # noqa: E402
from test_detect_onnx import PERSON_320, scripted_model, ultralytics_head  # noqa: E402

CAR_VIDEO = SHARED / "data" / "traffic" / "car_traffic_small.mp4"     # 640x360, 16:9
PETS_VIDEO = SHARED / "data" / "pets09_s2l1" / "vtest_480x360.avi"   # 4:3


def test_fitted_size_keeps_the_scale_and_cuts_the_padding():
    assert fitted_size((416, 416), (480, 360)) == (320, 416)
    assert fitted_size((416, 416), (768, 432)) == (256, 416)
    assert fitted_size((416, 416), (360, 480)) == (416, 320)     # portrait camera
    assert fitted_size((640, 640), (640, 640)) == (640, 640)
    assert fitted_size((640, 640), (1280, 720)) == (384, 640)


def const(name: str, value: np.ndarray):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))


def decoding_graph(size: int = 64, extra: np.ndarray | None = None):
    """Input [1, 3, size, size] -> per stride 8/16/32 an average pool flattened and joined into
    [1, 3, N]; a Reshape to [1, 3, N] written out; the anchor centres in pixels
    ((0 x features[:, :2] + anchor points) x strides, Ultralytics' decode); and the stride-32
    pool reshaped to [1, 3, H*W] and back to [1, 3, H, W] as YOLO11's attention block does.
    `extra`: one more (1, N) float table added to the strides (a constant the rewrite must refuse)."""
    grid = Grid(size, size)
    nodes, pooled = [const("flat", np.array([1, 3, -1], np.int64))], []
    for h, w, s in grid.levels:
        nodes += [helper.make_node("AveragePool", ["images"], [f"p{s}"], kernel_shape=[s, s], strides=[s, s]),
                  helper.make_node("Reshape", [f"p{s}", "flat"], [f"r{s}"])]
        pooled.append(f"r{s}")
    strides = grid.strides()[None]
    nodes += [
        helper.make_node("Concat", pooled, ["cat"], axis=2),
        const("all", np.array([1, 3, grid.anchors], np.int64)),
        helper.make_node("Reshape", ["cat", "all"], ["features"]),
        const("zero", np.array(0, np.float32)),
        helper.make_node("Mul", ["features", "zero"], ["nothing"]),
        const("s0", np.array([0], np.int64)), const("s2", np.array([2], np.int64)), const("ax", np.array([1], np.int64)),
        helper.make_node("Slice", ["nothing", "s0", "s2", "ax"], ["xy0"]),
        const("anchors", grid.points()[None]),
        helper.make_node("Add", ["xy0", "anchors"], ["cells"]),
        const("strides", strides + (extra if extra is not None else 0)),
        helper.make_node("Mul", ["cells", "strides"], ["centres"]),
        const("hw", np.array([1, 3, grid.levels[-1][0] * grid.levels[-1][1]], np.int64)),
        helper.make_node("Reshape", ["p32", "hw"], ["tokens"]),
        const("chw", np.array([1, 3, grid.levels[-1][0], grid.levels[-1][1]], np.int64)),
        helper.make_node("Reshape", ["tokens", "chw"], ["back"]),
    ]
    graph = helper.make_graph(
        nodes, "decoding", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("centres", TensorProto.FLOAT, [1, 2, grid.anchors]),
         helper.make_tensor_value_info("back", TensorProto.FLOAT, [1, 3, size // 32, size // 32])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def run(model, image: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": image})


def test_anchor_grid_and_reshapes_follow_the_new_input():
    square = decoding_graph(64)
    fitted = fit_model(square, (32, 96))
    image = np.random.default_rng(1).random((1, 3, 32, 96), np.float32)
    centres, back = run(fitted, image)
    grid = Grid(32, 96)
    # every anchor centre where a stride-8/16/32 cell of a 96x32 input has it
    np.testing.assert_allclose(centres[0], grid.points() * grid.strides())
    # the attention-style round trip keeps the 1x3 stride-32 map as it was
    expected = image.reshape(1, 3, 1, 32, 3, 32).mean(axis=(3, 5))
    np.testing.assert_allclose(back, expected, rtol=1e-5)
    assert run(square, np.zeros((1, 3, 64, 64), np.float32))[0].shape == (1, 2, Grid(64, 64).anchors)
    assert fit_model(square, (64, 64)) is square


def test_an_unknown_grid_constant_is_refused_by_name():
    extra = np.random.default_rng(2).random((1, Grid(64, 64).anchors), np.float32)
    with pytest.raises(GraphNotFitted, match="constant strides of shape \\[1, 84\\]"):
        fit_model(decoding_graph(64, extra), (32, 64))


def test_a_graph_it_cannot_follow_keeps_its_square_input(tmp_path, caplog):
    """The scripted model's output is one baked (1, 84, 2100) table: a constant that follows the
    grid but is no anchor table. The detector keeps 320x320, says why once, and still detects."""
    model = scripted_model(tmp_path / "m.onnx", ultralytics_head([PERSON_320]), [1, 3, 320, 320])
    detector = OnnxDetector(DetectorConfig(model=model))
    frame = np.zeros((480, 640, 3), np.uint8)
    with caplog.at_level(logging.WARNING, logger="counterd.detect.onnx"):
        first, second = detector.detect(frame), detector.detect(frame)
    assert detector.size == (320, 320)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "keeps its 320x320 input" in warnings[0] and "(1, 84, 2100)" not in warnings[0]
    assert "follows the grid" in warnings[0]
    assert len(first) == len(second) == 1


def frames_of(video, count: int, every: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(need_shared(video)))
    frames, k = [], 0
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        if k % every == 0:
            frames.append(frame)
        k += 1
    capture.release()
    return frames


# F1 at IoU 0.5 between the fitted and the square input's boxes, measured on 24 frames (4:3 PETS /
# 16:9 car): yolox_nano 1.000 / 0.989, yolo11n_int8_320 0.998 / 0.962, yolov8n_int8_640 0.964 /
# 0.994. Not 1.000 because the frame meets the stride-32 grid and the padding differently (a
# centred 480x360 frame sits 80 px down the square 640 input, 16 px off the grid; the dynamic int8
# models quantise each activation over the whole input, padding included). The yardstick is the
# model's own sensitivity to that: the SAME square input with the frame placed at the other
# corner (top-left instead of centred, or the reverse for YOLOX) agrees only 0.959-0.984 on PETS
# and 0.847-0.890 on the car clip. The fitted input must stay at least that close, and >= 0.95.
MIN_AGREEMENT = 0.95


@pytest.mark.parametrize("video", [PETS_VIDEO, CAR_VIDEO], ids=["4:3", "16:9"])
@pytest.mark.parametrize("name", list(SHARED_MODELS))
def test_fitted_input_finds_the_square_inputs_boxes(name, video, monkeypatch):
    path = str(need_shared(SHARED_MODELS[name]))
    frames = frames_of(video, 24, 12)
    square = OnnxDetector(DetectorConfig(model=path, fit_input=False))
    fit = OnnxDetector(DetectorConfig(model=path))
    reference, found = [square.detect(f) for f in frames], [fit.detect(f) for f in frames]
    height, width = frames[0].shape[:2]
    assert fit.size == fitted_size(square.size, (width, height)) != square.size
    assert sum(map(len, reference)) > 5 * len(frames)
    assert fit.input_scale(width, height) == square.input_scale(width, height)
    monkeypatch.setattr(onnx_backend, "letterbox", lambda image, size, centre: letterbox(image, size, not centre))
    moved = [square.detect(f) for f in frames]
    agreement = detection_agreement(reference, found)
    assert agreement >= max(MIN_AGREEMENT, detection_agreement(reference, moved))


def test_a_new_frame_size_rebuilds_the_session():
    path = str(need_shared(SHARED_MODELS["yolox_nano"]))
    pets, car = frames_of(PETS_VIDEO, 2, 50), frames_of(CAR_VIDEO, 2, 50)
    detector = OnnxDetector(DetectorConfig(model=path))
    detector.detect(pets[0])
    assert detector.size == (320, 416)
    on_car = detector.detect(car[1])                  # the camera reconfigured to 16:9
    assert detector.size == (256, 416)
    fresh = OnnxDetector(DetectorConfig(model=path))
    assert detection_agreement([fresh.detect(car[1])], [on_car]) == 1.0
    square = cv2.resize(car[0], (360, 360))
    detector.detect(square)                           # a square frame: the file's own input again
    assert detector.size == detector.model_size == (416, 416)


def test_a_mosaic_pairs_frames_in_the_square_input():
    path = str(need_shared(SHARED_MODELS["yolox_nano"]))
    frames = frames_of(PETS_VIDEO, 2, 10)
    fit = OnnxDetector(DetectorConfig(model=path, mosaic=True))
    square = OnnxDetector(DetectorConfig(model=path, mosaic=True, fit_input=False))
    assert fit.mosaic_scale(480, 360) == square.mosaic_scale(480, 360)
    single = fit.detect(frames[0])                    # fits the input to 480x360 frames
    assert fit.size == (320, 416)
    paired, expected = fit.detect_many(frames), square.detect_many(frames)
    for got, want in zip(paired, expected):
        np.testing.assert_array_equal(got.xyxy, want.xyxy)
    assert fit.inferences == 2 and len(single)


def test_openvino_runs_the_same_fitted_graph():
    """detector.type = "openvino" reads the rewritten graph from memory as ONNX Runtime does."""
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    path = str(need_shared(SHARED_MODELS["yolo11n_int8_320"]))
    frames = frames_of(CAR_VIDEO, 4, 60)
    ort_fit = OnnxDetector(DetectorConfig(model=path))
    ov_fit = OnnxDetector(DetectorConfig(type="openvino", model=path))
    found = [ov_fit.detect(f) for f in frames]
    assert ov_fit.size == (192, 320) and ov_fit.describe().startswith("openvino yolo11n_int8_320.onnx")
    assert detection_agreement([ort_fit.detect(f) for f in frames], found) >= 0.95
    assert sum(map(len, found)) >= 8
