"""The daemon's own endpoints: /metrics (Prometheus text) and /healthz (JSON)."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from counterd.daemon.camera import LinkState

if TYPE_CHECKING:
    from counterd.daemon.service import Daemon

HEALTHY_HEARTBEAT_S = 10.0   # a worker that has not turned round for this long is stuck


def add_daemon_routes(app: web.Application, daemon: Daemon) -> None:
    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(daemon.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        """200 while the daemon works (the camera may be down: it is reconnecting, and says so);
        503 when the inference worker has died or is stuck."""
        worker = daemon.worker
        healthy = worker is not None and worker.healthy(HEALTHY_HEARTBEAT_S)
        camera = worker.camera if worker else None
        body = {
            "status": "ok" if healthy and camera.state is LinkState.UP else "degraded" if healthy else "failing",
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
