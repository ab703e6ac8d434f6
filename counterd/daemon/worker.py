"""The inference worker: one thread that pulls frames from the camera, runs the pipeline on them
and hands crossing events and analysed time to the recorder. The asyncio loop never waits on it.

Live frames come through a short queue (source.live_frames, the oldest dropped when it is full): a
worker held up for a moment catches up without losing frames, a detector slower than the camera
drops frames instead of falling further behind; the drops are counted. Time counts as covered only between
analysed frames no further apart than `max_gap_s`: an outage or a stall leaves a gap in coverage.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Callable

from counterd.config import Config
from counterd.count import CrossingEvent
from counterd.daemon.camera import Camera, LinkState
from counterd.daemon.liveview import LiveView
from counterd.daemon.metrics import Metrics
from counterd.errors import UserError
from counterd.pipeline import STAGES, Pipeline
from counterd.schedule import Decision
from counterd.source import Frame

log = logging.getLogger("counterd.worker")

POLL_S = 0.5             # the worker looks up (heartbeat, stop, new config) at least this often
ERROR_LOG_EVERY_S = 60.0  # a failing pipeline logs at most this often


class Coverage:
    """Intervals of wall time actually analysed, handed out as they grow."""

    def __init__(self, max_gap_s: float):
        self.max_gap_s = max_gap_s
        self._start: float | None = None   # not yet handed out part of the current run
        self._last: float | None = None
        self._closed: list[tuple[float, float]] = []

    def add(self, t: float) -> None:
        if self._last is not None and 0 <= t - self._last <= self.max_gap_s:
            self._last = t
            return
        self._close()
        self._start = self._last = t

    def take(self) -> list[tuple[float, float]]:
        """Intervals analysed since the last call (the current run up to its newest frame)."""
        self._close()
        out, self._closed = self._closed, []
        self._start = self._last
        return out

    def _close(self) -> None:
        if self._start is not None and self._last is not None and self._last > self._start:
            self._closed.append((self._start, self._last))
        self._start = None


MAX_HELD = 100_000   # crossing events (and coverage spans) kept in memory while the store fails


class Recorder:
    """Thread-safe hand-over of events and coverage from the worker to the loop's flusher."""

    def __init__(self, max_gap_s: float):
        self._lock = threading.Lock()
        self._events: list[CrossingEvent] = []
        self._coverage = Coverage(max_gap_s)
        self._retry_coverage: list[tuple[float, float]] = []

    def add(self, events: list[CrossingEvent], analysed_at: float | None) -> None:
        """Events, and the wall time of the frame analysed (None: no frame, e.g. a file's end)."""
        with self._lock:
            self._events.extend(events)
            if analysed_at is not None:
                self._coverage.add(analysed_at)

    def give_back(self, events: list[CrossingEvent], coverage: list[tuple[float, float]]) -> None:
        """Return a batch the store could not take; it goes out first at the next drain. While the
        store stays broken (a full disk) memory must not grow without end: past MAX_HELD the
        oldest are dropped, and said so."""
        with self._lock:
            self._events[:0] = events
            self._retry_coverage[:0] = coverage
            dropped = len(self._events) - MAX_HELD
            if dropped > 0:
                del self._events[:dropped]
                log.error("the store has refused counts for a long time: dropped the %d oldest "
                          "crossing events held in memory (keeping the newest %d)", dropped, MAX_HELD)
            del self._retry_coverage[:-MAX_HELD]

    def drain(self) -> tuple[list[CrossingEvent], list[tuple[float, float]]]:
        with self._lock:
            events, self._events = self._events, []
            coverage, self._retry_coverage = self._retry_coverage + self._coverage.take(), []
            return events, coverage


