"""Video sources: files, RTSP URLs and USB cameras, read in a worker thread.

A `VideoSource` owns one OpenCV capture and one reader thread, and yields `Frame`s:
- files: every frame, in order, through a bounded buffer (the reader waits; nothing is dropped),
  timestamped with the stream position; `loop=True` reopens the file at its end;
- live sources: a short queue of the newest frames (`live_frames`, oldest dropped first when it is
  full), so a consumer held up for a moment (the core taken by another process, a slow frame)
  catches up instead of losing frames, while one that stays slower than the camera drops frames
  rather than falling further behind; frames the consumer never took are counted in `dropped`;
  timestamped with the wall clock.

The capture is built by an injected factory, so the daemon's reconnect and watchdog logic (which
builds a new VideoSource per connection) is testable with a scripted fake capture and a fake clock.
Facts this design rests on (../shared/spec/camera-streams.md): a blocked `read()` cannot be
interrupted, so reading happens in its own thread; once `read()` has failed the capture never
recovers; RTSP timeouts only take effect when passed to the constructor.
"""
from __future__ import annotations

import collections
import logging
import math
import os
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

import cv2
import numpy as np

from counterd.config.fields import redact_url
from counterd.sourcespec import SourceError, check_video_file, is_live, source_kind  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

# FFmpeg and OpenCV print their own lines for every failed open and stalled read, which would
# repeat on every reconnect attempt; counterd logs each change of a camera's state once instead.
# Either can be turned back on from the environment (OPENCV_FFMPEG_LOGLEVEL, OPENCV_LOG_LEVEL).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")    # AV_LOG_QUIET, read at FFmpeg's first use
if "OPENCV_LOG_LEVEL" not in os.environ:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

FALLBACK_FPS = 25.0        # when a container does not say (timestamps of files only)
FILE_BUFFER_FRAMES = 8     # decoded frames a file reader may run ahead of its consumer
# Decoded frames a live source holds for a consumer that fell behind (source.live_frames): 8 is
# 320 ms at 25 fps, above the longest stall measured on a shared core (188 ms, bench/RESULTS.md
# "Live headroom"); at most 8 pictures (50 MB at 1080p) and only while behind.
LIVE_BUFFER_FRAMES = 8


@dataclass(frozen=True, slots=True)
class Frame:
    image: np.ndarray      # BGR, HxWx3 uint8
    timestamp: float       # seconds: stream position for files, Unix time for live sources
    index: int             # 0, 1, 2, ... in the order read (keeps counting across file loops)


class EndOfStream(Exception):
    """The source has no more frames (end of a file, or a live stream that failed)."""


class Capture(Protocol):
    """The part of cv2.VideoCapture a VideoSource uses (fakes in tests implement just this)."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def get(self, prop: int) -> float: ...
    def release(self) -> None: ...


CaptureFactory = Callable[[], Capture]


# ---------------------------------------------------------------------------------------------
# How to build a source's capture (what its string means: counterd/sourcespec.py)

def redact(spec: str) -> str:
    """The source as it may appear in logs: rtsp://user:secret@host -> rtsp://user:***@host."""
    return redact_url(spec)


_env_lock = threading.Lock()
_readers: weakref.WeakSet[threading.Thread] = weakref.WeakSet()   # every reader thread still running


def wait_for_readers(timeout: float) -> bool:
    """Join reader threads left behind by close() (blocked in a frozen stream's read()); True
    when none is left. A process must not exit with one inside OpenCV: when it returns into a
    finalizing interpreter the thread is unwound through C++ and the process aborts."""
    deadline = time.monotonic() + timeout
    for thread in list(_readers):
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in list(_readers))


def open_capture(spec: str, *, open_timeout_s: float = 5.0, read_timeout_s: float = 5.0,
                 rtsp_transport: str = "tcp") -> Capture:
    """Build and open an OpenCV capture for a source string, or raise SourceError naming it."""
    kind = source_kind(spec)
    if kind == "file":
        path = check_video_file(spec)
        cap = cv2.VideoCapture(str(path))
        what = f"video file {spec}: cannot be decoded (not a video, or an unsupported codec)"
    elif kind == "usb":
        target = int(spec) if spec.isdigit() else spec
        cap = cv2.VideoCapture(target)
        what = f"USB camera {spec}: cannot be opened (absent, busy, or no permission on the device)"
    else:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout_s * 1000)]
        with _env_lock:
            # FFmpeg reads its options from the environment at each open. Setting them without
            # rtsp_transport would silently switch RTSP to UDP, so the transport is always named.
            before = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")
            kept = [o for o in (before or "").split("|") if o and not o.startswith("rtsp_transport;")]
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "|".join([f"rtsp_transport;{rtsp_transport}"] + kept)
            try:
                cap = cv2.VideoCapture(spec, cv2.CAP_FFMPEG, params)
            finally:
                if before is None:
                    os.environ.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
                else:
                    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = before
        what = f"stream {redact(spec)}: cannot be opened (unreachable, wrong path, or no answer " \
               f"within {open_timeout_s:g} s)"
    if not cap.isOpened():
        cap.release()
        raise SourceError(what)
    return cap


# ---------------------------------------------------------------------------------------------
# The reader


