"""Object detectors behind one small interface: a BGR frame in, Detections in frame pixels out.

Each backend is one module in this package that defines a Detector subclass; its heavy imports
(onnxruntime, ultralytics) happen inside that module, so a box only pays for the backend it uses
and a missing optional library is a one-line error saying what to install.
"""
from __future__ import annotations

import importlib

import cv2
import numpy as np

from counterd.choices import BACKENDS
from counterd.classes import CLASS_IDS
from counterd.config import DetectorConfig
from counterd.detections import Detections



class Detector:
    """One backend instance. Not thread-safe: the pipeline calls it from one worker thread."""

    def __init__(self, cfg: DetectorConfig):
        self.cfg = cfg
        # Boolean table over COCO ids: which classes the counter wants.
        self.wanted = np.zeros(len(CLASS_IDS), bool)
        self.wanted[[CLASS_IDS[c] for c in cfg.classes]] = True

    def detect(self, frame: np.ndarray) -> Detections:
        """Objects in a BGR uint8 frame (H, W, 3; grey and BGRA are converted), boxes in frame
        pixels, only the wanted classes."""
        raise NotImplementedError

    @property
    def can_batch(self) -> bool:
        """Whether detect_many shares one inference between frames (counterd/choices.py says
        which backends do; detector.mosaic is refused for the others)."""
        return BACKENDS[self.cfg.type].can_batch

    def detect_many(self, frames: list[np.ndarray]) -> list[Detections]:
        """Detections for each of several frames; backends that can share one inference
        between them (onnx with detector.mosaic) override this."""
        return [self.detect(frame) for frame in frames]

    def input_scale(self, width: int, height: int) -> float | None:
        """Frame pixels per pixel of the model's input, for a frame (or region) of this size: the
        detector places box edges to about one input pixel, so this is the smallest jitter the
        counter can expect (counting.hysteresis_input_px). None: unknown."""
        return None

    def mosaic_scale(self, width: int, height: int) -> float | None:
        """Frame pixels -> model-input pixels when two frames of this size share one inference
        (detector.mosaic); None where this detector does not pair frames."""
        return None

    def close(self) -> None:
        """Release the engine; the detector is unusable afterwards."""

    def describe(self) -> str:
        """One line for logs: backend, model, input size."""
        return self.cfg.type

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def first_line(exc: Exception) -> str:
    """A library's exception as one short line for a user-facing error."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """3-channel BGR from what cameras send: grey (IR cameras at night) or BGRA."""
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def coco_ids_for(names: list[str]) -> np.ndarray:
    """Model class index -> COCO id, matched by name; -1 for a class COCO lacks. Lets a custom
    model whose classes are numbered differently still count as person, car, ...

    80 classes none of which is a COCO name are placeholders ("class0", "0": a network built
    from a yaml, an export without names): such a model is taken to be in COCO order."""
    ids = np.array([CLASS_IDS.get(str(n).strip().lower(), -1) for n in names], np.int32)
    if len(ids) == len(CLASS_IDS) and (ids < 0).all():
        return np.arange(len(ids), dtype=np.int32)
    return ids


def make_detector(cfg: DetectorConfig) -> Detector:
    module_name, class_name = BACKENDS[cfg.type].target.split(":")
    backend = getattr(importlib.import_module(module_name), class_name)
    return backend(cfg)
