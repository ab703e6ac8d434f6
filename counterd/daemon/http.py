"""The daemon's own endpoints: /metrics (Prometheus text) and /healthz (JSON)."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from counterd.daemon.camera import LinkState

if TYPE_CHECKING:
    from counterd.daemon.service import Daemon

HEALTHY_HEARTBEAT_S = 10.0   # default: a worker that has not turned round for this long is stuck


def add_daemon_routes(app: web.Application, daemon: Daemon) -> None:
    async def login(request: web.Request) -> None:
        """api.metrics_auth: per-line counts and the camera's address are not for everyone."""
        if daemon.config.api.metrics_auth == "viewer":
            await daemon.site.auth.identify(request, "viewer", request.path)

    async def metrics(request: web.Request) -> web.Response:
        await login(request)
        if daemon.worker is not None:
            daemon.worker.sync_camera_metrics()      # frames read up to now, not up to its last turn
        body = generate_latest(daemon.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        """200 while the daemon works (the camera may be down: it is reconnecting, and says so);
        503 when the inference worker has died or is stuck, or the store cannot write."""
        await login(request)
        worker = daemon.worker
        failing = problems(daemon, daemon.healthy_heartbeat_s)
        healthy = not failing
        camera = worker.camera if worker else None
        up = camera is not None and camera.state is LinkState.UP
        body = {
            "status": "ok" if healthy and up and not daemon.damage else "degraded" if healthy else "failing",
            "problems": failing,
            "store": ("failing: " + daemon.flusher.write_error if daemon.flusher and daemon.flusher.write_error
                      else "damaged: " + "; ".join(daemon.damage) if daemon.damage else "ok"),
            "stream": camera.state.value if camera else "stopped",
            "stream_reason": camera.reason if camera else "",
            "last_frame_age_s": (round(time.monotonic() - camera.last_frame_at, 3)
                                 if camera and camera.last_frame_at is not None else None),
            "counting": "enabled" if worker is None or worker.counting else "disabled",
            "frames_processed": worker.frames_processed if worker else 0,
            "frames_dropped": camera.dropped if camera else 0,
            "reconnects": camera.reconnects if camera else 0,
            "uptime_s": round(time.time() - daemon.started_at, 1),
            # The config hub's last answer per component: "applied" or "needs restart: why".
            "config": dict(daemon.hub.status),
        }
        return web.json_response(body, status=200 if healthy else 503)

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)


def problems(daemon: Daemon, stale_after: float) -> list[str]:
    """Why the daemon is failing ([] while it works): /healthz answers 503 and the systemd
    watchdog stops being pinged (so systemd restarts it) for these."""
    out = []
    worker = daemon.worker
    if worker is None or not worker.healthy(stale_after):
        out.append("the inference worker has stopped or is stuck")
    if daemon.flusher is not None and daemon.flusher.write_error:
        out.append(f"the counts store cannot write: {daemon.flusher.write_error}")
    return out
