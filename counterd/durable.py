"""Writes that survive a crash or a power cut: temp file, fsync, rename, fsync of the directory,
so a reader finds either the old file or the new one. Used by the upload outbox, the console's
lines editor and `counterd snapshot`; blocking, so call it off the event loop."""
from __future__ import annotations

import os
from pathlib import Path


def temp_path(path: Path) -> Path:
    """Where write_atomically writes before the rename: beside the file, so the rename is atomic."""
    return path.with_name(f".{path.name}.tmp")


def write_atomically(path: Path, data: bytes) -> None:
    tmp = temp_path(path)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in the directory itself durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
