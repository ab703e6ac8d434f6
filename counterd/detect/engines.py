"""Inference engines for the YOLO detector: ONNX Runtime (default) and OpenVINO's runtime (optional).

The detector (counterd/detect/onnx.py) does letterboxing, decoding and NMS; an engine only loads
the ONNX file and runs it. Both read the same file, so switching engines never changes the weights.
OpenVINO is an optional extra (`pip install counterd[openvino]`, about 180 MB installed): on Intel
CPUs it is often faster than ONNX Runtime, on this project's AMD test box it was measured slower
(bench/RESULTS.md, "Inference engines"), so it is chosen with `detector.type = "openvino"`, never
by default.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from counterd.detect import first_line
from counterd.errors import UserError


class OrtEngine:
    name = "onnx"

    def __init__(self, path: Path, threads: int, providers: tuple[str, ...], graph: bytes | None = None):
        import onnxruntime as ort

        check_providers(providers, ort.get_all_providers(), ort.get_available_providers())
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1      # one graph at a time; parallelism is inside ops
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3        # int8 models warn about every quantised node
        # Idle pool threads otherwise spin between frames, burning the cores decode and the API need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(graph or str(path), options, providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own types for every kind of bad file
            raise UserError(f"model {path}: ONNX Runtime cannot load it: {first_line(exc)}") from None
        first = self.session.get_inputs()[0]
        self.input_name, self.input_shape = first.name, list(first.shape)
        self.float16 = first.type == "tensor(float16)"
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, blob: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: blob})[0]

    def close(self) -> None:
        self.session = None


def check_providers(wanted: tuple[str, ...], known: list[str], available: list[str]) -> None:
    """detector.providers: each a provider ONNX Runtime knows and this installation has."""
    if not wanted:
        raise UserError("detector.providers: name at least one, e.g. [\"CPUExecutionProvider\"]")
    for name in wanted:
        if name not in known:
            raise UserError(f"detector.providers: unknown execution provider {name!r} "
                            f"(this onnxruntime has: {', '.join(available)})")
        if name not in available:
            raise UserError(f"detector.providers: {name} is not available in this onnxruntime build "
                            f"(it has: {', '.join(available)}); install the onnxruntime package built "
                            f"with it, or use detector.type = \"openvino\" for OpenVINO")


class OpenVinoEngine:
    name = "openvino"

    def __init__(self, path: Path, threads: int, graph: bytes | None = None):
        try:
            import openvino as ov
        except ImportError:
            raise UserError("detector.type = \"openvino\" needs the openvino package: "
                            "pip install 'counterd[openvino]'") from None
        core = ov.Core()
        try:
            model = core.read_model(graph or str(path))
            # f32: on CPUs with bf16 units OpenVINO would otherwise compute in bf16, and the same
            # weights would give other scores than under ONNX Runtime.
            self.compiled = core.compile_model(model, "CPU", {
                "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": "f32"})
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long C++ traces
            raise UserError(f"model {path}: OpenVINO cannot load it: {first_line(exc)}") from None
        first = model.inputs[0]
        self.input_name = first.get_any_name()
        self.input_shape = [d.get_length() if d.is_static else None for d in first.get_partial_shape()]
        self.float16 = first.get_element_type() == ov.Type.f16
        self.metadata = self._metadata(model)
        self.request = self.compiled.create_infer_request()

    @staticmethod
    def _metadata(model) -> dict[str, str]:
        """The ONNX file's metadata_props, which OpenVINO keeps under rt_info["framework"]."""
        if not model.has_rt_info(["framework"]):
            return {}
        return {key: model.get_rt_info(["framework", key]).astype(str)
                for key in model.get_rt_info()["framework"]}

    def run(self, blob: np.ndarray) -> np.ndarray:
        return self.request.infer({0: blob})[0]

    def close(self) -> None:
        self.request = self.compiled = None


def open_engine(kind: str, path: Path, threads: int, providers: tuple[str, ...], graph: bytes | None = None):
    """The engine on the model file at path, or on `graph` (the serialised ONNX of that file
    rewritten in memory, counterd/detect/fitinput.py) where given; path then names it in errors."""
    if kind == "openvino":
        return OpenVinoEngine(path, threads, graph)
    return OrtEngine(path, threads, providers, graph)
