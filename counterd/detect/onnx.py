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

from counterd.classes import COCO_NAMES
from counterd.config import DetectorConfig
from counterd.detect import Detector, as_bgr, coco_ids_for, first_line
from counterd.detect.engines import open_engine
from counterd.detect.mosaic import mosaic_plan, mosaic_scale
from counterd.detect.yolo import (Letterbox, decode_end2end, decode_ultralytics, decode_yolox, letterbox,
                                  select, to_detections, yolox_grid)
from counterd.detections import Detections
from counterd.errors import UserError
from counterd.models import resolve_model

log = logging.getLogger(__name__)
DEFAULT_SIZE = 640   # for a model whose input size is dynamic and not in its metadata


class OnnxDetector(Detector):
    def __init__(self, cfg: DetectorConfig):
        super().__init__(cfg)
        self.path = resolve_model(cfg.model, cfg.models_dir)
        self.engine = open_engine(cfg.type, self.path, cfg.threads, cfg.providers)
        self.inferences = 0                   # model runs so far (a mosaic runs once for two frames)
        self.nhwc, self.size = self._input_layout()
        self.dtype = np.float16 if self.engine.float16 else np.float32
        self.head, class_count = self._probe_head()
        self.inferences = 0
        self.coco_ids = coco_ids_for(self._class_names(class_count))
        log.info("detector: %s", self.describe())

    def describe(self) -> str:
        h, w = self.size
        return f"{self.engine.name} {self.path.name} ({self.head} head, {w}x{h}, {self.cfg.threads} thread(s))"

    def input_scale(self, width: int, height: int) -> float:
        """The letterbox shrinks the frame by min(input w / width, input h / height). (A mosaic draws
        frames a little smaller still; the single frame's scale is taken for them too.)"""
        h, w = self.size
        return max(width / w, height / h)

    def _input_layout(self) -> tuple[bool, tuple[int, int]]:
        shape = self.engine.input_shape
        if len(shape) != 4 or 3 not in (shape[1], shape[3]):
            raise UserError(f"model {self.path}: input {self.engine.input_name} has shape {shape}; "
                            "expected an image tensor [1, 3, H, W] or [1, H, W, 3]")
        nhwc = shape[1] != 3
        h, w = (shape[1], shape[2]) if nhwc else (shape[2], shape[3])
        if not (isinstance(h, int) and isinstance(w, int)):
            h, w = self._metadata_size()
        return nhwc, (h, w)

    def _metadata_size(self) -> tuple[int, int]:
        meta = self.engine.metadata
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
            return len(ast.literal_eval(self.engine.metadata.get("names", "")))
        except (ValueError, SyntaxError, TypeError):
            return 0

    def _class_names(self, count: int) -> list[str]:
        """Class names from Ultralytics metadata; a model without them must be COCO-80."""
        raw = self.engine.metadata.get("names")
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

    def blob(self, image: np.ndarray, head: str | None = None) -> np.ndarray:
        """A letterboxed image -> the model's input tensor (also the calibration data of
        `counterd model optimize`)."""
        if (head or self.head) != "yolox":   # Ultralytics models: trained on RGB scaled to 0-1
            blob = cv2.dnn.blobFromImage(image, 1 / 255.0, swapRB=True)
        else:                                # YOLOX: BGR, 0-255, no normalisation
            blob = cv2.dnn.blobFromImage(image, 1.0, swapRB=False)
        if self.nhwc:
            blob = blob.transpose(0, 2, 3, 1)
        return np.ascontiguousarray(blob, self.dtype)

    def letterbox(self, frame: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        return letterbox(as_bgr(frame), self.size, centre=self.head != "yolox")

    def _infer(self, image: np.ndarray, head: str) -> np.ndarray:
        """A letterboxed image -> the output tensor without its batch axis."""
        output = self.engine.run(self.blob(image, head))
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
        plan = mosaic_plan(self.size, frames) if self.cfg.mosaic else None
        if plan is None:
            return [self.detect(f) for f in frames]
        xyxy, scores = self._decode(self._infer(plan.canvas(frames), self.head))
        return [to_detections(*select(xyxy[inside], scores[inside], self.coco_ids, self.wanted,
                                      self.cfg.confidence, self.cfg.nms_iou), box, *plan.frame_size)
                for inside, box in plan.split(xyxy)]

    def mosaic_scale(self, width: int, height: int) -> float | None:
        return mosaic_scale(self.size, width, height) if self.cfg.mosaic else None

    def _decode(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.head == "ultralytics":
            return decode_ultralytics(output)
        if self.head == "end2end":
            return decode_end2end(output, len(self.coco_ids))
        return decode_yolox(output, self.size)

    def close(self) -> None:
        self.engine.close()