class VideoSource:
    """Frames from one capture, read in a worker thread. Iterate it, or call read(timeout)."""

    def __init__(self, open_capture: CaptureFactory, *, name: str, live: bool, loop: bool = False,
                 clock: Callable[[], float] = time.time, buffer_frames: int = FILE_BUFFER_FRAMES,
                 live_frames: int = LIVE_BUFFER_FRAMES, observe_read: Callable[[float], None] | None = None,
                 stale_read_s: float | None = None):
        self.name = name
        # When FFmpeg's read timeout fires on a frozen stream, read() hands back the last decoded
        # frame again instead of failing. A live read that blocked this long is such a stale frame.
        self._stale_read_s = stale_read_s if live else None
        self.stale = 0
        self._observe_read = observe_read   # seconds per read(): decode, plus the wait for live frames
        self.live = live
        self.loop = loop and not live
        self._open = open_capture
        self._clock = clock
        self._capture = open_capture()          # SourceError propagates to the caller
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if math.isfinite(fps) and 0 < fps <= 1000 else None
        count = self._capture.get(cv2.CAP_PROP_FRAME_COUNT) if not live else 0
        self.frame_count = int(count) if math.isfinite(count) and count > 0 else None   # files only
        self.width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)) or None
        self.height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) or None
        self.frames_read = 0
        self.dropped = 0
        self.end_reason: str | None = None       # set when the reader stops: why
        self._buffer: collections.deque[Frame] = collections.deque()
        self._capacity = max(1, live_frames) if live else buffer_frames
        self._cond = threading.Condition()
        self._stopping = False
        self._done = False
        self._thread = threading.Thread(target=self._run, name="counterd-capture", daemon=True)
        _readers.add(self._thread)
        self._thread.start()

    # --- consumer side

    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame (live: the oldest still queued), None if none came within timeout.

        Raises EndOfStream once the source is exhausted or failed (see end_reason)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._buffer:
                if self._done or self._stopping:
                    raise EndOfStream(self.end_reason or "closed")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            frame = self._buffer.popleft()
            self._cond.notify_all()
            return frame

    def __iter__(self) -> Iterator[Frame]:
        while True:
            try:
                yield self.read()
            except EndOfStream:
                return

    @property
    def alive(self) -> bool:
        """False once the reader has stopped (end, failure or close)."""
        return self._thread.is_alive()

    def close(self, join_timeout: float = 1.0) -> None:
        """Stop reading. A reader blocked inside read() cannot be interrupted: it is left to finish
        on its own (the capture's read timeout bounds that) and releases its capture then."""
        with self._cond:
            self._stopping = True
            self._buffer.clear()
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(join_timeout)

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- reader thread

    def _run(self) -> None:
        capture = self._capture
        loop_offset = 0.0          # file time already played by earlier loops
        pass_start = None          # container position of this pass's first frame
        last_ts = -1.0
        reason = "end of file" if not self.live else "stream ended"
        try:
            while not self._stopping:
                started = time.perf_counter()
                ok, image = capture.read()
                took = time.perf_counter() - started
                if ok and self._stale_read_s is not None and took >= self._stale_read_s:
                    self.stale += 1
                    continue
                if ok and self._observe_read is not None:
                    self._observe_read(took)
                if not ok or image is None:
                    if self.loop and self.frames_read > 0 and not self._stopping:
                        capture.release()
                        capture = self._capture = self._open()
                        loop_offset = last_ts + 1.0 / (self.fps or FALLBACK_FPS)
                        pass_start = None
                        continue
                    if self.live:
                        reason = "stream ended: the camera stopped sending frames"
                    break
                if self.live:
                    timestamp = self._clock()
                else:
                    timestamp, pass_start = self._file_position(capture, pass_start, loop_offset, last_ts)
                last_ts = timestamp
                self._put(Frame(image, timestamp, self.frames_read))
                self.frames_read += 1
        except SourceError as exc:   # a looped file that vanished between loops
            reason = str(exc)
        except Exception as exc:     # a capture must not take the process down with it
            log.exception("reading %s failed", self.name)
            reason = f"read failed: {exc}"
        finally:
            capture.release()
            with self._cond:
                self.end_reason = reason
                self._done = True
                self._cond.notify_all()

    def _file_position(self, capture: Capture, pass_start: float | None, loop_offset: float,
                       last_ts: float) -> tuple[float, float | None]:
        """(seconds into the file, this pass's first container position). Positions count from the
        first frame (some containers start at a non-zero pts); index / fps stands in when the
        container gives no position or one that does not move forward."""
        pos = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if not math.isfinite(pos):
            pos = None
        if pass_start is None:
            pass_start = pos
        if pos is not None and pass_start is not None and loop_offset + pos - pass_start > last_ts:
            return loop_offset + pos - pass_start, pass_start
        if last_ts < loop_offset:       # the first frame of a pass
            return loop_offset, pass_start
        return last_ts + 1.0 / (self.fps or FALLBACK_FPS), pass_start

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self.live:
                while len(self._buffer) >= self._capacity:   # behind by a whole queue: drop the oldest
                    self._buffer.popleft()
                    self.dropped += 1
            else:
                while len(self._buffer) >= self._capacity and not self._stopping:
                    self._cond.wait()
            if not self._stopping:
                self._buffer.append(frame)
                self._cond.notify_all()


def open_source(spec: str, *, loop: bool = False, open_timeout_s: float = 5.0,
                read_timeout_s: float = 5.0, rtsp_transport: str = "tcp",
                live_frames: int = LIVE_BUFFER_FRAMES, capture_factory: CaptureFactory | None = None,
                clock: Callable[[], float] = time.time,
                observe_read: Callable[[float], None] | None = None) -> VideoSource:
    """Open a file path, rtsp:// URL, USB index ("0") or /dev/videoN; raises SourceError."""
    if not spec:
        raise SourceError("no video source given (camera.source is empty)")
    factory = capture_factory or (lambda: open_capture(
        spec, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s, rtsp_transport=rtsp_transport))
    return VideoSource(factory, name=redact(spec), live=is_live(spec), loop=loop, clock=clock,
                       live_frames=live_frames, observe_read=observe_read, stale_read_s=0.9 * read_timeout_s)
