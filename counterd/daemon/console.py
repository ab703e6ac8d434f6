"""What the daemon lends the console (counterd/api/console.py): its live view, saving lines
through the config file and the reload path, and a health summary."""
from __future__ import annotations

import asyncio
import time
import tomllib
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from counterd.api.console import CONSOLE
from counterd.api.query import BadRequest
from counterd.api.replies import refusal
from counterd.config import ConfigError, config_from_dict
from counterd.config.lines_file import replace_lines, save_config_text
from counterd.durable import write_atomically
from counterd.upload.outbox import Outbox

if TYPE_CHECKING:
    from counterd.daemon.service import Daemon

RATE_WINDOW_S = 10.0       # frames/s is measured over about this long


def lend_console(app: web.Application, daemon: Daemon) -> None:
    console = app[CONSOLE]
    console.live_view = daemon.live_view
    lock = asyncio.Lock()      # one save at a time: each rewrites the file the last one wrote

    async def save_lines(lines: list[dict]) -> str:
        async with lock:
            return await _save_lines(daemon, lines)

    rate = FrameRate()

    async def health() -> dict:
        return await daemon_health(daemon, rate)

    console.save_lines = save_lines
    console.health = health


async def _save_lines(daemon: Daemon, lines: list[dict]) -> str:
    """Check the new lines as the hub would, write the file, then reload through the hub (the
    path SIGHUP takes): the pipeline keeps its counts and live tracks."""
    hub = daemon.hub
    path = Path(daemon.config.path)
    if not path.is_file():
        raise refusal(503, f"lines: the running configuration was not read from a file ({path}), "
                           "so there is nowhere to save them")

    def rewrite() -> tuple[Path, str]:
        text = path.read_text(encoding="utf-8")
        new_text = replace_lines(text, lines)
        config = config_from_dict(tomllib.loads(new_text), str(path))      # every check of a load
        for validate in hub.validators:                                    # the frame size
            validate(config)
        return save_config_text(path, new_text), text

    try:
        backup, previous = await asyncio.to_thread(rewrite)
    except ConfigError as exc:
        raise BadRequest("; ".join(exc.problems)) from None
    except OSError as exc:
        raise refusal(503, f"lines: cannot write {exc.filename or path}: {exc.strerror or exc} "
                           "(the service needs write access to the config file and its folder)") from None
    if not await hub.reload():
        # Refused after all (the file changed under us): put the previous file back.
        await asyncio.to_thread(write_atomically, path, previous.encode("utf-8"))
        raise refusal(503, f"lines: {path} was refused on reload (see the log); the previous file is back")
    return f"applied and saved to {path} (previous file kept as {backup.name})"


class FrameRate:
    """Frames analysed per second over the last RATE_WINDOW_S, from samples taken on request."""

    def __init__(self):
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, frames: int, now: float, started: float) -> float | None:
        self._samples.append((now, frames))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW_S:
            self._samples.popleft()
        t0, f0 = self._samples[0]
        if now - t0 < 1.0:      # the first request: the average since start
            return frames / (now - started) if now - started >= 1.0 else None
        return (frames - f0) / (now - t0)


async def daemon_health(daemon: Daemon, rate: FrameRate) -> dict:
    worker = daemon.worker
    body: dict = {"uptime_s": round(time.time() - daemon.started_at, 1)}
    if worker is not None:
        camera, times = worker.camera, worker.pipeline.times
        fps = rate.update(worker.frames_processed, time.monotonic(), daemon.started_monotonic)
        body.update({
            "camera": {"state": camera.state.value, "reason": camera.reason, "reconnects": camera.reconnects,
                       "frames_read": camera.frames_read, "frames_dropped": camera.dropped},
            "frames_processed": worker.frames_processed,
            "frames_per_s": round(fps, 2) if fps is not None else None,
            "stage_ms": {"mean": {k: round(v, 2) for k, v in times.mean_ms().items()},
                         "last": {k: round(1000 * v, 2) for k, v in times.last.items()}},
            "model": worker.pipeline.detector.describe(),
            "last_error": worker.last_error,
        })
    now = datetime.now(UTC)
    body["coverage_last_hour_s"] = round(await daemon.astore.run(
        daemon.store.coverage_between, now - timedelta(hours=1), now), 1)
    body["upload"] = await asyncio.to_thread(_upload_state, daemon)
    return body


def _upload_state(daemon: Daemon) -> dict:
    outbox = Outbox(Path(daemon.config.daemon.state_dir) / "outbox")
    status = outbox.read_status()
    return {"enabled": daemon.config.upload.enabled, "pending_reports": len(outbox.pending()),
            "quarantined_reports": len(outbox.quarantined()), **status.to_json(),
            "problems": status.problems}
