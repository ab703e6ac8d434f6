"""Region of interest: detect only where counting happens.

A model with a fixed input size costs the same whatever it is fed, so a frame cropped to the part
around the lines before the letterbox is drawn larger in the same input: people near the door are
bigger for the model, and nothing is spent on sky or on the far side of the car park.

The region is either given (`detector.roi = [x1, y1, x2, y2]`) or, with `detector.roi_from_lines`,
the box around every line's band (the hysteresis band either side of the segment), grown by a
margin sized from the objects seen there: `roi_margin` of an object's width left and right and of
its height above and below, plus the object's own extent from the counted anchor (a bottom-centre
anchor at the band's top edge has the whole body above it). The object size is learned from the
detector itself: until WARMUP_BOXES boxes near the lines have been seen, frames go through whole;
after that the size is the 90th percentile of the boxes seen near the lines (kept growing: a
bigger object later widens the region). A region that would cover most of the frame is not worth
cropping, and the frame goes through whole.

A box cut by the crop's edge (where the crop edge is not the frame's) would be a truncated,
misplaced object: it is dropped, so a track leaving the region coasts as it would behind a pillar.
"""
from __future__ import annotations

import numpy as np

from counterd.config import Config
from counterd.detections import Detections

WARMUP_BOXES = 30           # boxes near the lines seen before the region is cropped
SIZE_PERCENTILE = 90        # the object size the margin is made from
SIZE_MEMORY = 500           # recent box sizes kept for that percentile
NEAR_LINES = 2.0            # a box is "near the lines" within this many of its own sizes
WHOLE_FRAME_SHARE = 0.85    # a region covering more of the frame than this is not cropped
EDGE_PX = 2.0               # a box this close to an inner crop edge was cut by it


class RegionOfInterest:
    def __init__(self, config: Config):
        det = config.detector
        self.explicit = tuple(det.roi) if det.roi else None
        self.from_lines = det.roi_from_lines and not self.explicit and bool(config.lines)
        self.margin = det.roi_margin
        self.anchor = config.counting.anchor
        band = config.counting.hysteresis_px
        points = np.array([p for line in config.lines for p in (line.start, line.end)], np.float32).reshape(-1, 2)
        # The box around every line's band: the union of the bands, as one rectangle to crop.
        self.lines_box = (np.concatenate([points.min(0) - band, points.max(0) + band])
                          if len(points) else np.zeros(4, np.float32))
        self._sizes = np.zeros((0, 2), np.float32)     # (w, h) of recent boxes near the lines
        self._size: np.ndarray | None = None           # the learned object size

    @property
    def active(self) -> bool:
        return self.explicit is not None or self.from_lines

    def region(self, width: int, height: int) -> tuple[int, int, int, int] | None:
        """The crop (x1, y1, x2, y2) for a frame of this size, or None: detect on the whole frame."""
        if self.explicit is not None:
            box = np.array(self.explicit, np.float32)
        elif self.from_lines and self._size is not None:
            box = self._grown(self._size)
        else:
            return None
        x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
        x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
        if x2 - x1 < 16 or y2 - y1 < 16:
            return None
        if self.explicit is None and (x2 - x1) * (y2 - y1) > WHOLE_FRAME_SHARE * width * height:
            return None
        return x1, y1, x2, y2

    def _grown(self, size: np.ndarray) -> np.ndarray:
        w, h = float(size[0]), float(size[1])
        # How far the box reaches above and below its anchor point.
        above = {"bottom-center": h, "center": h / 2, "top-center": 0.0}[self.anchor]
        below = h - above
        x1, y1, x2, y2 = self.lines_box
        m = self.margin
        return np.array([x1 - w / 2 - m * w, y1 - above - m * h, x2 + w / 2 + m * w, y2 + below + m * h])

    def crop(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
        region = self.region(image.shape[1], image.shape[0])
        if region is None:
            return image, None
        x1, y1, x2, y2 = region
        return image[y1:y2, x1:x2], region

    def restore(self, detections: Detections, region: tuple[int, int, int, int] | None,
                width: int, height: int) -> Detections:
        """Boxes found in a crop -> frame pixels, without the ones the crop's inner edges cut;
        learns object sizes from what it sees near the lines."""
        if region is not None:
            x1, y1, x2, y2 = region
            detections.xyxy += np.array([x1, y1, x1, y1], np.float32)
            box = detections.xyxy
            cut = np.zeros(len(detections), bool)
            for axis, edge, inner in ((0, x1, x1 > 0), (1, y1, y1 > 0)):
                if inner:
                    cut |= box[:, axis] <= edge + EDGE_PX
            for axis, edge, inner in ((2, x2, x2 < width), (3, y2, y2 < height)):
                if inner:
                    cut |= box[:, axis] >= edge - EDGE_PX
            detections = detections[~cut]
        if self.from_lines:
            self._learn(detections.xyxy)
        return detections

    def _learn(self, xyxy: np.ndarray) -> None:
        sizes = xyxy[:, 2:] - xyxy[:, :2]
        centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
        lo, hi = self.lines_box[:2], self.lines_box[2:]
        # Distance from the box centre to the lines' box, in the box's own sizes.
        gap = np.maximum(np.maximum(lo - centre, centre - hi), 0) / np.maximum(sizes, 1.0)
        near = sizes[(gap <= NEAR_LINES).all(axis=1)]
        if not len(near):
            return
        self._sizes = np.concatenate([self._sizes, near])[-SIZE_MEMORY:]
        if len(self._sizes) >= WARMUP_BOXES:
            size = np.percentile(self._sizes, SIZE_PERCENTILE, axis=0)
            self._size = size if self._size is None else np.maximum(self._size, size)
