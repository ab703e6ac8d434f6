"""Video source: files in order without drops, live sources through a short queue of the newest
frames with drop counts, one-line errors for sources that cannot be opened."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from counterd.source import (EndOfStream, SourceError, VideoSource, open_source, redact,
                             source_kind)
from conftest import PETS_VIDEO, need_shared


class ScriptedCapture:
    """A fake cv2.VideoCapture: yields `n` frames whose pixel value is their number, then fails.
    `gate` (an Event), when given, holds each read until set, like a camera waiting for its next frame."""

    def __init__(self, n: int, fps: float = 10.0, pos_msec: bool = True, gate: threading.Event | None = None):
        self.n, self.fps, self.pos_msec, self.gate = n, fps, pos_msec, gate
        self.i = 0
        self.released = threading.Event()

    def read(self):
        if self.gate is not None:
            self.gate.wait()
        if self.i >= self.n:
            return False, None
        self.i += 1
        return True, np.full((4, 6, 3), self.i - 1, np.uint8)

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_WIDTH: 6, cv2.CAP_PROP_FRAME_HEIGHT: 4,
                cv2.CAP_PROP_POS_MSEC: 1000.0 * (self.i - 1) / self.fps if self.pos_msec else 0.0}.get(prop, 0.0)

    def release(self):
        self.released.set()


def test_file_frames_all_arrive_in_order_with_positions():
    cap = ScriptedCapture(50)
    with VideoSource(lambda: cap, name="fake.avi", live=False) as source:
        assert (source.fps, source.width, source.height) == (10.0, 6, 4)
        frames = []
        for frame in source:
            time.sleep(0.001)   # a slow consumer: a file reader must wait, never drop
            frames.append(frame)
    assert [int(f.image[0, 0, 0]) for f in frames] == list(range(50))
    assert [f.index for f in frames] == list(range(50))
    assert frames[10].timestamp == pytest.approx(1.0)
    assert source.dropped == 0
    assert cap.released.wait(2)


def test_file_without_positions_falls_back_to_index_over_fps():
    with VideoSource(lambda: ScriptedCapture(5, fps=4.0, pos_msec=False), name="f", live=False) as source:
        stamps = [f.timestamp for f in source]
    assert stamps == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])


def test_looped_file_reopens_and_time_keeps_increasing():
    opened = []

    def factory():
        opened.append(ScriptedCapture(3, fps=10.0))
        return opened[-1]

    with VideoSource(factory, name="f", live=False, loop=True) as source:
        frames = [source.read(timeout=2) for _ in range(8)]
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 1, 2, 0, 1, 2, 0, 1]
    assert [f.index for f in frames] == list(range(8))
    stamps = [f.timestamp for f in frames]
    assert stamps == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    assert len(opened) >= 3


def wait_until_read_out(source: VideoSource) -> None:
    """The scripted camera has delivered all its frames (its reader thread has ended)."""
    deadline = time.monotonic() + 5
    while source.alive and time.monotonic() < deadline:
        time.sleep(0.005)


def test_live_source_keeps_the_newest_frames_and_counts_drops():
    gate = threading.Event()
    cap = ScriptedCapture(100, gate=gate)
    source = VideoSource(lambda: cap, name="cam", live=True, clock=lambda: 1234.5, live_frames=8)
    try:
        gate.set()                     # the camera delivers 100 frames while nobody reads
        wait_until_read_out(source)
        frames = [source.read(timeout=1) for _ in range(8)]
        assert [int(f.image[0, 0, 0]) for f in frames] == list(range(92, 100))   # the newest 8, in order
        assert [f.index for f in frames] == list(range(92, 100))
        assert frames[0].timestamp == 1234.5          # wall clock for live sources
        assert source.dropped == 92 and source.frames_read == 100
        with pytest.raises(EndOfStream):
            source.read(timeout=1)
        assert "stopped sending" in source.end_reason
    finally:
        source.close()


def test_live_source_with_one_frame_gives_the_newest():
    gate = threading.Event()
    source = VideoSource(lambda: ScriptedCapture(100, gate=gate), name="cam", live=True, live_frames=1)
    try:
        gate.set()
        wait_until_read_out(source)
        frame = source.read(timeout=1)
        assert int(frame.image[0, 0, 0]) == 99
        assert source.dropped == 99
    finally:
        source.close()


def test_a_consumer_held_up_shorter_than_the_queue_loses_no_live_frame():
    """The fix for live drops (bench/RESULTS.md "Live headroom"): a worker that misses a few frame
    intervals (its core taken by another process) gets every frame afterwards, in order."""
    gate = threading.Event()
    source = VideoSource(lambda: ScriptedCapture(5, gate=gate), name="cam", live=True)   # default queue
    try:
        gate.set()                     # five frames arrive while the consumer is held up
        wait_until_read_out(source)
        frames = [source.read(timeout=1) for _ in range(5)]
        assert [f.index for f in frames] == [0, 1, 2, 3, 4]
        assert source.dropped == 0
    finally:
        source.close()


def test_read_times_out_when_no_frame_comes():
    gate = threading.Event()       # never set: a camera that sends nothing
    source = VideoSource(lambda: ScriptedCapture(10, gate=gate), name="cam", live=True)
    try:
        t0 = time.monotonic()
        # None at all proves the timeout was honoured (this camera never sends: a read without
        # one blocks for good); how long past 0.1 s it took is the loaded box's business.
        assert source.read(timeout=0.1) is None
        assert time.monotonic() - t0 >= 0.1
    finally:
        source.close(join_timeout=0.1)
        gate.set()                 # lets the blocked reader finish and release its capture
    source._thread.join(2)
    assert not source.alive


def test_close_stops_a_file_reader_waiting_on_a_full_buffer():
    cap = ScriptedCapture(10_000)
    source = VideoSource(lambda: cap, name="f", live=False)
    source.read(timeout=1)
    source.close()
    assert not source.alive and cap.released.is_set()
    with pytest.raises(EndOfStream):
        source.read(timeout=0.1)


def test_missing_file_is_one_line_naming_it(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match=r"nope\.mp4: no such file") as err:
        open_source(str(missing))
    assert "\n" not in str(err.value)


def test_not_a_video_is_one_line_naming_it(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_text("this is not a video")
    with pytest.raises(SourceError, match=r"junk\.mp4: cannot be decoded"):
        open_source(str(junk))


def test_empty_source_is_an_error():
    with pytest.raises(SourceError, match="no video source"):
        open_source("")


def test_unreachable_rtsp_fails_fast_with_the_password_hidden():
    # Nothing listens on port 1: the open fails at once (spec: "open, nothing listening: immediate"),
    # not after its timeout; the timeout is long so that a loaded box cannot blur the two.
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"rtsp://admin:\*\*\*@127\.0\.0\.1:1/x: cannot be opened"):
        open_source("rtsp://admin:hunter2@127.0.0.1:1/x", open_timeout_s=60, read_timeout_s=60)
    assert time.monotonic() - t0 < 30


def test_source_kinds_and_redaction():
    assert source_kind("rtsp://cam/1") == "rtsp"
    assert source_kind("0") == "usb" and source_kind("/dev/video2") == "usb"
    assert source_kind("clip.mp4") == "file"
    assert redact("rtsp://u:p@h:554/s") == "rtsp://u:***@h:554/s"
    assert redact("rtsp://h/s") == "rtsp://h/s"


def test_written_file_round_trips(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (32, 24))
    for i in range(12):
        writer.write(np.full((24, 32, 3), i * 20, np.uint8))
    writer.release()
    with open_source(str(path)) as source:
        frames = list(source)
    assert len(frames) == 12 and frames[0].image.shape == (24, 32, 3)
    assert [f.timestamp for f in frames] == pytest.approx([i / 5 for i in range(12)])
    assert abs(int(frames[11].image.mean()) - 220) < 10


def test_pets_clip_positions_start_at_zero():
    with open_source(str(need_shared(PETS_VIDEO))) as source:
        frames = list(source)
    assert len(frames) == 795
    assert frames[0].timestamp == 0.0
    assert frames[-1].timestamp == pytest.approx(794 / 10)


def test_live_frame_after_a_read_timeout_is_stale_and_skipped():
    """FFmpeg's read timeout on a frozen stream returns the last frame again; it must not count as new."""
    delays = iter([0.0, 0.3, 0.0])       # the second read blocks past the 0.2 s stale limit

    class SlowCapture(ScriptedCapture):
        def read(self):
            time.sleep(next(delays, 0.0))
            return super().read()

    source = VideoSource(lambda: SlowCapture(3), name="cam", live=True, stale_read_s=0.2)
    try:
        frames = []
        while True:
            try:
                frame = source.read(timeout=2)
            except EndOfStream:
                break
            frames.append(int(frame.image[0, 0, 0]))
    finally:
        source.close()
    assert 1 not in frames and frames[-1] == 2
    assert source.stale == 1


def test_absent_usb_camera_is_one_line_naming_it():
    # No /dev/video* here (nor on most CI machines): index 9 and a device path are both absent.
    for spec in ("9", "/dev/video9"):
        with pytest.raises(SourceError, match=rf"USB camera {spec}: cannot be opened"):
            open_source(spec)
