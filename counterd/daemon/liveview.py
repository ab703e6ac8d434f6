"""The console's live view: the newest analysed frame and its tracks, in memory only.

The inference worker hands over references (no copy of the picture, no encoding) on every
frame; a JPEG is made only when someone asks for one, at most once per `min_interval_s`, in a
worker thread, and kept in memory for everyone who asks meanwhile. Frames never touch the disk.
"""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from counterd.classes import class_name
from counterd.detections import Detections

JPEG_QUALITY = 80
MIN_INTERVAL_S = 1.0      # a new JPEG at most this often, however many viewers poll


@dataclass(frozen=True)
class View:
    """One analysed frame as the worker left it."""
    seq: int
    timestamp: float        # wall clock, epoch seconds
    image: np.ndarray
    tracks: Detections

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.image.shape[:2]
        return w, h


@dataclass(frozen=True)
class Picture:
    """A View encoded for the console: JPEG bytes and the tracks of that same frame."""
    seq: int
    timestamp: float
    width: int
    height: int
    jpeg: bytes
    tracks: list[dict]


def tracks_json(tracks: Detections) -> list[dict]:
    return [{"id": int(i), "class": class_name(int(c)), "box": [round(float(v), 1) for v in box]}
            for box, c, i in zip(tracks.xyxy, tracks.class_id, tracks.tracker_id)]


def encode(view: View) -> Picture:
    ok, data = cv2.imencode(".jpg", view.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    w, h = view.size
    return Picture(view.seq, view.timestamp, w, h, data.tobytes(), tracks_json(view.tracks))


class LiveView:
    def __init__(self, min_interval_s: float = MIN_INTERVAL_S, clock=time.monotonic):
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._view: View | None = None
        self._seq = 0
        self._picture: Picture | None = None
        self._encoded_at = float("-inf")
        self._encoding: asyncio.Lock | None = None
        self.encodes = 0            # JPEGs made (the tests check the rate limit with it)

    def update(self, image: np.ndarray, tracks: Detections, timestamp: float) -> None:
        """From the worker thread, every analysed frame: references only, no copy of the image.
        The track arrays are copied (a few rows) since the tracker reuses its own."""
        tracks = Detections(tracks.xyxy.copy(), tracks.confidence.copy(), tracks.class_id.copy(),
                            tracks.tracker_id.copy())
        with self._lock:
            self._seq += 1
            self._view = View(self._seq, timestamp, image, tracks)

    def latest(self) -> View | None:
        with self._lock:
            return self._view

    async def picture(self) -> Picture | None:
        """The newest frame as JPEG; None before the first frame. Concurrent callers share one
        encoding, and a picture younger than min_interval_s is served again."""
        if self._encoding is None:
            self._encoding = asyncio.Lock()
        async with self._encoding:
            view = self.latest()
            if view is None:
                return None
            fresh = self._clock() - self._encoded_at < self.min_interval_s
            if self._picture is None or (self._picture.seq != view.seq and not fresh):
                self._picture = await asyncio.to_thread(encode, view)
                self._encoded_at = self._clock()
                self.encodes += 1
            return self._picture
