"""The `ultralytics` backend (extra): anything `ultralytics.YOLO()` loads.

.pt weights, ONNX files, TensorRT engines, OpenVINO directories, or a model .yaml (an untrained
network, for tests). Useful on boxes with an accelerator Ultralytics drives; the `onnx` backend
is lighter everywhere else. Never downloads: a model name must resolve to a local file.
"""
from __future__ import annotations

import logging
import os

import numpy as np

from counterd.config import DetectorConfig
from counterd.detect import Detector, as_bgr, coco_ids_for, first_line
from counterd.detections import Detections
from counterd.errors import UserError
from counterd.models import resolve_model

log = logging.getLogger(__name__)


ULTRALYTICS_IMGSZ = 640


class UltralyticsDetector(Detector):
    def __init__(self, cfg: DetectorConfig):
        super().__init__(cfg)
        # Ultralytics otherwise pip-installs missing helpers (onnx) and fetches fonts at run time;
        # an edge box must run with what it was installed with.
        os.environ.setdefault("YOLO_OFFLINE", "1")
        try:
            import torch
            from ultralytics import YOLO
        except ImportError:
            raise UserError("detector type 'ultralytics' needs the ultralytics extra: "
                            "pip install 'counterd[ultralytics]'") from None
        torch.set_num_threads(cfg.threads)
        # A .yaml names an architecture Ultralytics ships; anything else must be a local file.
        self.source = cfg.model if cfg.model.endswith((".yaml", ".yml")) and "/" not in cfg.model \
            else str(resolve_model(cfg.model, cfg.models_dir))
        try:
            self.model = YOLO(self.source, task="detect")
            names = self.model.names
        except Exception as exc:  # Ultralytics raises many types for unreadable or foreign files
            raise UserError(f"model {self.source}: Ultralytics cannot load it: {first_line(exc)}") from None
        self.coco_ids = coco_ids_for([names[i] for i in range(len(names))])
        usable = self.coco_ids >= 0
        usable[usable] = self.wanted[self.coco_ids[usable]]
        self.model_classes = np.flatnonzero(usable).tolist()   # filtered inside predict, before NMS
        if not self.model_classes:
            log.warning("model %s detects none of the classes %s", self.source, ", ".join(cfg.classes))
        log.info("detector: %s", self.describe())

    def input_scale(self, width: int, height: int) -> float:
        """predict() letterboxes the longer side to its default imgsz of 640."""
        return max(width, height) / ULTRALYTICS_IMGSZ

    def describe(self) -> str:
        return f"ultralytics {self.source} ({len(self.coco_ids)} classes, {self.cfg.threads} thread(s))"

    def detect(self, frame: np.ndarray) -> Detections:
        if not self.model_classes:
            return Detections.empty()
        result = self.model.predict(as_bgr(frame), conf=self.cfg.confidence, iou=self.cfg.nms_iou,
                                    classes=self.model_classes, verbose=False)[0]
        boxes = result.boxes
        return Detections.from_arrays(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(),
                                      self.coco_ids[boxes.cls.cpu().numpy().astype(np.intp)])

    def close(self) -> None:
        self.model = None
