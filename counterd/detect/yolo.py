"""YOLO pre- and post-processing as pure functions (numpy, OpenCV): letterbox, head decoding, NMS.

Kept apart from any inference engine so each step can be tested with hand-made tensors, and so
the ONNX backend is only the glue between a session and these functions.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from counterd.detections import Detections

PAD_VALUE = 114          # the grey both Ultralytics and YOLOX train their letterbox borders with
YOLOX_STRIDES = (8, 16, 32)
MAX_CANDIDATES = 3000    # boxes kept for NMS, best first; bounds NMS time on a noisy frame
MAX_DETECTIONS = 300     # boxes a frame may return after NMS


@dataclass(frozen=True)
class Letterbox:
    """How a frame was scaled and padded into the network input, to map boxes back."""

    scale: float
    pad_x: float
    pad_y: float

    def to_frame(self, xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
        """Boxes in network-input pixels -> boxes in frame pixels, clipped to the frame."""
        out = (xyxy - np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)) / self.scale
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
        return out


def letterbox(frame: np.ndarray, size: tuple[int, int], centre: bool = True) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping aspect ratio into size=(height, width), pad the rest with grey.

    Ultralytics models were trained with the image centred in the padding, YOLOX models with it
    in the top-left corner; each is fed the layout it was trained on."""
    h, w = frame.shape[:2]
    th, tw = size
    scale = min(th / h, tw / w)
    nh, nw = round(h * scale), round(w * scale)
    # Bilinear reads 2x2 pixels: shrinking by more than 2x (a 1080p camera into a 416 input) skips
    # pixels and aliases, and small people vanish; area averaging uses them all.
    interpolation = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
    resized = frame if (nh, nw) == (h, w) else cv2.resize(frame, (nw, nh), interpolation=interpolation)
    if centre:
        top, left = (th - nh) // 2, (tw - nw) // 2
    else:
        top, left = 0, 0
    padded = cv2.copyMakeBorder(resized, top, th - nh - top, left, tw - nw - left, cv2.BORDER_CONSTANT,
                                value=(PAD_VALUE, PAD_VALUE, PAD_VALUE))
    return padded, Letterbox(scale, float(left), float(top))


def decode_ultralytics(output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A YOLOv8/YOLO11 head, shape (4 + nc, N) with rows cx, cy, w, h, class scores (already
    sigmoid), in input pixels -> (xyxy (N, 4), scores (N, nc))."""
    boxes = output[:4].T
    return cxcywh_to_xyxy(boxes), output[4:].T


def decode_yolox(output: np.ndarray, input_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A raw YOLOX head, shape (N, 5 + nc): per grid cell (dx, dy, log w, log h, objectness,
    class scores), cells of strides 8, 16, 32 in row-major order. Objectness and class scores
    come out of the network already passed through a sigmoid."""
    grid, strides = yolox_grid(input_size)
    if len(grid) != len(output):
        raise ValueError(f"YOLOX output has {len(output)} rows, the {input_size[1]}x{input_size[0]} "
                         f"input's stride 8/16/32 grid has {len(grid)}")
    centres = (output[:, :2] + grid) * strides
    sizes = np.exp(np.minimum(output[:, 2:4], 20.0)) * strides  # cap: exp overflows on garbage
    boxes = np.concatenate([centres, sizes], axis=1)
    return cxcywh_to_xyxy(boxes), output[:, 5:] * output[:, 4:5]


def decode_end2end(output: np.ndarray, class_count: int) -> tuple[np.ndarray, np.ndarray]:
    """An end-to-end head with NMS inside (YOLO26, YOLOv10, Ultralytics `nms=True` exports),
    shape (N, 6): x1, y1, x2, y2, score, class in input pixels -> (xyxy, scores (N, nc)) with each
    box's score in its class column, so the same selection applies."""
    classes = output[:, 5].astype(np.intp)
    valid = (classes >= 0) & (classes < class_count)
    scores = np.zeros((len(output), class_count), np.float32)
    scores[np.flatnonzero(valid), classes[valid]] = output[valid, 4]
    return output[:, :4], scores


_grids: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def yolox_grid(input_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets (N, 2) and strides (N, 1) for an input of (height, width); cached."""
    if input_size not in _grids:
        h, w = input_size
        cells, strides = [], []
        for s in YOLOX_STRIDES:
            ys, xs = np.mgrid[0:h // s, 0:w // s]
            cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
            strides.append(np.full((xs.size, 1), s))
        _grids[input_size] = (np.concatenate(cells).astype(np.float32),
                              np.concatenate(strides).astype(np.float32))
    return _grids[input_size]


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    half = boxes[:, 2:4] * 0.5
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def select(xyxy: np.ndarray, scores: np.ndarray, coco_ids: np.ndarray, wanted: np.ndarray,
           confidence: float, nms_iou: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best class per box, then confidence threshold, class filter and class-aware NMS.

    coco_ids maps the model's class index to a COCO id (-1: a class COCO lacks); wanted is a
    boolean table over COCO ids. The class is chosen before filtering, as Ultralytics does, so a
    box the model thinks is a dog is dropped rather than counted as its runner-up, a person."""
    best = scores.argmax(axis=1)
    conf = scores[np.arange(len(scores)), best]
    cls = coco_ids[best]
    keep = (conf >= confidence) & (cls >= 0)
    keep[keep] = wanted[cls[keep]]
    xyxy, conf, cls = xyxy[keep], conf[keep], cls[keep]
    if len(conf) > MAX_CANDIDATES:
        top = np.argpartition(-conf, MAX_CANDIDATES)[:MAX_CANDIDATES]
        xyxy, conf, cls = xyxy[top], conf[top], cls[top]
    idx = nms(xyxy, conf, cls, nms_iou)
    return xyxy[idx], conf[idx], cls[idx]


def nms(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by class-aware non-maximum suppression, highest score first (OpenCV's C++)."""
    if len(scores) == 0:
        return np.zeros(0, np.intp)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    idx = cv2.dnn.NMSBoxesBatched(xywh.astype(np.float64), scores.astype(np.float32),
                                  class_ids.astype(np.int32), 0.0, iou, top_k=MAX_DETECTIONS)
    return np.asarray(idx, np.intp).reshape(-1)


def to_detections(xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray, box: Letterbox,
                  width: int, height: int) -> Detections:
    """Boxes back in frame pixels; a box that lay wholly in the padding clips to nothing and goes."""
    xyxy = box.to_frame(xyxy.astype(np.float32), width, height)
    real = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    return Detections.from_arrays(xyxy[real], conf[real], cls[real])
