"""The default backend: a YOLO model in ONNX Runtime on the CPU.

Input size, layout and head type are read from the model, so any YOLOv8/YOLO11 export
([1, 4+nc, N]), end-to-end Ultralytics export ([1, N, 6]: YOLO26, YOLOv10) or raw-grid YOLOX
export ([1, N, 5+nc]) works without settings.

With detector.fit_input (the default) the square input is cut to the frames' aspect ratio when
the first frame arrives (counterd/detect/fitinput.py rewrites the graph in memory), and again
whenever the frame size changes; a graph that cannot be fitted keeps its input, logged once.
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
from counterd.detect.fitinput import Grid, GraphNotFitted, fit_model, fitted_size
from counterd.detect.mosaic import mosaic_plan, mosaic_scale
from counterd.detect.yolo import (Letterbox, decode_end2end, decode_ultralytics, decode_yolox, letterbox,
                                  select, to_detections, yolox_grid)
from counterd.detections import Detections
from counterd.errors import UserError
from counterd.heap import give_back_freed_memory
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
        self.model_size = self.size               # the file's own input; self.size may be fitted
        self.dtype = np.float16 if self.engine.float16 else np.float32
        self.head, class_count = self._probe_head()
        self.inferences = 0
        self.coco_ids = coco_ids_for(self._class_names(class_count))
        self._square_engine = self.engine         # the file as it is (a mosaic's pairs use it)
        self._fitted_for: tuple[int, int] | None = None   # frame (width, height) self.size is for
        self._not_fitted = ""                     # why this graph keeps its input, once found
        log.info("detector: %s", self.describe())

    def describe(self) -> str:
        h, w = self.size
        return f"{self.engine.name} {self.path.name} ({self.head} head, {w}x{h}, {self.cfg.threads} thread(s))"

    def input_scale(self, width: int, height: int) -> float:
        """The letterbox shrinks the frame by min(input w / width, input h / height). (A mosaic draws
        frames a little smaller still; the single frame's scale is taken for them too.) A fitted
        input draws the frame at the square input's scale, so the file's own size says it."""
        h, w = self.model_size
        return max(width / w, height / h)

    def fit_to(self, width: int, height: int) -> None:
        """detector.fit_input: the input cut to frames of this size, the engine rebuilt on the
        rewritten graph; done again when the size changes (a camera reconfigured, a region of
        interest learned), and undone for frames the square input already fits."""
        if not self.cfg.fit_input or self._fitted_for == (width, height):
            return
        self._fitted_for = (width, height)
        wanted = fitted_size(self.model_size, (width, height))
        if wanted == self.size or (self._not_fitted and wanted != self.model_size):
            return
        try:
            engine = self._square() if wanted == self.model_size else self._fitted_engine(wanted)
        except GraphNotFitted as exc:
            self._not_fitted = str(exc)
            log.warning("detector: %s keeps its %dx%d input for %dx%d frames: %s", self.path.name,
                        self.model_size[1], self.model_size[0], width, height, exc)
            return
        if self.engine is not self._square_engine:
            self.engine.close()
        if not self.cfg.mosaic and self._square_engine is not engine and self._square_engine is not None:
            self._square_engine.close()           # one session in memory unless a mosaic needs both
            self._square_engine = None
        self.engine, self.size = engine, wanted
        give_back_freed_memory()                  # the rewrite's copies of the graph
        log.info("detector: input fitted to %dx%d frames: %s", width, height, self.describe())

    def _square(self):
        if self._square_engine is None:
            self._square_engine = open_engine(self.cfg.type, self.path, self.cfg.threads, self.cfg.providers)
        return self._square_engine

    def _fitted_engine(self, size: tuple[int, int]):
        """An engine on the graph rewritten for input `size`, checked by one inference: its head
        must have one row per cell of the new grid."""
        try:
            import onnx
        except ImportError:
            raise GraphNotFitted("the onnx package is not installed (pip install onnx)") from None
        if self.head == "end2end":
            raise GraphNotFitted("an end-to-end head's output does not show its grid, so a rewrite "
                                 "cannot be checked")
        try:
            graph = fit_model(onnx.load(str(self.path)), size).SerializeToString()
            engine = open_engine(self.cfg.type, self.path, self.cfg.threads, self.cfg.providers, graph)
            shape = self._run(engine, np.full((*size, 3), 114, np.uint8), self.head).shape
        except GraphNotFitted:
            raise
        except Exception as exc:  # onnx, ONNX Runtime and OpenVINO each raise their own types
            raise GraphNotFitted(f"the rewritten graph does not run: {first_line(exc)}") from None
        rows = shape[0] if self.head == "yolox" else shape[-1]
        expected = len(yolox_grid(size)[0]) if self.head == "yolox" else Grid(*size).anchors
        if rows != expected:
            engine.close()
            raise GraphNotFitted(f"the rewritten graph gives {rows} boxes where the {size[1]}x{size[0]} "
                                 f"stride 8/16/32 grid has {expected}")
        return engine

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

    def _infer(self, image: np.ndarray, head: str, engine=None) -> np.ndarray:
        """A letterboxed image -> the output tensor without its batch axis."""
        self.inferences += 1
        return self._run(engine or self.engine, image, head)

    def _run(self, engine, image: np.ndarray, head: str) -> np.ndarray:
        output = engine.run(self.blob(image, head))
        return np.asarray(output[0] if output.ndim == 3 else output, np.float32)

    def detect(self, frame: np.ndarray) -> Detections:
        frame = as_bgr(frame)
        height, width = frame.shape[:2]
        self.fit_to(width, height)
        image, box = letterbox(frame, self.size, centre=self.head != "yolox")
        xyxy, scores = self._decode(self._infer(image, self.head), self.size)
        kept = select(xyxy, scores, self.coco_ids, self.wanted, self.cfg.confidence, self.cfg.nms_iou)
        return to_detections(*kept, box, width, height)

    def detect_many(self, frames: list[np.ndarray]) -> list[Detections]:
        """With detector.mosaic, same-sized frames share one inference (counterd/detect/mosaic.py),
        drawn into the file's own (square) input, whose room two frames fill better than a fitted one."""
        frames = [as_bgr(f) for f in frames]
        plan = mosaic_plan(self.model_size, frames) if self.cfg.mosaic else None
        if plan is None:
            return [self.detect(f) for f in frames]
        output = self._infer(plan.canvas(frames), self.head, self._square())
        xyxy, scores = self._decode(output, self.model_size)
        return [to_detections(*select(xyxy[inside], scores[inside], self.coco_ids, self.wanted,
                                      self.cfg.confidence, self.cfg.nms_iou), box, *plan.frame_size)
                for inside, box in plan.split(xyxy)]

    def mosaic_scale(self, width: int, height: int) -> float | None:
        return mosaic_scale(self.model_size, width, height) if self.cfg.mosaic else None

    def _decode(self, output: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        if self.head == "ultralytics":
            return decode_ultralytics(output)
        if self.head == "end2end":
            return decode_end2end(output, len(self.coco_ids))
        return decode_yolox(output, size)

    def close(self) -> None:
        self.engine.close()
        if self._square_engine not in (None, self.engine):
            self._square_engine.close()
