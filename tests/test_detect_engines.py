"""Inference engines and `counterd model optimize`, on tiny real ONNX models built here.

The optimize tests use a small fully convolutional model with a raw YOLOX head (three convolution
branches at strides 8, 16 and 32), which, like YOLOX itself, runs at any input size that is a
multiple of 32; and a dynamically quantised copy of a float convolution model, like the shared
yolov8n/yolo11n."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the test extra's onnx package builds the models")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from counterd.config import DetectorConfig, config_from_dict  # noqa: E402
from counterd.detect import make_detector  # noqa: E402
from counterd.detect.optimize import dequantize_dynamic, optimize  # noqa: E402
from counterd.errors import UserError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
rng = np.random.default_rng(7)


def conv_weight(out_ch: int, in_ch: int, k: int) -> np.ndarray:
    return (rng.standard_normal((out_ch, in_ch, k, k)) * 0.05).astype(np.float32)


def yolox_like(path: Path, size: int = 128, opset: int = 11) -> Path:
    """[1,3,size,size] -> [1, cells, 85]: a stem convolution, then per stride a strided conv to 85
    channels (the head), flattened."""
    inits = [numpy_helper.from_array(conv_weight(8, 3, 3), "stem_w")]
    nodes = [helper.make_node("Conv", ["images", "stem_w"], ["stem"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["stem"], ["features"])]     # the "backbone": quantisable
    branches = []
    for stride in (8, 16, 32):
        w = f"w{stride}"
        inits.append(numpy_helper.from_array(conv_weight(85, 8, stride), w))
        nodes += [helper.make_node("Conv", ["features", w], [f"c{stride}"], kernel_shape=[stride, stride],
                                   strides=[stride, stride]),
                  helper.make_node("Sigmoid", [f"c{stride}"], [f"s{stride}"]),
                  helper.make_node("Reshape", [f"s{stride}", "flat"], [f"r{stride}"])]
        branches.append(f"r{stride}")
    inits.append(numpy_helper.from_array(np.array([1, 85, -1], np.int64), "flat"))
    nodes += [helper.make_node("Concat", branches, ["cat"], axis=2),
              helper.make_node("Transpose", ["cat"], ["output"], perm=[0, 2, 1])]
    cells = sum((size // s) ** 2 for s in (8, 16, 32))
    graph = helper.make_graph(nodes, "yolox_like",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, cells, 85])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def site_video(path: Path, frames: int = 12) -> Path:
    """A 640x480 recording of moving blocks, as a camera's clip for calibration."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for k in range(frames):
        image = np.full((480, 640, 3), 90, np.uint8)
        cv2.rectangle(image, (40 + 30 * k, 100), (100 + 30 * k, 260), (30, 200, 240), -1)
        writer.write(image)
    writer.release()
    return path


def test_unknown_and_unavailable_providers_are_clear_errors(tmp_path):
    model = str(yolox_like(tmp_path / "m.onnx"))
    with pytest.raises(UserError, match="unknown execution provider 'FastestExecutionProvider'"):
        make_detector(DetectorConfig(model=model, providers=("FastestExecutionProvider",)))
    import onnxruntime as ort
    missing = [p for p in ort.get_all_providers() if p not in ort.get_available_providers()]
    with pytest.raises(UserError, match=f"{missing[0]} is not available in this onnxruntime build"):
        make_detector(DetectorConfig(model=model, providers=(missing[0],)))
    with pytest.raises(UserError, match="name at least one"):
        make_detector(DetectorConfig(model=model, providers=()))


def test_providers_is_a_config_key():
    cfg = config_from_dict({"detector": {"providers": ["CPUExecutionProvider"]}}, "t")
    assert cfg.detector.providers == ("CPUExecutionProvider",)


def test_openvino_engine_gives_the_output_onnx_runtime_gives(tmp_path):
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    model = str(yolox_like(tmp_path / "m.onnx"))
    capture = cv2.VideoCapture(str(site_video(tmp_path / "v.avi")))
    ok, frame = capture.read()
    assert ok
    with make_detector(DetectorConfig(model=model, confidence=0.5)) as ort_det, \
            make_detector(DetectorConfig(type="openvino", model=model, confidence=0.5)) as ov_det:
        assert ov_det.describe().startswith("openvino m.onnx (yolox head, 128x128")
        blob = ort_det.blob(ort_det.letterbox(frame)[0])
        a, b = ort_det.engine.run(blob), ov_det.engine.run(blob)
        assert len(ov_det.detect(frame)) > 0
    assert a.shape == b.shape == (1, 336, 85)
    assert np.allclose(a, b, atol=1e-4)


