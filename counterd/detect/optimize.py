"""`counterd model optimize`: static int8 (QDQ) quantisation calibrated on frames from the site.

A dynamically quantised model (the shared yolov8n/yolo11n: ConvInteger after a
DynamicQuantizeLinear of every activation) measures each activation's range again on every frame
and runs integer convolutions that ONNX Runtime's CPU kernels do not fuse with their activation,
so it is no faster than float. A statically quantised model knows each activation's range from
calibration, and ONNX Runtime fuses its DequantizeLinear -> Conv -> QuantizeLinear groups into
int8 convolutions (VNNI where the CPU has it). The ranges are measured on frames of the camera the
model will run on, letterboxed exactly as the detector letterboxes them.

A dynamic int8 model is first turned back into a float one with the same (already int8-rounded)
weights: each ConvInteger + Cast + scale Mul becomes one Conv whose weights are the dequantised
int8 ones, so nothing about the weights changes but the file format. A float model (yolox_nano)
is quantised as it is. The detection head (the last convolutions, whose outputs are box offsets
and scores of very different ranges, and everything after them) stays in float: quantising it
costs accuracy for next to no time.
"""
from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from counterd.detect import first_line
from counterd.detect.fitinput import GraphNotFitted, fit_model, fitted_size
from counterd.errors import UserError

log = logging.getLogger(__name__)
DEFAULT_FRAMES = 64       # calibration frames; more change the ranges very little
# Which operators get int8 QDQ. Which is fastest depends on the model and the CPU (measured on this
# project's AMD AVX-512 box: convolutions only for yolov8n, 1.48x; for YOLOX's depthwise
# convolutions neither beats float), so optimize() times each, and float, and keeps the fastest.
QUANTIZED_OPS = {"int8 convolutions": ["Conv"], "int8 everywhere": None}
# A candidate is kept only if its boxes agree with the original model's this well (F1 at IoU 0.5)
# on site frames calibration did not use: the speed must not cost what the model finds.
MIN_AGREEMENT = 0.95
DEFAULT_EVERY = 5         # take every 5th frame of a file, so the frames span more of the scene


