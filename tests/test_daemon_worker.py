"""Motion gating, coverage accounting and the inference worker's frame handling."""
from __future__ import annotations

import sqlite3
import time
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from counterd.config import (ConfigError, CountingConfig, DetectorConfig, GatingConfig, SourceConfig,
                             config_from_dict)
from counterd.count import CrossingEvent
from counterd.daemon.camera import Camera, LinkState
from counterd.motiongate import MotionGate
from counterd.daemon.metrics import Metrics
from counterd.daemon.worker import Coverage, InferenceWorker, Recorder
from counterd.detect import Detector
from counterd.detections import Detections
from counterd.errors import UserError
from counterd.pipeline import Pipeline
from counterd.schedule import Decision
from counterd.source import Frame, VideoSource


def still(value: int = 100) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(value + rng.integers(-3, 4, (120, 160, 3)), 0, 255).astype(np.uint8)


def with_box(x: int) -> np.ndarray:
    image = still()
    image[40:100, x:x + 20] = 20
    return image


def test_gate_skips_a_static_scene_and_wakes_on_motion():
    gate = MotionGate(GatingConfig(max_skip_s=10.0))
    decisions = [gate.should_detect(still(), t * 0.1) for t in range(10)]
    assert decisions == [True] + [False] * 9         # the first frame sets the reference
    assert gate.should_detect(with_box(50), 1.0)      # someone walks in
    assert gate.skipped == 9


def test_gate_ignores_sensor_noise_below_the_pixel_delta():
    gate = MotionGate(GatingConfig(max_skip_s=10.0, pixel_delta=12))
    gate.should_detect(still(100), 0.0)
    assert not gate.should_detect(still(106), 0.1)   # a slight global brightening
    assert gate.should_detect(still(130), 0.2)        # a real change of light still wakes it


def test_gate_compares_with_the_last_detected_frame_so_slow_movement_accumulates():
    gate = MotionGate(GatingConfig(max_skip_s=100.0, width=160, min_changed=0.01))
    gate.should_detect(with_box(10), 0.0)
    # one pixel a frame is below the threshold against the previous frame, not against the reference
    woke = [gate.should_detect(with_box(10 + k), k * 0.1) for k in range(1, 12)]
    assert any(woke)


def test_gate_detects_at_least_every_max_skip_and_on_looping():
    gate = MotionGate(GatingConfig(max_skip_s=0.5))
    assert [gate.should_detect(still(), t * 0.1) for t in range(8)] == [True, False, False, False, False,
                                                                        True, False, False]
    assert gate.should_detect(still(), 0.0)           # time went backwards: a looped file restarted


def test_disabled_gate_always_detects():
    gate = MotionGate(GatingConfig(enabled=False))
    assert all(gate.should_detect(still(), t) for t in range(5))


def test_coverage_counts_only_time_between_close_frames():
    coverage = Coverage(max_gap_s=2.0)
    for t in [0.0, 0.5, 1.0, 1.5]:
        coverage.add(t)
    assert coverage.take() == [(0.0, 1.5)]
    for t in [2.0, 2.5, 10.0, 10.5, 11.0]:         # an outage from 2.5 to 10: not covered
        coverage.add(t)
    assert coverage.take() == [(1.5, 2.5), (10.0, 11.0)]
    assert coverage.take() == []
    assert sum(b - a for a, b in [(0.0, 1.5), (1.5, 2.5), (10.0, 11.0)]) == 3.5


def test_recorder_gives_back_a_failed_batch_first():
    recorder = Recorder(max_gap_s=1.0)
    first = CrossingEvent(1.0, "door", "in", "person", 1)
    recorder.add([first], 1.0)
    recorder.add([], 1.5)
    events, coverage = recorder.drain()
    recorder.give_back(events, coverage)
    second = CrossingEvent(2.0, "door", "out", "person", 2)
    recorder.add([second], 2.0)
    events, coverage = recorder.drain()
    assert events == [first, second] and coverage == [(1.0, 1.5), (1.5, 2.0)]


def test_recorder_holds_a_bounded_backlog_while_the_store_fails(monkeypatch, caplog):
    monkeypatch.setattr("counterd.daemon.worker.MAX_HELD", 3)
    recorder = Recorder(max_gap_s=1.0)
    events = [CrossingEvent(float(i), "door", "in", "person", i) for i in range(5)]
    recorder.give_back(events, [])
    held, _ = recorder.drain()
    assert held == events[-3:]                       # the newest kept, the oldest dropped
    assert "dropped the 2 oldest crossing events" in caplog.text