class InferenceWorker:
    def __init__(self, camera: Camera, pipeline: Pipeline, metrics: Metrics,
                 recorder: Recorder, *, wall_clock: Callable[[], float] = time.time,
                 live_view: LiveView | None = None):
        self.camera = camera
        self.pipeline = pipeline
        self.metrics = metrics
        self.recorder = recorder
        self.live_view = live_view
        self._wall = wall_clock
        self._stop = threading.Event()
        self._pending: Config | None = None
        self._pending_lock = threading.Condition()   # a reload from the loop must not land unseen
        self._thread = threading.Thread(target=self._run, name="counterd-inference", daemon=True)
        self.heartbeat = time.monotonic()   # refreshed every loop turn: the systemd watchdog reads it
        self.frames_processed = 0
        self.last_error: str | None = None
        self._error_logged_at = float("-inf")
        self._seen = {"read": 0, "dropped": 0, "reconnects": 0}
        self._seen_lock = threading.Lock()  # the worker and a /metrics scrape both sync the counters
        self._checked_size: tuple[int, int] | None = None
        self._offset = 0.0                  # wall time minus stream time of the last frame (files)
        self.finished = threading.Event()   # set once a file source has played out and been settled

    # --- control, from the event loop

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the thread to finish its frame and exit; True if it did within timeout."""
        self._stop.set()
        self.camera.stop()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def healthy(self, stale_after_s: float) -> bool:
        """The thread is alive and turned round recently: frames flow, or it is waiting in its
        reconnect loop (which also turns round every half second)."""
        return self.alive and time.monotonic() - self.heartbeat < stale_after_s

    def reconfigure(self, config: Config) -> None:
        """Apply new lines and thresholds before the next frame (never mid-frame)."""
        with self._pending_lock:
            self._pending = config

    def wait_applied(self, timeout: float) -> bool:
        """Block until the thread has applied the last reconfigure() (True), or timeout."""
        with self._pending_lock:
            return self._pending_lock.wait_for(lambda: self._pending is None, timeout)

    # --- the thread

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.heartbeat = time.monotonic()
                self._apply_pending()
                frame = self.camera.next_frame(timeout=POLL_S)
                self.sync_camera_metrics()
                if frame is not None:
                    self._process(frame)
                elif self.camera.state is LinkState.FINISHED and not self.finished.is_set():
                    self._finish()
        finally:
            self.camera.close()
            self.sync_camera_metrics()

    def _apply_pending(self) -> None:
        with self._pending_lock:
            config = self._pending
        if config is not None:
            self.pipeline.reconfigure(config)
            self._checked_size = None
            with self._pending_lock:
                if self._pending is config:        # not replaced meanwhile: that one comes next turn
                    self._pending = None
                self._pending_lock.notify_all()
            log.info("reloaded %s: %d line(s)", config.path, len(config.lines))

    def _check_frame_size(self, frame: Frame) -> None:
        """Lines that leave the picture never count: say so once per frame size."""
        h, w = frame.image.shape[:2]
        if (w, h) != self._checked_size:
            self._checked_size = (w, h)
            try:
                self.pipeline.config.check_frame_size(w, h)
            except UserError as exc:
                log.error("%s (the camera sends %dx%d)", exc, w, h)

    @property
    def counting(self) -> bool:
        """counting.enabled (Counter.Enabled): off, frames are read and dropped undetected."""
        return self.pipeline.config.counting.enabled

    def _process(self, frame: Frame) -> None:
        if not self.counting:       # no detection, no events, no coverage: nothing to store
            return
        self._check_frame_size(frame)
        # Live frames carry wall-clock time already; a file's stream position is mapped to now.
        live = self.camera.source is None or self.camera.source.live
        wall = frame.timestamp if live else self._wall()
        try:
            events = self.pipeline.step(frame)     # the pipeline's schedule decides what is detected
            if self.pipeline.times.fresh:          # detected, not rested nor held for a mosaic
                for stage in STAGES:
                    self.metrics.stage_seconds.labels(stage).observe(self.pipeline.times.last[stage])
            elif self.pipeline.last_decision is Decision.STATIC:
                self.metrics.frames_skipped.inc()
            elif self.pipeline.last_decision is Decision.STRIDE:
                self.metrics.frames_strided.inc()
        except Exception as exc:      # a bug or a bad frame: keep counting the next ones
            self._log_error(exc)
            return
        self._offset = wall - frame.timestamp
        self.recorder.add(self._to_wall(events), wall)
        if self.live_view is not None:      # references only: the console encodes on request
            self.live_view.update(frame.image, self.pipeline.last_tracks, wall)
        if live:
            self.metrics.frame_latency.observe(max(0.0, self._wall() - frame.timestamp))
        self.frames_processed += 1
        self.metrics.frames_processed.inc()

    def _to_wall(self, events: list[CrossingEvent]) -> list[CrossingEvent]:
        if not self._offset:
            return events
        return [dataclasses.replace(e, timestamp=e.timestamp + self._offset) for e in events]

    def _finish(self) -> None:
        """A file played to its end: settle the tracks left inside a line's band, as `counterd
        process` does, so both count a recording the same."""
        try:
            events = self.pipeline.finish()
        except Exception as exc:
            self._log_error(exc)
            events = []
        self.recorder.add(self._to_wall(events), None)
        self.finished.set()

    def _log_error(self, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        if message != self.last_error or now - self._error_logged_at >= ERROR_LOG_EVERY_S:
            log.exception("analysing a frame failed (logged at most once a minute): %s", message)
            self._error_logged_at = now
        self.last_error = message

    def sync_camera_metrics(self) -> None:
        """Bring the camera's counters on /metrics up to date. The worker does so every turn and
        a scrape does too (http.py): the reader thread counts frames while the worker may be inside
        a long inference, and a scrape should show every frame read until then."""
        camera, m = self.camera, self.metrics
        with self._seen_lock:
            for key, value, counter in (("read", camera.frames_read, m.frames_read),
                                        ("dropped", camera.dropped, m.frames_dropped),
                                        ("reconnects", camera.reconnects, m.reconnects)):
                if value > self._seen[key]:
                    counter.inc(value - self._seen[key])
                    self._seen[key] = value
            m.stream_up.set(1 if camera.state is LinkState.UP else 0)
