"""Logging for the daemon: journald-friendly lines on stderr, and a rotating file.

Under systemd ($JOURNAL_STREAM set) stderr lines carry an sd-daemon priority prefix (<3> error,
<4> warning, <6> info, <7> debug) and no timestamp, since journald adds its own. The file gets
full lines, `2026-01-31T12:00:00+0000 WARNING counterd.camera: ...`, which `counterd show-logs`
and `generate-logs` read from `daemon.log_file` (default <state_dir>/counterd.log).
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path

from aiohttp.http_exceptions import HttpProcessingError

from counterd.errors import UserError

FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FILE_DATEFMT = "%Y-%m-%dT%H:%M:%S%z"
_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        # One journal entry per line: continuation lines (tracebacks) keep the priority.
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def setup_logging(log_file: str | None, *, verbose: bool = False, max_bytes: int = 5_000_000,
                  backups: int = 3) -> list[logging.Handler]:
    """Replace the root handlers with stderr (+ the rotating file); returns the handlers added."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if os.environ.get("JOURNAL_STREAM"):
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(logging.Formatter(FILE_FORMAT, FILE_DATEFMT))
    handlers: list[logging.Handler] = [stderr]
    if log_file:
        try:
            Path(log_file).parent.mkdir(parents=True, exist_ok=True)
            rotating = logging.handlers.RotatingFileHandler(log_file, maxBytes=max_bytes, backupCount=backups,
                                                            encoding="utf-8")
        except OSError as exc:
            raise UserError(f"log file {log_file}: cannot write: {exc.strerror or exc} "
                            f"(set daemon.log_file or daemon.state_dir)") from None
        rotating.setFormatter(logging.Formatter(FILE_FORMAT, FILE_DATEFMT))
        handlers.append(rotating)
    limit = RateLimit()
    for handler in handlers:
        handler.addFilter(limit)
        root.addHandler(handler)
    server = logging.getLogger("aiohttp.server")
    for old in [f for f in server.filters if isinstance(f, ClientErrorsAtDebug)]:
        server.removeFilter(old)
    server.addFilter(ClientErrorsAtDebug())
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # aiohttp's access log is one line per request: noise in a year-long journal.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return handlers


class ClientErrorsAtDebug(logging.Filter):
    """A malformed request is the client's mistake, not a server error: aiohttp logs each one as
    ERROR with a traceback, which one client can use to replace the whole log in a minute."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError) or record.levelno < logging.ERROR:
            return True
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.msg, record.exc_info, record.exc_text = f"{record.msg}: {exc}", None, None
        return True


class RateLimit(logging.Filter):
    """At most BURST lines of one message template a minute; what is held back is counted and
    said on the first line of that template in the next minute. One instance serves every
    handler: its decision is kept on the record, so the second handler does not count it again."""
    BURST = 20
    WINDOW_S = 60.0

    def __init__(self, clock=time.monotonic):
        super().__init__()
        self.clock = clock
        self._windows: dict[tuple[str, str], list] = {}    # key -> [window start, lines, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        allowed = getattr(record, "counterd_rate_limited", None)
        if allowed is None:
            allowed = record.counterd_rate_limited = self._decide(record)
        return allowed

    def _decide(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self.clock()
        window = self._windows.get(key)
        if window is None or now - window[0] >= self.WINDOW_S:
            held = window[2] if window else 0
            window = self._windows[key] = [now, 0, 0]
            if len(self._windows) > 10_000:            # templates are few; a flood of distinct ones is not
                self._windows = {key: window}
            if held:
                record.msg = f"{record.msg} [{held} more like this in the last minute were not logged]"
        window[1] += 1
        if window[1] > self.BURST:
            window[2] += 1
            return False
        return True