async def test_a_batch_the_store_refuses_is_kept_whole_and_never_published(tmp_path):
    """One transaction per flush: a failing write stores none of the batch, publishes nothing,
    and the next flush stores and publishes all of it once."""
    from counterd.bus import BatchBus
    from counterd.daemon.flusher import Flusher
    from counterd.store import AlertRules, AsyncStore, Store

    store = Store(tmp_path / "counts.db", ZoneInfo("UTC"))
    astore = AsyncStore(store)
    bus, published = BatchBus(), []
    bus.subscribe(published.append)
    recorder = Recorder(max_gap_s=1.0)
    event = CrossingEvent(1000.0, "door", "in", "person", 1)
    recorder.give_back([event], [(990.0, 1000.0)])
    flusher = Flusher(recorder, astore, AlertRules(), bus, store.path)
    real_write = store.write
    store.write = lambda *args: (_ for _ in ()).throw(sqlite3.OperationalError("disk I/O error"))
    assert await flusher.flush() is None
    assert published == [] and store.events_between(0, 2000) == []
    store.write = real_write
    batch = await flusher.flush()
    assert published == [batch] and batch.events == (event,) and batch.coverage == ((990.0, 1000.0),)
    assert len(store.events_between(0, 2000)) == 1
    assert await flusher.flush() is None                 # nothing left: not stored twice
    astore.shutdown()
    store.close()


class NarrowConfig:
    """A config whose lines fit only frames at least 200 px wide."""

    counting = CountingConfig()

    def __init__(self):
        self.sizes = []

    def check_frame_size(self, width, height):
        self.sizes.append((width, height))
        if width < 200:
            raise UserError("counterd.toml: lines[0].end: point (300, 10) is outside the 160x120 frame")


class FakePipeline:
    """Detects every frame (no schedule); a crossing every fifth frame."""

    def __init__(self, fail_on: int | None = None):
        self.steps, self.fail_on = [], fail_on
        self.times = type("T", (), {"last": {"detect": 0.01, "track": 0.001, "count": 0.001}, "fresh": True})()
        self.config = NarrowConfig()
        self.last_decision = Decision.DETECT

    def step(self, frame):
        self.steps.append(frame.index)
        if frame.index == self.fail_on:
            raise RuntimeError("bad frame")
        return [CrossingEvent(frame.timestamp, "door", "in", "person", frame.index)] if frame.index % 5 == 4 else []

    def finish(self):
        return [CrossingEvent(99.0, "door", "out", "person", 99)]

    def reconfigure(self, config):
        self.config = config


class ScriptedDetector(Detector):
    """One person-sized box where the picture has its dark box (see with_box), found by
    thresholding: a stand-in detector whose calls are counted."""

    def __init__(self):
        super().__init__(DetectorConfig(type="motion"))
        self.calls = 0

    def detect(self, frame):
        self.calls += 1
        xs = np.flatnonzero((frame[:, :, 0] < 40).any(axis=0))
        if not len(xs):
            return Detections.empty()
        return Detections.from_arrays([[xs[0], 40, xs[-1] + 1, 100]], [0.9], [0])


class Clip:
    """A file-like capture: n frames, the box moving only in the second half."""

    def __init__(self, n=20):
        self.n, self.i = n, 0

    def read(self):
        if self.i >= self.n:
            return False, None
        self.i += 1
        return True, with_box(self.i * 4) if self.i > self.n // 2 else still()

    def get(self, prop):
        return {5: 10.0}.get(prop, 0.0)   # cv2.CAP_PROP_FPS == 5

    def release(self):
        pass


class SlowClip(Clip):
    """A file-like capture: the box walks 1 px a frame (a twentieth of its width) all along."""

    def read(self):
        if self.i >= self.n:
            return False, None
        self.i += 1
        return True, with_box(10 + self.i)


def run_worker(pipeline, n=20, wall=lambda: 1_000_000.0, clip=Clip):
    camera = Camera("clip", lambda: VideoSource(lambda: clip(n), name="clip", live=False), SourceConfig())
    recorder = Recorder(max_gap_s=2.0)
    worker = InferenceWorker(camera, pipeline, Metrics(), recorder, wall_clock=wall)
    worker.start()
    assert worker.finished.wait(10)           # the clip played out and was settled
    assert worker.stop(5)
    return worker, recorder


def scheduled_pipeline(line_x: float = 80, **gating) -> Pipeline:
    config = config_from_dict({"detector": {"type": "motion"}, "gating": gating,
                               "counting": {"hysteresis_px": 0, "hysteresis_ratio": 0},
                               "lines": [{"name": "door", "start": [line_x, 0], "end": [line_x, 120]}]}, "<test>")
    return Pipeline(config, detector=ScriptedDetector())


def test_the_worker_follows_the_pipelines_schedule_and_counts_static_frames():
    pipeline = scheduled_pipeline(max_skip_s=100.0)
    worker, recorder = run_worker(pipeline)
    assert worker.frames_processed == 20
    skipped = worker.metrics.frames_skipped._value.get()
    assert skipped >= 8                                   # the static first half
    assert pipeline.detector.calls == 20 - skipped        # the moving second half is all detected


