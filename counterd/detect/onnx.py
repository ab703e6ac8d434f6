"""The default backend: a YOLO model in ONNX Runtime on the CPU.

Input size, layout and head type are read from the model, so any YOLOv8/YOLO11 export
([1, 4+nc, N]), end-to-end Ultralytics export ([1, N, 6]: YOLO26, YOLOv10) or raw-grid YOLOX
export ([1, N, 5+nc]) works without settings.
"""
from __future__ import annotations

import ast
import logging

import cv2
import numpy as np
import onnxruntime as ort

from counterd.classes import COCO_NAMES
from counterd.config import DetectorConfig
from counterd.detect import Detector, as_bgr, coco_ids_for, first_line
from counterd.detect.mosaic import MIN_MOSAIC_SCALE, mosaic_plan
from counterd.detect.yolo import (decode_end2end, decode_ultralytics, decode_yolox, letterbox, select,
                                  to_detections, yolox_grid)
from counterd.detections import Detections
from counterd.errors import UserError
from counterd.models import resolve_model

log = logging.getLogger(__name__)
DEFAULT_SIZE = 640   # for a model whose input size is dynamic and not in its metadata


class OnnxDetector(Detector):
    def __init__(self, cfg: DetectorConfig):
        super().__init__(cfg)
        self.path = resolve_model(cfg.model, cfg.models_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = cfg.threads
        options.inter_op_num_threads = 1      # one graph at a time; parallelism is inside ops
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3        # int8 models warn about every quantised node
        # Idle pool threads otherwise spin between frames, burning the cores decode and the API need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for every kind of bad file
            raise UserError(f"model {self.path}: ONNX Runtime cannot load it: {first_line(exc)}") from None
        self.inferences = 0                   # model runs so far (a mosaic runs once for two frames)
        self.input = self.session.get_inputs()[0]
        self.nhwc, self.size = self._input_layout()
        self.dtype = np.float16 if self.input.type == "tensor(float16)" else np.float32
        self.head, class_count = self._probe_head()
        self.inferences = 0
        self.coco_ids = coco_ids_for(self._class_names(class_count))
        log.info("detector: %s", self.describe())

    def describe(self) -> str:
        h, w = self.size
        return f"onnx {self.path.name} ({self.head} head, {w}x{h}, {self.cfg.threads} thread(s))"

    def _input_layout(self) -> tuple[bool, tuple[int, int]]:
        shape = self.input.shape
        if len(shape) != 4 or 3 not in (shape[1], shape[3]):
            raise UserError(f"model {self.path}: input {self.input.name} has shape {shape}; "
                            "expected an image tensor [1, 3, H, W] or [1, H, W, 3]")
        nhwc = shape[1] != 3
        h, w = (shape[1], shape[2]) if nhwc else (shape[2], shape[3])
        if not (isinstance(h, int) and isinstance(w, int)):
            h, w = self._metadata_size()
        return nhwc, (h, w)

    def _metadata_size(self) -> tuple[int, int]:
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            h, w = ast.literal_eval(meta["imgsz"])
            return int(h), int(w)
        except (KeyError, ValueError, SyntaxError, TypeError):
            return DEFAULT_SIZE, DEFAULT_SIZE

    def _probe_head(self) -> tuple[str, int]:
        """Run once on a grey image: warms the session up and shows the output layout."""
        blank = np.full((*self.size, 3), 114, np.uint8)
        try:
            shape = self._infer(blank, "ultralytics").shape
        except Exception as exc:  # e.g. an input of another type, a graph that needs two inputs
            raise UserError(f"model {self.path}: a test inference failed: {first_line(exc)}") from None
        # The YOLOX test is exact (one row per grid cell), so it goes first.
        if len(shape) == 2 and shape[1] > 5 and shape[0] == len(yolox_grid(self.size)[0]):
            return "yolox", shape[1] - 5
        if len(shape) == 2 and 4 < shape[0] < shape[1]:
            return "ultralytics", shape[0] - 4
        if len(shape) == 2 and shape[1] == 6:
            return "end2end", self._named_class_count() or len(COCO_NAMES)
        raise UserError(f"model {self.path}: output shape {list(shape)} is not a YOLOv8/YOLO11 head "
                        "[1, 4+nc, N], an end-to-end head [1, N, 6] or a raw YOLOX head [1, N, 5+nc] "
                        "(see models/README.md)")

    def _named_class_count(self) -> int:
        try:
            return len(ast.literal_eval(self.session.get_modelmeta().custom_metadata_map.get("names", "")))
        except (ValueError, SyntaxError, TypeError):
            return 0

    def _class_names(self, count: int) -> list[str]:
        """Class names from Ultralytics metadata; a model without them must be COCO-80."""
        raw = self.session.get_modelmeta().custom_metadata_map.get("names")
        if raw:
            try:
                names = ast.literal_eval(raw)
                return [str(names[i]) for i in range(count)]
            except (ValueError, SyntaxError, KeyError, TypeError, IndexError):
                pass
        if count == len(COCO_NAMES):
            return list(COCO_NAMES)
        raise UserError(f"model {self.path}: {count} classes and no class names in its metadata; "
                        "counterd needs COCO-80 or named classes")

    def _infer(self, image: np.ndarray, head: str) -> np.ndarray:
        """A letterboxed image -> the output tensor without its batch axis."""
        if head != "yolox":         # Ultralytics models: trained on RGB scaled to 0-1
            blob = cv2.dnn.blobFromImage(image, 1 / 255.0, swapRB=True)
        else:                       # YOLOX: BGR, 0-255, no normalisation
            blob = cv2.dnn.blobFromImage(image, 1.0, swapRB=False)
        if self.nhwc:
            blob = blob.transpose(0, 2, 3, 1)
        output = self.session.run(None, {self.input.name: np.ascontiguousarray(blob, self.dtype)})[0]
        self.inferences += 1
        return np.asarray(output[0] if output.ndim == 3 else output, np.float32)

    def detect(self, frame: np.ndarray) -> Detections:
        frame = as_bgr(frame)
        height, width = frame.shape[:2]
        image, box = letterbox(frame, self.size, centre=self.head != "yolox")
        xyxy, scores = self._decode(self._infer(image, self.head))
        kept = select(xyxy, scores, self.coco_ids, self.wanted, self.cfg.confidence, self.cfg.nms_iou)
        return to_detections(*kept, box, width, height)

    def detect_many(self, frames: list[np.ndarray]) -> list[Detections]:
        """With detector.mosaic, same-sized frames share one inference (counterd/detect/mosaic.py)."""
        frames = [as_bgr(f) for f in frames]
        plan = mosaic_plan(self.size, frames, MIN_MOSAIC_SCALE) if self.cfg.mosaic else None
        if plan is None:
            return [self.detect(f) for f in frames]
        xyxy, scores = self._decode(self._infer(plan.canvas(frames), self.head))
        return [to_detections(*select(xyxy[inside], scores[inside], self.coco_ids, self.wanted,
                                      self.cfg.confidence, self.cfg.nms_iou), box, *plan.frame_size)
                for inside, box in plan.split(xyxy)]

    def _decode(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.head == "ultralytics":
            return decode_ultralytics(output)
        if self.head == "end2end":
            return decode_end2end(output, len(self.coco_ids))
        return decode_yolox(output, self.size)

    def close(self) -> None:
        self.session = None
