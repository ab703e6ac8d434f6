"""What a camera.source string means, without opening it: light (no OpenCV), so `counterd
check-config` can check a source without loading the capture stack. counterd/source.py builds
captures from it and re-exports these names."""
from __future__ import annotations

import os
import re
from pathlib import Path

from counterd.errors import UserError


class SourceError(UserError):
    """A video source cannot be opened or read; the message names it."""


def source_kind(spec: str) -> str:
    """'rtsp' | 'usb' | 'file' for a camera.source string."""
    if re.match(r"^(rtsps?|rtmp|https?)://", spec, re.IGNORECASE):
        return "rtsp"   # network streams share the FFmpeg path and its timeouts
    if spec.isdigit() or spec.startswith("/dev/video"):
        return "usb"
    return "file"


def check_video_file(spec: str) -> Path:
    """The path of a file source that exists and can be read; SourceError says what is wrong."""
    path = Path(spec).expanduser()
    if path.is_dir():
        raise SourceError(f"video file {spec}: is a directory; give one video file in it")
    if not path.is_file():
        raise SourceError(f"video file {spec}: no such file")
    if not os.access(path, os.R_OK):
        raise SourceError(f"video file {spec}: not readable (permission denied)")
    return path


def is_live(spec: str) -> bool:
    return source_kind(spec) != "file"