def test_the_worker_counts_the_frames_the_stride_rests():
    pipeline = scheduled_pipeline(line_x=150, enabled=False, stride=True)   # no motion gate, far from the door
    worker, _ = run_worker(pipeline, clip=SlowClip)
    strided = worker.metrics.frames_strided._value.get()
    assert strided >= 5                                   # a slow walker lets the detector rest
    assert pipeline.detector.calls == 20 - strided
    assert worker.metrics.frames_skipped._value.get() == 0


def test_a_rested_frame_is_not_a_miss_so_a_track_seen_once_survives_it():
    """Rest semantics: the motion gate's skipped frames used to coast the tracker, and a coast
    is a miss that ends a track seen only once; its crossing right after was then lost."""
    pipeline = scheduled_pipeline(line_x=36, max_skip_s=100.0, width=160, min_changed=0.001)
    boxes = [20, 20, 20, 20, 24, 28]        # feet at x = 30 (then still), 34, 38: across x = 36
    events = []
    for i, x in enumerate(boxes):
        events += pipeline.step(Frame(with_box(x), i * 0.1, i))
    assert pipeline.detector.calls == 3                   # frames 1-3 rested (static)
    assert [(e.direction, e.track_id) for e in events] == [("in", 1)]


def test_worker_maps_file_time_to_wall_time_and_survives_a_failing_frame(caplog):
    pipeline = FakePipeline(fail_on=3)
    worker, recorder = run_worker(pipeline, wall=lambda: 1_000_000.0)
    events, coverage = recorder.drain()
    assert worker.frames_processed == 19                  # frame 3 failed; the rest went on
    assert "bad frame" in caplog.text
    assert [e.track_id for e in events] == [4, 9, 14, 19, 99]   # 99: settled at the file's end
    assert all(e.timestamp == pytest.approx(1_000_000.0, abs=100) for e in events)
    assert pipeline.config.sizes == [(160, 120)]                # checked once per frame size
    assert caplog.text.count("outside the 160x120 frame (the camera sends 160x120)") == 1


class SlowPipeline(FakePipeline):
    def step(self, frame):
        time.sleep(0.05)              # a detector at 20 fps behind a camera at ~200 fps
        return super().step(frame)


class FastCamera:
    def read(self):
        time.sleep(0.005)
        return True, still()

    def get(self, prop):
        return 0.0

    def release(self):
        pass


def test_a_slow_pipeline_drops_frames_instead_of_falling_behind_and_counts_them():
    pipeline = SlowPipeline()
    camera = Camera("cam", lambda: VideoSource(FastCamera, name="cam", live=True), SourceConfig())
    metrics = Metrics()
    worker = InferenceWorker(camera, pipeline, metrics, Recorder(2.0))
    worker.start()
    deadline = time.monotonic() + 10
    while worker.frames_processed < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.stop(5)
    gaps = [b - a for a, b in zip(pipeline.steps, pipeline.steps[1:])]
    assert min(gaps) >= 1 and max(gaps) > 3                # frames in between were skipped
    dropped = metrics.frames_dropped._value.get()
    assert dropped >= 3 * worker.frames_processed
    assert metrics.frames_read._value.get() >= dropped + worker.frames_processed - 1


class FiveFrames:
    """A camera that has sent five frames by the time anyone reads."""

    def __init__(self):
        self.i = 0

    def read(self):
        if self.i >= 5:
            time.sleep(0.05)
            return False, None
        self.i += 1
        return True, np.full((4, 6, 3), self.i - 1, np.uint8)

    def get(self, prop):
        return 0.0

    def release(self):
        pass


def test_source_live_frames_sets_how_many_frames_the_daemon_holds_while_behind():
    from counterd.confighub import ConfigHub
    from counterd.daemon.notify import Notifier
    from counterd.daemon.service import Daemon, source_opener
    from counterd.source import EndOfStream
    line = {"name": "door", "start": [3, 0], "end": [3, 4]}
    config = config_from_dict({"source": {"live_frames": 2}, "lines": [line]})
    daemon = Daemon(ConfigHub(config, adjust=lambda c: c), Metrics(), Notifier(), capture_factory=FiveFrames)
    source = source_opener(daemon)()
    try:
        deadline = time.monotonic() + 5
        while source.alive and time.monotonic() < deadline:    # the camera has sent all five
            time.sleep(0.005)
        frames = []
        while True:
            try:
                frames.append(source.read(timeout=2))
            except EndOfStream:
                break
        assert [f.index for f in frames] == [3, 4]     # the newest two were held, the rest dropped
        assert source.dropped == 3
    finally:
        source.close()
    with pytest.raises(ConfigError, match="live_frames"):
        config_from_dict({"source": {"live_frames": 0}, "lines": [line]})