def dequantize_dynamic(model) -> int:
    """Replace every DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul(scale) chain of an onnx
    ModelProto by a float Conv with dequantised weights, in place; returns how many."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    replaced, dropped, new_inits = 0, set(), []
    for node in list(graph.node):
        if node.op_type != "ConvInteger":
            continue
        quantize = producer[node.input[0]]
        cast = _only(consumers[node.output[0]], "Cast")
        scale_mul = _only(consumers[cast.output[0]], "Mul")
        scales = producer[next(i for i in scale_mul.input if i != cast.output[0])]   # x_scale * w_scale
        w_scale = next(i for i in scales.input if i in inits)
        weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        zero = (numpy_helper.to_array(inits[node.input[3]]).astype(np.float32)
                if len(node.input) > 3 and node.input[3] else np.float32(0))
        scale = numpy_helper.to_array(inits[w_scale]).astype(np.float32)
        if zero.ndim:         # per output channel
            zero, scale = zero.reshape(-1, 1, 1, 1), scale.reshape(-1, 1, 1, 1)
        name = node.input[1].removesuffix("_quantized") + "_dequantized"
        new_inits.append(numpy_helper.from_array((weight - zero) * scale, name))
        conv = helper.make_node("Conv", [quantize.input[0], name], [scale_mul.output[0]],
                                name=node.name.removesuffix("_quant"))
        conv.attribute.extend(node.attribute)
        graph.node.insert(list(graph.node).index(node), conv)
        dropped.update(id(n) for n in (node, cast, scale_mul))
        replaced += 1
    kept = [n for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(new_inits)
    _drop_dead(model)
    return replaced


def _only(nodes: list, op_type: str):
    if len(nodes) != 1 or nodes[0].op_type != op_type:
        raise UserError(f"unexpected dynamic-quantisation pattern: expected one {op_type}, "
                        f"found {[n.op_type for n in nodes]}")
    return nodes[0]


def _drop_dead(model) -> None:
    """Remove nodes and initializers no graph output depends on (the orphaned quantisers)."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    alive = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            alive.append(node)
            needed.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(alive))
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def head_nodes(model) -> list[str]:
    """The detection head: the convolutions that feed the outputs with no other Conv between, and
    every node after them. Found from the graph, so it holds for YOLOX, YOLOv8 and YOLO11."""
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    last_convs, seen, stack = set(), set(), [o.name for o in graph.output]
    while stack:
        node = producer.get(stack.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.op_type == "Conv":
            last_convs.add(node.name)
        else:
            stack.extend(node.input)
    return sorted(last_convs | {n.name for n in graph.node if id(n) in seen})


def calibration_frames(source: str, frames: int, every: int) -> list[np.ndarray]:
    from counterd.source import SourceError, open_source

    taken = []
    try:
        with open_source(source) as video:
            for k, frame in enumerate(video):
                if k % every == 0:
                    taken.append(frame.image)
                if len(taken) >= frames:
                    break
    except SourceError as exc:
        raise UserError(f"--calibrate {source}: {exc}") from None
    if not taken:
        raise UserError(f"--calibrate {source}: no frames could be read")
    return taken


def optimize(model_path: Path, source: str, out: Path, *, quantize: bool = True,
             input_size: str = "auto", frames: int = DEFAULT_FRAMES, every: int = DEFAULT_EVERY,
             min_agreement: float = MIN_AGREEMENT) -> dict:
    """Write an optimised copy of model_path for frames like those of source: the input cut to
    the frames' aspect ratio (input_size "auto"; "model" keeps it; "HxW" sets it) and, with
    quantize, static int8 QDQ calibrated on those frames. Each candidate (float, and the QUANTIZED_OPS
    variants) is timed on those frames on this machine and the fastest is written. Returns a
    summary: the size used, the candidates' CPU ms per frame and agreement with the original's
    boxes (detection_agreement; candidates under min_agreement are not kept), which was kept."""
    import onnx

    from counterd.config import DetectorConfig
    from counterd.detect.onnx import OnnxDetector

    if frames < 1 or every < 1:
        raise UserError("--frames and --every must be at least 1")
    images = calibration_frames(source, frames, every)
    try:
        model = onnx.load(str(model_path))
    except Exception as exc:  # onnx raises DecodeError and friends for a damaged file
        raise UserError(f"model {model_path}: cannot read it as ONNX: {first_line(exc)}") from None
    if any(n.op_type in ("QuantizeLinear", "QLinearConv") for n in model.graph.node):
        raise UserError(f"model {model_path} is statically quantised already")
    original = OnnxDetector(DetectorConfig(model=str(model_path), fit_input=False))   # the file as it is
    size = _wanted_size(input_size, original.size, images[0])
    dequantized = dequantize_dynamic(model)
    model = _at_least_opset(model, 13)
    for k, node in enumerate(model.graph.node):
        node.name = node.name or f"{node.op_type}_{k}"    # the head is kept in float by node name
    summary = {"dequantized_convs": dequantized, "calibration_frames": len(images)}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        float_path = Path(tmp) / "float.onnx"
        try:
            model, reshaped = _with_size(model, size, float_path, model_path)
        except UserError as exc:
            if input_size != "auto" or size == original.size:
                raise
            summary["input_size_note"] = str(exc)          # auto: keep the model's own size then
            size = original.size
            model, reshaped = _with_size(model, size, float_path, model_path)
        summary["input_size"] = size
        candidates = {"float": float_path}
        if quantize:
            blobs = [reshaped.blob(reshaped.letterbox(f)[0]) for f in images[::2]]
            keep_float = head_nodes(model)
            for name, op_types in QUANTIZED_OPS.items():
                candidates[name] = Path(tmp) / f"{name}.onnx"
                _quantize(float_path, candidates[name], reshaped.engine.input_name, blobs, keep_float, op_types)
        reshaped.close()
        # Judged on frames calibration did not see: speed here, and agreement with the original.
        check = images[1::2] or images
        reference = [original.detect(f) for f in check]
        timings, agreement = {}, {}
        for name, path in candidates.items():
            detector = _load_checked(path, model_path, size)
            timings[name] = round(cpu_ms_per_frame(detector, check), 2)
            agreement[name] = round(detection_agreement(reference, [detector.detect(f) for f in check]), 3)
            detector.close()
        summary["quantizers"] = {name: sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(path)).graph.node)
                                 for name, path in candidates.items()}
        faithful = [name for name in candidates if agreement[name] >= min_agreement]
        if not faithful:
            raise UserError(f"no optimised copy of {model_path} finds what it finds on these frames "
                            f"(agreement {agreement}, need {min_agreement}; see --min-agreement)")
        best = min(faithful, key=timings.get)
        shutil.copyfile(candidates[best], out)
    _copy_metadata(model, out, best)
    summary.update(kept=best, ms_per_frame=timings, agreement=agreement,
                   ms_original=round(cpu_ms_per_frame(original, check), 2))
    original.close()
    return summary


