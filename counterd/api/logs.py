"""show-logs and generate-logs: the daemon's rotating log file, and a support bundle.

Axis log lines carry `<LEVEL>` tokens that clients scan for (`<CRITICAL>`); the daemon's file has
`2026-01-31T12:00:00+0000 WARNING counterd.camera: ...`, so show-logs marks the level on the way out.
The bundle holds the recent log files and the parsed config with every secret redacted by its
type (config.redact), never by patterns over the file's text: a secret written in any TOML form
(multi-line string, quoted key) is still a Secret once parsed.
"""
from __future__ import annotations

import io
import json
import re
import tarfile
import time
from pathlib import Path

from counterd.config import Config, config_to_dict

SHOW_LINES = 2000
_LEVEL_RE = re.compile(r"^(\S+) (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def log_files(log_path: str) -> list[Path]:
    """The current log and its rotated backups, oldest first."""
    path = Path(log_path)
    backups = sorted(path.parent.glob(path.name + ".*"),
                     key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0, reverse=True)
    return [p for p in [*backups, path] if p.is_file()]


def show_logs(log_path: str, lines: int = SHOW_LINES) -> str:
    tail: list[str] = []
    for path in reversed(log_files(log_path)):
        try:
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            return f"cannot read {path}: {exc.strerror or exc}\n"
        tail = text[-(lines - len(tail)):] + tail if lines > len(tail) else tail
        if len(tail) >= lines:
            break
    if not tail:
        return f"no log lines yet ({log_path})\n"
    return "\n".join(_LEVEL_RE.sub(r"\1 <\2> ", line) for line in tail) + "\n"


def generate_logs(config: Config, log_path: str) -> bytes:
    """tar.gz: logs/<files> and config/resolved.json (the parsed config, secrets redacted)."""
    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        problems = []
        for path in log_files(log_path):
            try:
                tar.add(str(path), arcname=f"logs/{path.name}", recursive=False)
            except OSError as exc:
                problems.append(f"{path}: {exc.strerror or exc}")
        if problems:
            _add_bytes(tar, "problems.txt", "\n".join(problems) + "\n", now)
        resolved = json.dumps({"path": config.path, **config_to_dict(config)}, indent=2)
        _add_bytes(tar, "config/resolved.json", resolved, now)
    return buffer.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, text: str, mtime: float) -> None:
    data = text.encode("utf-8")
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(mtime), 0o600
    tar.addfile(info, io.BytesIO(data))