def test_dequantize_dynamic_restores_a_float_conv_with_the_same_weights(tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    import onnxruntime as ort

    float_path = yolox_like(tmp_path / "f.onnx", opset=13)
    dynamic_path = tmp_path / "dyn.onnx"
    quantize_dynamic(str(float_path), str(dynamic_path), weight_type=QuantType.QUInt8, op_types_to_quantize=["Conv"])
    dynamic = onnx.load(str(dynamic_path))
    assert sum(n.op_type == "ConvInteger" for n in dynamic.graph.node) == 4
    assert dequantize_dynamic(dynamic) == 4
    ops = {n.op_type for n in dynamic.graph.node}
    assert "ConvInteger" not in ops and "DynamicQuantizeLinear" not in ops and "Conv" in ops
    restored = tmp_path / "restored.onnx"
    onnx.save(dynamic, str(restored))
    image = rng.uniform(0, 1, (1, 3, 128, 128)).astype(np.float32)
    run = {p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"images": image})[0]
           for p in (float_path, dynamic_path, restored)}
    # The restored model computes with the int8-rounded weights in float: close to the original,
    # and closer than the dynamic model, which also rounds every activation.
    error = {p: float(np.abs(run[p] - run[float_path]).mean()) for p in (dynamic_path, restored)}
    assert np.abs(run[restored] - run[float_path]).max() < 0.02
    assert error[restored] < error[dynamic_path]


def test_model_optimize_fits_the_input_and_quantizes(tmp_path):
    model = yolox_like(tmp_path / "m.onnx")
    video = site_video(tmp_path / "site.avi")
    out = tmp_path / "opt.onnx"
    done = subprocess.run([sys.executable, "-m", "counterd", "model", "optimize", str(model), "--calibrate",
                           str(video), "--out", str(out), "--frames", "6", "--every", "2",
                           "--min-agreement", "0"],   # random weights: boxes everywhere, on padding too
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "128x96 input" in done.stdout and "CPU ms per frame here" in done.stdout
    written = onnx.load(str(out))
    assert [d.dim_value for d in written.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 96, 128]
    assert any(p.key == "counterd_optimized" for p in written.metadata_props)
    with make_detector(DetectorConfig(model=str(out))) as detector:
        assert detector.size == (96, 128)
        capture = cv2.VideoCapture(str(video))
        ok, frame = capture.read()
        assert ok and detector.detect(frame) is not None


def test_optimize_quantized_candidates_are_static_qdq(tmp_path):
    """Every candidate is built and timed, int8 ones as QDQ graphs, and the fastest is written."""
    from counterd.detect import optimize as opt

    model = yolox_like(tmp_path / "m.onnx")
    video = site_video(tmp_path / "site.avi")
    summary = optimize(model, str(video), tmp_path / "o.onnx", frames=4, every=3, input_size="model",
                       min_agreement=0.0)
    assert summary["agreement"]["float"] == 1.0     # same size, same float weights: the same boxes
    assert set(summary["ms_per_frame"]) == {"float", *opt.QUANTIZED_OPS}
    assert summary["kept"] == min(summary["ms_per_frame"], key=summary["ms_per_frame"].get)
    with pytest.raises(UserError, match="no optimised copy .* finds what it finds"):
        optimize(model, str(video), tmp_path / "o2.onnx", frames=4, every=3, min_agreement=1.01)
    assert summary["quantizers"]["float"] == 0
    assert all(summary["quantizers"][name] > 0 for name in opt.QUANTIZED_OPS)
    kept = onnx.load(str(tmp_path / "o.onnx")).graph.node
    assert sum(n.op_type == "QuantizeLinear" for n in kept) == summary["quantizers"][summary["kept"]]


def test_optimize_errors_name_the_problem(tmp_path):
    model = yolox_like(tmp_path / "m.onnx")
    video = site_video(tmp_path / "site.avi")
    with pytest.raises(UserError, match="multiples of 32"):
        optimize(model, str(video), tmp_path / "o.onnx", input_size="100x100")
    with pytest.raises(UserError, match="--input-size 'big'"):
        optimize(model, str(video), tmp_path / "o.onnx", input_size="big")
    with pytest.raises(UserError, match="--calibrate"):
        optimize(model, str(tmp_path / "missing.avi"), tmp_path / "o.onnx")
