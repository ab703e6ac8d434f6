"""Reconnect/backoff/watchdog state machine, driven by scripted sources and a fake clock."""
from __future__ import annotations

import logging
import random

import numpy as np
import pytest

from counterd.config import SourceConfig
from counterd.backoff import Backoff
from counterd.daemon.camera import Camera, LinkState
from counterd.source import EndOfStream, Frame, SourceError


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


class ScriptedSource:
    """Steps: ("frame", seconds until it arrives) | ("silent",) (read times out) | ("end",)."""

    def __init__(self, clock: FakeClock, steps, live=True):
        self.clock, self.steps, self.live = clock, list(steps), live
        self.width, self.height, self.fps = 64, 48, 10.0
        self.frames_read = self.dropped = 0
        self.end_reason = None
        self.closed = False

    def read(self, timeout=None):
        step = self.steps[0] if self.steps else ("end",)
        if step[0] == "frame" and step[1] <= timeout:
            self.steps.pop(0)
            self.clock.advance(step[1])
            self.frames_read += 1
            self.dropped += 2
            return Frame(np.zeros((48, 64, 3), np.uint8), self.clock(), self.frames_read - 1)
        if step[0] == "end":
            self.end_reason = "stream ended: the camera stopped sending frames"
            raise EndOfStream(self.end_reason)
        if step[0] == "frame":
            step_left = step[1] - timeout
            self.steps[0] = ("frame", step_left)
        self.clock.advance(timeout)
        return None

    def close(self, join_timeout=1.0):
        self.closed = True


class ScriptedOpener:
    """Each call returns the next scripted source, or raises when the script says "refuse"."""

    def __init__(self, clock, script):
        self.clock, self.script, self.calls = clock, list(script), []

    def __call__(self):
        self.calls.append(self.clock())
        item = self.script.pop(0) if self.script else "refuse"
        if item == "refuse":
            raise SourceError("stream rtsp://cam/1: cannot be opened (unreachable)")
        return item


class Longest:
    """An rng whose draw is always the top of the range: each backoff wait is its ceiling, so
    the attempt times below are exact."""

    def uniform(self, low: float, high: float) -> float:
        return high


def make_camera(clock, script, **cfg):
    cfg = SourceConfig(**{"watchdog_s": 5.0, "backoff_base_s": 1.0, "backoff_cap_s": 8.0, **cfg})
    opener = ScriptedOpener(clock, script)
    states = []
    camera = Camera("cam", opener, cfg, clock=clock, wait=clock.advance, rng=Longest(),
                    on_state=lambda state, reason: states.append((clock(), state, reason)))
    return camera, opener, states


def pull(camera, clock, until: float, step: float = 0.5) -> list[Frame]:
    frames = []
    while clock() < until:
        frame = camera.next_frame(timeout=step)
        if frame is not None:
            frames.append(frame)
    return frames


def test_backoff_doubles_to_its_cap_with_jitter_in_the_upper_half():
    backoff = Backoff(0.5, 3.0, Longest())
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5
    jittered = Backoff(1.0, 8.0, random.Random(7))
    ceilings = [1.0, 2.0, 4.0, 8.0] + [8.0] * 20
    delays = [jittered.next_delay() for _ in ceilings]
    assert all(c / 2 <= d <= c for c, d in zip(ceilings, delays))
    assert len({round(d, 6) for d in delays[4:]}) > 10        # at the cap, waits still spread out


def test_unreachable_camera_retries_with_backoff_forever_and_logs_once(caplog):
    clock = FakeClock()
    camera, opener, states = make_camera(clock, ["refuse"] * 50)
    with caplog.at_level(logging.INFO, logger="counterd.camera"):
        assert pull(camera, clock, until=100.0) == []
    # attempts at 0, +1, +2, +4, +8, then every 8 s (the cap), never giving up
    assert opener.calls[:6] == [0.0, 1.0, 3.0, 7.0, 15.0, 23.0]
    assert opener.calls[-1] >= 90.0
    assert [s for _, s, _ in states] == [LinkState.DOWN]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "cannot connect" in warnings[0].getMessage()


def test_reconnects_after_the_stream_ends_and_backoff_resets_once_frames_flow(caplog):
    clock = FakeClock()
    first = ScriptedSource(clock, [("frame", 0.1)] * 3 + [("end",)])
    second = ScriptedSource(clock, [("frame", 0.1)] * 2 + [("end",)])
    third = ScriptedSource(clock, [("frame", 0.1)] * 100)
    camera, opener, states = make_camera(clock, [first, "refuse", second, third])
    with caplog.at_level(logging.INFO, logger="counterd.camera"):
        frames = pull(camera, clock, until=6.0)
    assert first.closed and second.closed
    # lost at 0.3 -> retry at 1.3 (refused) -> 3.3 opens `second`; lost at 3.5 -> retry after
    # the base delay again (1 s), because `second` delivered frames and reset the backoff.
    assert opener.calls == pytest.approx([0.0, 1.3, 3.3, 4.5])
    assert [s for _, s, _ in states] == [LinkState.UP, LinkState.DOWN, LinkState.UP, LinkState.DOWN,
                                        LinkState.UP]
    assert "stopped sending" in states[1][2]
    assert len(frames) >= 3 + 2 + 10
    assert camera.reconnects == 2
    # counters carry across connections
    assert camera.frames_read == len(frames) and camera.dropped == 2 * len(frames)
    assert sum("streaming" in r.getMessage() for r in caplog.records) == 3


def test_watchdog_fires_when_frames_stop_without_an_error():
    clock = FakeClock()
    frozen = ScriptedSource(clock, [("frame", 0.2)] * 5 + [("silent",)] * 1000)
    camera, opener, states = make_camera(clock, [frozen, ScriptedSource(clock, [("frame", 0.2)] * 100)])
    frames = pull(camera, clock, until=12.0)
    down_at, state, reason = states[1]
    assert state is LinkState.DOWN and reason == "no new frame for 5 s"
    assert down_at == pytest.approx(1.0 + 5.0)        # last frame at 1.0 s, watchdog 5 s
    assert frozen.closed
    assert opener.calls == pytest.approx([0.0, 7.0])  # base delay 1 s after detection
    assert states[2][1] is LinkState.UP and frames[-1].timestamp > 7.0


def test_camera_that_connects_but_never_sends_is_down_after_the_watchdog():
    clock = FakeClock()
    camera, opener, states = make_camera(clock, [ScriptedSource(clock, [("silent",)] * 100)])
    pull(camera, clock, until=6.0)
    assert states[0][1] is LinkState.DOWN and states[0][0] == pytest.approx(5.0)


def test_file_without_loop_finishes_instead_of_replaying():
    clock = FakeClock()
    clip = ScriptedSource(clock, [("frame", 0.0)] * 4 + [("end",)], live=False)
    camera, opener, states = make_camera(clock, [clip, clip])
    frames = pull(camera, clock, until=30.0)
    assert len(frames) == 4 and len(opener.calls) == 1
    assert camera.state is LinkState.FINISHED


def test_stop_returns_promptly():
    clock = FakeClock()
    camera, opener, _ = make_camera(clock, ["refuse"] * 5)
    camera.stop()
    assert camera.next_frame(timeout=100) is None
    assert opener.calls == []
