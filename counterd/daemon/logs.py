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
from pathlib import Path

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
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # aiohttp's access log is one line per request: noise in a year-long journal.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return handlers