def _wanted_size(spec: str, model_size: tuple[int, int], frame: np.ndarray) -> tuple[int, int]:
    if spec == "model":
        return model_size
    if spec == "auto":
        return fitted_size(model_size, (frame.shape[1], frame.shape[0]))
    try:
        height, width = (int(v) for v in spec.lower().split("x"))
    except ValueError:
        raise UserError(f"--input-size {spec!r}: expected auto, model or HEIGHTxWIDTH (e.g. 320x416)") from None
    if height < 32 or width < 32 or height % 32 or width % 32:
        raise UserError(f"--input-size {spec}: both sides must be multiples of 32 (the network's stride)")
    return height, width


def _with_size(model, size: tuple[int, int], path: Path, model_path: Path):
    """A copy of model with input size `size` (its grid constants rewritten, as detector.fit_input
    does at load), saved at path, and the detector on it."""
    import onnx

    try:
        model = copy.deepcopy(fit_model(model, size))
    except GraphNotFitted as exc:
        raise UserError(f"model {model_path} cannot take input size {size[0]}x{size[1]}: {exc}") from None
    onnx.save(model, str(path))
    return model, _load_checked(path, model_path, size)


def _load_checked(path: Path, model_path: Path, size: tuple[int, int]):
    """The detector on a written file; its test inference proves the graph takes the new size."""
    from counterd.config import DetectorConfig
    from counterd.detect.onnx import OnnxDetector

    try:
        return OnnxDetector(DetectorConfig(model=str(path), fit_input=False))   # fitted already, or kept square
    except UserError as exc:
        raise UserError(f"model {model_path} does not run at input size {size[0]}x{size[1]} (its graph "
                        f"fixes the size; use --input-size model): {first_line(exc)}") from None


def detection_agreement(reference: list, candidate: list, iou: float = 0.5) -> float:
    """F1 of a candidate model's boxes against the original's over frames: a box agrees when it
    overlaps a box of the other model by at least `iou` (one-to-one, best pairs first)."""
    from counterd.track import box_iou

    matched = total_ref = total_cand = 0
    for a, b in zip(reference, candidate):
        total_ref, total_cand = total_ref + len(a), total_cand + len(b)
        if len(a) and len(b):
            overlap = box_iou(a.xyxy, b.xyxy)
            while overlap.size and overlap.max() >= iou:
                i, j = np.unravel_index(overlap.argmax(), overlap.shape)
                overlap[i, :], overlap[:, j] = 0, 0
                matched += 1
    return 1.0 if total_ref + total_cand == 0 else 2 * matched / (total_ref + total_cand)


def _quantize(float_path: Path, out: Path, input_name: str, blobs: list[np.ndarray], keep_float: list[str],
              op_types: list[str] | None) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(str(float_path), str(out), _Reader(input_name, blobs), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True, calibrate_method=CalibrationMethod.MinMax,
                    nodes_to_exclude=keep_float, op_types_to_quantize=op_types,
                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})


def cpu_ms_per_frame(detector, images: list[np.ndarray], rounds: int = 3) -> float:
    """Least CPU time per detection over a few passes (CPU time: a busy box disturbs it less)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for image in images:
            detector.detect(image)
        best = min(best, (time.process_time() - start) / len(images))
    return 1000 * best


def _at_least_opset(model, version: int):
    """Per-channel QuantizeLinear/DequantizeLinear (their `axis`) need opset 13; YOLOX is 11."""
    from onnx import version_converter

    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), version)
    return model if current >= version else version_converter.convert_version(model, version)


def _copy_metadata(source_model, out: Path, kept: str) -> None:
    """quantize_static drops the model's metadata (class names): put it back, saying what was done.
    Ultralytics' `imgsz` entry is dropped: the file's input shape is the truth now."""
    import onnx

    written = onnx.load(str(out))
    del written.metadata_props[:]
    written.metadata_props.extend(p for p in source_model.metadata_props if p.key != "imgsz")
    entry = written.metadata_props.add()
    entry.key = "counterd_optimized"
    entry.value = f"{kept}; input size fitted to the site's frames"
    onnx.save(written, str(out))


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader protocol over prepared input tensors."""

    def __init__(self, input_name: str, blobs: list[np.ndarray]):
        self._items = iter([{input_name: b} for b in blobs])

    def get_next(self):
        return next(self._items, None)

    def rewind(self) -> None:  # part of the protocol; calibration reads the frames once
        pass
