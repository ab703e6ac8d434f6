"""The hot loop for one camera: frame -> detect -> track -> count -> crossing events.

Synchronous and single-threaded on purpose: the daemon runs it in its inference worker thread and
`counterd process` calls it directly. Each stage takes the Detections of the one before it.
Two settings make it detect less: `gating.stride` rests the detector while every track moves
slowly (counterd/stride.py), and `detector.mosaic` holds a frame back until its partner arrives
so the two share one inference (counterd/detect/mosaic.py); frames are still tracked and counted
one by one, in order, each with its own timestamp.
"""
from __future__ import annotations

import dataclasses
import time

from counterd.config import Config
from counterd.count import CrossingEvent, LineCounter
from counterd.detect import Detector, make_detector
from counterd.detections import Detections
from counterd.source import Frame
from counterd.stride import DetectionStride
from counterd.track import Tracker

STAGES = ("detect", "track", "count")


@dataclasses.dataclass
class StageTimes:
    """Seconds spent per stage: the last frame's, and running sums for averages."""

    last: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    total: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    frames: int = 0

    fresh: bool = False   # whether the last step() ran the stages (not rested or held back)

    def record(self, detect: float, track: float, count: float) -> None:
        for stage, seconds in zip(STAGES, (detect, track, count)):
            self.last[stage] = seconds
            self.total[stage] += seconds
        self.frames += 1
        self.fresh = True

    def mean_ms(self) -> dict[str, float]:
        return {s: 1000 * t / max(self.frames, 1) for s, t in self.total.items()}


class Pipeline:
    def __init__(self, config: Config, detector: Detector | None = None):
        self.config = config
        self.detector = detector if detector is not None else make_detector(config.detector)
        self.tracker = Tracker(config.tracker)
        self.counter = LineCounter(config.lines, config.counting)
        self.times = StageTimes()
        self.stride = self._stride_for(config)
        self._held: list[Frame] = []      # mosaic: frames waiting for a partner to share an inference
        self.last_tracks = Detections.empty()   # the tracker's output for the newest analysed frame

    def step(self, frame: Frame) -> list[CrossingEvent]:
        self.times.fresh = False
        if self.stride is not None and not self.stride.should_detect(frame.timestamp):
            return []
        self._held.append(frame)
        if self.config.detector.mosaic and len(self._held) < 2:
            if self.stride is not None:
                self.stride.hold(frame.timestamp)
            return []
        return self._flush()

    def _flush(self) -> list[CrossingEvent]:
        frames, self._held = self._held, []
        if not frames:
            return []
        t0 = time.perf_counter()
        if len(frames) == 1:
            detected = [self.detector.detect(frames[0].image)]
        else:
            detected = self.detector.detect_many([f.image for f in frames])
        detect_each = (time.perf_counter() - t0) / len(frames)
        events = []
        for frame, detections in zip(frames, detected):
            t1 = time.perf_counter()
            tracks = self.last_tracks = self.tracker.update(detections, frame.timestamp)
            t2 = time.perf_counter()
            events += self.counter.update(tracks, frame.timestamp)
            t3 = time.perf_counter()
            if self.stride is not None:
                self.stride.observe(tracks, frame.timestamp)
            self.times.record(detect_each, t2 - t1, t3 - t2)
        return events

    def finish(self) -> list[CrossingEvent]:
        """The stream has ended: a held frame is analysed, and tracks last seen inside a band past
        a line count as crossed."""
        return self._flush() + self.counter.finish()

    def keep_alive(self, timestamp: float) -> list[CrossingEvent]:
        """A frame was skipped (static scene): let tracks coast as if nothing was detected there.
        A frame held for the mosaic goes through first, so time only moves forward."""
        events = self._flush()
        self.tracker.coast(timestamp)
        return events

    @property
    def totals(self) -> dict[str, dict[str, dict[str, int]]]:
        return self.counter.totals

    def reconfigure(self, config: Config) -> None:
        """Apply new lines and thresholds without losing totals or live tracks.

        The detector is kept, and so is the [detector] section it was built from: a different
        model, backend or mosaic setting needs a restart (pairing frames for a mosaic the
        detector was not built for would add a frame of latency for nothing)."""
        config = dataclasses.replace(config, detector=self.config.detector)
        self.tracker.reconfigure(config.tracker)
        self.counter.reconfigure(config.lines, config.counting)
        if config.gating != self.config.gating:
            self.stride = self._stride_for(config)
        self.config = config

    @staticmethod
    def _stride_for(config: Config) -> DetectionStride | None:
        gating = config.gating
        return DetectionStride(gating.stride_max_shift, gating.stride_max_rest_s) if gating.stride else None

    def close(self) -> None:
        self.detector.close()
