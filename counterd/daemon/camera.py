"""A camera that never gives up: reconnect with exponential backoff, and a watchdog on
"no new frame for N seconds".

`Camera.next_frame(timeout)` is called in a loop by the inference worker. It owns at most one
VideoSource (one connection) at a time; when that connection fails, or delivers no new frame for
`watchdog_s` (a frozen stream first hands out stale buffered frames, then blocks in read() for
2-3x the read timeout), it is abandoned and a new one is opened after a backoff delay. Every state
change is logged once; the attempts in between are not.

The source opener and the clock are injected so the state machine is tested with scripted fakes.
"""
from __future__ import annotations

import enum
import logging
import random
import threading
import time
from typing import Callable, Protocol

from counterd.backoff import Backoff
from counterd.config import SourceConfig
from counterd.source import EndOfStream, Frame, SourceError

log = logging.getLogger("counterd.camera")


class LinkState(enum.Enum):
    CONNECTING = "connecting"   # before the first frame of the first connection
    UP = "up"                   # frames are flowing
    DOWN = "down"               # lost; reconnecting with backoff
    FINISHED = "finished"       # a file source (without loop) played to its end


class Source(Protocol):
    """What Camera needs of a VideoSource (tests script their own)."""
    live: bool
    width: int | None
    height: int | None
    fps: float | None
    frames_read: int
    dropped: int
    end_reason: str | None

    def read(self, timeout: float | None = None) -> Frame | None: ...
    def close(self, join_timeout: float = 1.0) -> None: ...


class Camera:
    def __init__(self, name: str, open_source: Callable[[], Source], cfg: SourceConfig, *,
                 clock: Callable[[], float] = time.monotonic,
                 wait: Callable[[float], object] | None = None,
                 on_state: Callable[[LinkState, str], None] | None = None,
                 rng: random.Random | None = None):
        self.name = name
        self._open = open_source
        self.cfg = cfg
        self._clock = clock
        self._on_state = on_state
        self._backoff = Backoff(cfg.backoff_base_s, cfg.backoff_cap_s, rng)   # reset once frames flow
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait     # tests pass one that advances a fake clock
        self.source: Source | None = None
        self.state = LinkState.CONNECTING
        self._state_changed = threading.Condition()
        self.reason = ""
        self.reconnects = 0             # connections opened after the first
        self.connections = 0
        self.last_frame_at: float | None = None   # clock() when the newest frame arrived
        self._retry_at = clock()
        # Frame counters of connections already closed, so totals survive reconnects.
        self._read_before = 0
        self._dropped_before = 0

    # --- what the worker and the metrics read

    @property
    def frames_read(self) -> int:
        return self._read_before + (self.source.frames_read if self.source else 0)

    @property
    def retry_at(self) -> float:
        """clock() when the next connection attempt is due (in the past once connected): never
        more than source.backoff_cap_s after the loss or failed attempt that set it."""
        return self._retry_at

    @property
    def dropped(self) -> int:
        return self._dropped_before + (self.source.dropped if self.source else 0)

    def stop(self) -> None:
        """Make next_frame return promptly (it may still be inside an open, bounded by its timeout)."""
        self._stop.set()

    def close(self) -> None:
        self.stop()
        self._drop_source()

    # --- the state machine

    def next_frame(self, timeout: float) -> Frame | None:
        """The next frame, or None if none arrived within `timeout` (or the camera is stopping).

        Never raises for camera trouble: failures become state changes and reconnects."""
        deadline = self._clock() + timeout
        while not self._stop.is_set():
            now = self._clock()
            if self.state is LinkState.FINISHED:
                self._wait(max(0.0, deadline - now))
                return None
            if now >= deadline:
                return None
            if self.source is None:
                if now < self._retry_at:
                    self._wait(min(self._retry_at, deadline) - now)
                    continue
                if not self._connect():
                    continue
            frame = self._read(deadline)
            if frame is not None:
                return frame
        return None

    def _connect(self) -> bool:
        try:
            self.source = self._open()
        except SourceError as exc:
            self._lost(str(exc))
            return False
        except Exception as exc:          # a bug in a backend must not end the reconnect loop
            if self.state is not LinkState.DOWN:   # the traceback once, not once per attempt
                log.exception("camera %s: opening the source failed unexpectedly", self.name)
            self._lost(f"open failed: {exc}")
            return False
        self.connections += 1
        if self.connections > 1:
            self.reconnects += 1
        # The watchdog starts from the open: a camera that connects but sends nothing is down.
        self.last_frame_at = self._clock()
        return True

    def _read(self, deadline: float) -> Frame | None:
        source = self.source
        watchdog_at = self.last_frame_at + self.cfg.watchdog_s
        try:
            frame = source.read(timeout=max(0.0, min(deadline, watchdog_at) - self._clock()))
        except EndOfStream:
            reason = source.end_reason or "stream ended"
            if not source.live and not self.cfg.loop:
                self._drop_source()
                self._set_state(LinkState.FINISHED, reason)
            else:
                self._lost(reason)
            return None
        now = self._clock()
        if frame is not None:
            self.last_frame_at = now
            if self.state is not LinkState.UP:
                self._backoff.reset()
                size = f"{source.width}x{source.height}" if source.width else "unknown size"
                fps = f" at {source.fps:g} fps" if source.fps else ""
                self._set_state(LinkState.UP, f"{size}{fps}")
            return frame
        if now >= watchdog_at:
            self._lost(f"no new frame for {self.cfg.watchdog_s:g} s")
        return None

    def _lost(self, reason: str) -> None:
        self._drop_source()
        delay = self._backoff.next_delay()
        self._retry_at = self._clock() + delay
        self._set_state(LinkState.DOWN, reason)
        log.debug("camera %s: next attempt in %.1f s (%s)", self.name, delay, reason)

    def _drop_source(self) -> None:
        source, self.source = self.source, None
        if source is not None:
            self._read_before += source.frames_read
            self._dropped_before += source.dropped
            # A reader stuck in a frozen read() is abandoned, not joined: it ends on its read timeout
            # and releases its capture then. Waiting here would only delay the reconnect.
            source.close(join_timeout=0)

    def wait_for_state(self, state: LinkState, timeout: float) -> bool:
        """Block until the link is in `state` (True) or timeout seconds pass (False)."""
        with self._state_changed:
            return self._state_changed.wait_for(lambda: self.state is state, timeout)

    def _set_state(self, state: LinkState, reason: str) -> None:
        if state is self.state:
            return
        with self._state_changed:
            previous, self.state, self.reason = self.state, state, reason
            self._state_changed.notify_all()
        if state is LinkState.UP:
            log.info("camera %s: streaming (%s)", self.name, reason)
        elif state is LinkState.DOWN:
            log.warning("camera %s: %s: %s; reconnecting (backoff %g-%g s)", self.name,
                        "cannot connect" if previous is LinkState.CONNECTING else "lost",
                        reason, self.cfg.backoff_base_s, self.cfg.backoff_cap_s)
        elif state is LinkState.FINISHED:
            log.info("camera %s: %s; no more frames (set source.loop = true to replay)", self.name, reason)
        if self._on_state is not None:
            self._on_state(state, reason)
