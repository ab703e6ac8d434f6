"""The hot loop for one camera: frame -> detect -> track -> count -> crossing events.

Synchronous and single-threaded on purpose: the daemon runs it in its inference worker thread and
`counterd process` calls it directly. Each stage takes the Detections of the one before it.
"""
from __future__ import annotations

import dataclasses
import time

from counterd.config import Config
from counterd.count import CrossingEvent, LineCounter
from counterd.detect import Detector, make_detector
from counterd.source import Frame
from counterd.track import Tracker

STAGES = ("detect", "track", "count")


@dataclasses.dataclass
class StageTimes:
    """Seconds spent per stage: the last frame's, and running sums for averages."""

    last: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    total: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    frames: int = 0

    def record(self, detect: float, track: float, count: float) -> None:
        for stage, seconds in zip(STAGES, (detect, track, count)):
            self.last[stage] = seconds
            self.total[stage] += seconds
        self.frames += 1

    def mean_ms(self) -> dict[str, float]:
        return {s: 1000 * t / max(self.frames, 1) for s, t in self.total.items()}


class Pipeline:
    def __init__(self, config: Config, detector: Detector | None = None):
        self.config = config
        self.detector = detector if detector is not None else make_detector(config.detector)
        self.tracker = Tracker(config.tracker)
        self.counter = LineCounter(config.lines, config.counting)
        self.times = StageTimes()

    def step(self, frame: Frame) -> list[CrossingEvent]:
        t0 = time.perf_counter()
        detections = self.detector.detect(frame.image)
        t1 = time.perf_counter()
        tracks = self.tracker.update(detections, frame.timestamp)
        t2 = time.perf_counter()
        events = self.counter.update(tracks, frame.timestamp)
        t3 = time.perf_counter()
        self.times.record(t1 - t0, t2 - t1, t3 - t2)
        return events

    def finish(self) -> list[CrossingEvent]:
        """The stream has ended: tracks last seen inside a band past a line count as crossed."""
        return self.counter.finish()

    def keep_alive(self, timestamp: float) -> None:
        """A frame was skipped (static scene): let tracks coast as if nothing was detected there."""
        self.tracker.coast(timestamp)

    @property
    def totals(self) -> dict[str, dict[str, dict[str, int]]]:
        return self.counter.totals

    def reconfigure(self, config: Config) -> None:
        """Apply new lines and thresholds without losing totals or live tracks.

        The detector is kept: a different model or backend needs a restart."""
        self.tracker.reconfigure(config.tracker)
        self.counter.reconfigure(config.lines, config.counting)
        self.config = config

    def close(self) -> None:
        self.detector.close()
