"""Reading a small text file a person points counterd at (the config, a secret's file) so that a
wrong path fails at once with a clear reason instead of blocking or eating memory: a FIFO would
block the read for ever, /dev/zero or /dev/urandom would never end, a directory is not text."""
from __future__ import annotations

import os
import stat


class NotATextFile(OSError):
    """The path exists but is not a regular file of at most `limit` bytes; str() says which."""


def read_small_text(path: str | os.PathLike, limit: int) -> str:
    """The file's UTF-8 text. Raises FileNotFoundError / other OSError as open() does,
    NotATextFile for a FIFO, socket, device, directory or a file over `limit` bytes, and
    UnicodeDecodeError for bytes that are not UTF-8."""
    # O_NONBLOCK: opening a FIFO for reading blocks until a writer appears; with it open()
    # returns at once and fstat tells us what we got. It does not affect a regular file's reads.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotATextFile(f"{os.fspath(path)} is not a regular file ({_kind(mode)})")
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)     # st_size may be stale or wrong (procfs): read at most limit + 1
    if len(data) > limit:
        raise NotATextFile(f"{os.fspath(path)} is larger than {limit} bytes")
    return data.decode("utf-8")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a plain file"
