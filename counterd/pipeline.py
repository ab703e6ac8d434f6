"""The hot loop for one camera: frame -> detect -> track -> count -> crossing events.

Synchronous and single-threaded on purpose: the daemon runs it in its inference worker thread and
`counterd process` calls it directly, so both count the same frames the same way. Each stage
takes the Detections of the one before it. Which frames are detected is the one detection
schedule's call (counterd/schedule.py: motion gate, stride, mosaic pairing); detected frames are
tracked and counted one by one, in order, each with its own timestamp, and rested ones are not
shown to the tracker at all. With `detector.roi` or `detector.roi_from_lines` the detector sees
only the region around the lines (counterd/roi.py).
"""
from __future__ import annotations

import dataclasses
import time

from counterd.config import Config, ConfigError
from counterd.count import CrossingEvent, LineCounter, cut_by_frame
from counterd.detect import Detector, make_detector
from counterd.detect.mosaic import MIN_MOSAIC_HEIGHT
from counterd.detect.overlap import drop_nested_vehicles
from counterd.detections import Detections
from counterd.schedule import Decision, DetectionSchedule
from counterd.reid import Embedder, Stitcher
from counterd.roi import RegionOfInterest
from counterd.source import Frame
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
        if config.detector.mosaic and not self.detector.can_batch:
            raise ConfigError([f"{config.path}: detector.mosaic: the {config.detector.type} backend "
                               f"cannot share one inference between frames; set detector.mosaic = false"])
        self.tracker = Tracker(config.tracker)
        self.counter = LineCounter(config.lines, config.counting)
        self.stitcher = (Stitcher(config.tracker, Embedder(config.tracker.reid_model), self.counter.watching,
                                  self.tracker.take_over)
                         if config.tracker.reid_model else None)
        self.times = StageTimes()
        self.schedule = DetectionSchedule(config)
        self.last_decision: Decision | None = None
        self.roi = RegionOfInterest(config)
        self._frame_size: tuple[int, int] | None = None   # (width, height) of the newest frame
        self._held: list[Frame] = []      # mosaic: frames waiting for a partner to share an inference
        self.last_tracks = Detections.empty()   # the tracker's output for the newest analysed frame

    def step(self, frame: Frame) -> list[CrossingEvent]:
        self.times.fresh = False
        self._frame_size = frame.image.shape[1::-1]
        self.last_decision = decision = self.schedule.decide(frame, holding=bool(self._held),
                                                             watching=self.watching_lines,
                                                             pairable=self.mosaic_fits)
        if decision.rested:
            return []
        self._held.append(frame)
        return self._flush() if decision is Decision.DETECT else []

    def _flush(self) -> list[CrossingEvent]:
        frames, self._held = self._held, []
        if not frames:
            return []
        t0 = time.perf_counter()
        crops = [self.roi.crop(f.image) for f in frames]
        if len(frames) == 1:
            detected = [self.detector.detect(crops[0][0])]
        else:
            detected = self.detector.detect_many([image for image, _ in crops])
        nested_share = self.config.detector.vehicle_nested_share
        detected = [drop_nested_vehicles(self.roi.restore(d, region, f.image.shape[1], f.image.shape[0]),
                                         nested_share)
                    for d, (_, region), f in zip(detected, crops, frames)]
        detect_each = (time.perf_counter() - t0) / len(frames)
        events = []
        for frame, detections, (image, _) in zip(frames, detected, crops):
            input_px = self.detector.input_scale(image.shape[1], image.shape[0])   # of what it saw
            t1 = time.perf_counter()
            tracks = self.tracker.update(detections, frame.timestamp)
            if self.stitcher is not None:
                tracks = self.stitcher.update(tracks, frame.image, frame.timestamp)
            self.last_tracks = tracks
            t2 = time.perf_counter()
            events += self.counter.update(tracks, frame.timestamp, frame.image.shape[1::-1], input_px)
            t3 = time.perf_counter()
            self.schedule.observe(tracks, frame, input_px)
            self.times.record(detect_each, t2 - t1, t3 - t2)
        return events

    def watching_lines(self, timestamp: float, horizon_s: float) -> bool:
        """Whether a tracked object is inside a line's band or will enter one within horizon_s,
        at its estimated velocity, or has crossed one since it was last seen: the stride and the
        motion gate never skip such a frame, since a crossing decided on a skipped frame is
        decided on a guess. The path starts where the object was last seen, not where it is
        predicted now: an object that stepped over a narrow band since (a car moving more than
        the band's width a frame) has a crossing the counter has not yet decided. And never
        while the counter itself has a decision pending (LineCounter.undecided: a side to decide
        on leaving a band, judged by the chord from where it was last decided, a reversal held,
        a box jump settling): what it decides must be decided on a detected frame."""
        if self.counter.undecided():
            return True
        if not len(self.tracker):
            return False
        seen, then = self.tracker.sightings()[0], self.tracker.predicted_boxes(timestamp + horizon_s)
        if self.counter.watching(seen, then):
            return True
        # A box cut by the frame's edge does not show where the object's anchor is (it may lie
        # anywhere within the box's extent), so such an object is watched within its own height.
        cut = cut_by_frame(seen, self._frame_size)
        return bool(cut.any()) and self.counter.watching(seen[cut], then[cut], seen[cut, 3:4] - seen[cut, 1:2])

    def mosaic_fits(self, frame: Frame) -> bool:
        """Whether this frame may share one inference with the next (detector.mosaic): no tracked
        object that would be drawn below MIN_MOSAIC_HEIGHT model-input pixels at the mosaic's
        scale (as tall as when last seen) is in a line's band or can reach one within
        tracker.max_coast_seconds, the time a track survives unseen. Such an object must stay
        tracked until it has crossed, and a smaller one is found less often (bench/size_recall.py).
        Small objects that cannot reach a line that soon (parked cars, people far off) do not stop
        the pairing: they have time to be found again at full size before they matter. A small one
        seen only once has no velocity yet, so it may be heading anywhere: no pairing either. With
        nothing tracked, no: a newcomer's size is unknown, so it is looked for at full size."""
        image, _ = self.roi.crop(frame.image)          # the detector sees the crop
        scale = self.detector.mosaic_scale(image.shape[1], image.shape[0])
        if scale is None or not len(self.tracker):
            return False
        seen, hits = self.tracker.sightings()
        small = (seen[:, 3] - seen[:, 1]) * scale < MIN_MOSAIC_HEIGHT
        if not small.any():
            return True
        if (hits[small] < 2).any():
            return False
        t, horizon = frame.timestamp, self.config.tracker.max_coast_seconds
        return not self.counter.watching(self.tracker.predicted_boxes(t)[small],
                                         self.tracker.predicted_boxes(t + horizon)[small])

    def finish(self) -> list[CrossingEvent]:
        """The stream has ended: a held frame is analysed, and tracks last seen inside a band past
        a line count as crossed."""
        return self._flush() + self.counter.finish()

    @property
    def totals(self) -> dict[str, dict[str, dict[str, int]]]:
        return self.counter.totals

    def reconfigure(self, config: Config) -> None:
        """Apply new lines and thresholds without losing totals or live tracks.

        The detector is kept, and so is the [detector] section it was built from: a different
        model, backend or mosaic setting needs a restart (pairing frames for a mosaic the
        detector was not built for would add a frame of latency for nothing). So is the re-id
        model (tracker.reid_model); its thresholds apply at once."""
        config = dataclasses.replace(config, detector=self.config.detector, tracker=dataclasses.replace(
            config.tracker, reid_model=self.config.tracker.reid_model))
        self.tracker.reconfigure(config.tracker)
        if self.stitcher is not None:
            self.stitcher.reconfigure(config.tracker)
        self.counter.reconfigure(config.lines, config.counting)
        self.schedule.reconfigure(config.gating)
        if (config.lines, config.counting) != (self.config.lines, self.config.counting):
            self.roi = RegionOfInterest(config)
        self.config = config

    def close(self) -> None:
        self.detector.close()
        if self.stitcher is not None:
            self.stitcher.embedder.close()
