"""One box per vehicle: what class-aware NMS leaves behind on traffic.

Class-aware NMS (counterd/detect/yolo.py, and Ultralytics' own) compares boxes of one class only,
and by IoU. On traffic that leaves two kinds of second box on one vehicle:
- the same box under two classes: a pickup or an SUV scored both `car` and `truck`;
- a box around part of a vehicle (its front, its cab) inside the box around all of it: their IoU
  is only the ratio of their areas, under the NMS threshold even when one lies wholly in the other.
Either way the tracker starts a second track on the vehicle, which counts it twice, once under
each class, or flips between the two boxes (bench/RESULTS.md, "Vehicles: one box per vehicle").

The rule: a car/truck/bus box lying mostly inside another car/truck/bus box that scores higher is
dropped. Containment, not IoU, and across the three vehicle classes. People, bicycles and
motorcycles are left alone: a rider's box inside the motorcycle's is a second object, and so is a
person in front of a bus.
"""
from __future__ import annotations

import numpy as np

from counterd.classes import CLASS_IDS, COCO_NAMES
from counterd.detections import Detections

VEHICLE_IDS = np.array([CLASS_IDS[c] for c in ("car", "truck", "bus")], np.int32)
IS_VEHICLE = np.isin(np.arange(len(COCO_NAMES)), VEHICLE_IDS)   # a table: np.isin costs 10 us a call


def drop_nested_vehicles(dets: Detections, share: float) -> Detections:
    """dets without the vehicle boxes that lie at least `share` of their own area inside a
    higher-scoring vehicle box; share 0 keeps every box."""
    if share <= 0 or len(dets) < 2:
        return dets
    vehicle = np.flatnonzero(IS_VEHICLE[dets.class_id])
    if len(vehicle) < 2:
        return dets
    boxes = dets.xyxy[vehicle]
    overlap = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    overlap -= np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    np.maximum(overlap, 0, out=overlap)
    inside = overlap[..., 0] * overlap[..., 1]                  # [i, j]: intersection of i and j
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    inside = inside >= share * np.maximum(area, 1e-6)[:, None]  # i lies mostly inside j
    score = dets.confidence[vehicle]
    # Outranked by a higher score; of two equal scores, the later box goes (i inside j, j < i).
    outranked = score[None, :] > score[:, None]
    outranked |= (score[None, :] == score[:, None]) & np.tri(len(score), k=-1, dtype=bool)
    nested = (inside & outranked).any(axis=1)
    if not np.count_nonzero(nested):
        return dets
    keep = np.ones(len(dets), bool)
    keep[vehicle[nested]] = False
    return dets[keep]
