"""Bounds on the HTTP server's connections, so half-open ones (slowloris) cannot take the API down.

- At most api.max_connections at once. A connection beyond that pushes out the oldest one still
  waiting for its request line and headers; when every connection is busy with a request, the
  new one is closed at once. The listen backlog is deep (LISTEN_BACKLOG), so a burst of connects
  queues in the kernel instead of dropping a client's SYN for a second or more. Either way it is counted (counterd_http_connections_refused_total)
  and summed up in one log line a minute at most, never logged one by one.
- A connection must deliver a request's headers within api.header_timeout_s of opening or of
  its previous answer (keep-alive); otherwise it is closed. A request body has as long again
  (counterd/api/tvpc.py reads forms under that limit).

aiohttp has no header timeout of its own: the guard watches its Server's connection_made and
connection_lost, and a middleware marks each connection busy while a request is being answered.
"""
from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import OrderedDict

from aiohttp import web

log = logging.getLogger("counterd.http")

SWEEP_EVERY_S = 1.0
REPORT_EVERY_S = 60.0
RESERVED_FDS = 64            # for the store, the camera, log files and the model
LISTEN_BACKLOG = 1024        # connections the kernel queues before accept: a burst must not drop SYNs


class ConnectionGuard:
    def __init__(self, max_connections: int, header_timeout_s: float, on_refused=lambda: None,
                 clock=time.monotonic):
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.on_refused = on_refused
        self.clock = clock
        self.refused = 0
        self._unreported = 0
        self._reported_at = clock()
        self._busy: dict[asyncio.BaseTransport, int] = {}     # transport -> requests in progress
        # transports waiting for a request, oldest first, with their deadline
        self._waiting: OrderedDict[asyncio.BaseTransport, float] = OrderedDict()
        self._sweeper: asyncio.Task | None = None

    @property
    def open_connections(self) -> int:
        return len(self._busy) + len(self._waiting)

    # ---- wiring ---------------------------------------------------------------------------------

    def attach(self, server: web.Server) -> None:
        """Watch `server`'s connections (AppRunner.server, after setup)."""
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler, transport) -> None:
            made(handler, transport)
            self._opened(transport)

        def connection_lost(handler, exc=None) -> None:
            self._closed(handler.transport)
            lost(handler, exc)

        server.connection_made = connection_made
        server.connection_lost = connection_lost
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="counterd-connection-guard")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        transport = request.transport
        if transport is None:
            return await handler(request)
        self._waiting.pop(transport, None)
        self._busy[transport] = self._busy.get(transport, 0) + 1
        try:
            return await handler(request)
        finally:
            left = self._busy.get(transport, 1) - 1
            if left > 0:
                self._busy[transport] = left
            elif transport in self._busy:
                del self._busy[transport]
                if not transport.is_closing():     # keep-alive: the next headers have a deadline too
                    self._waiting[transport] = self.clock() + self.header_timeout_s

    # ---- bookkeeping ----------------------------------------------------------------------------

    def _opened(self, transport: asyncio.BaseTransport) -> None:
        if self.open_connections >= self.max_connections:
            if self._waiting:
                oldest, _ = self._waiting.popitem(last=False)
                oldest.abort()
            else:
                transport.abort()
                self._refuse()
                return
            self._refuse()
        self._waiting[transport] = self.clock() + self.header_timeout_s

    def _closed(self, transport) -> None:
        if transport is not None:
            self._waiting.pop(transport, None)
            self._busy.pop(transport, None)

    def _refuse(self) -> None:
        self.refused += 1
        self._unreported += 1
        self.on_refused()

    def sweep(self) -> int:
        """Close connections whose headers are overdue; returns how many."""
        now = self.clock()
        overdue = [t for t, deadline in self._waiting.items() if deadline <= now]
        for transport in overdue:
            del self._waiting[transport]
            transport.abort()
        if self._unreported and now - self._reported_at >= REPORT_EVERY_S:
            log.warning("refused %d HTTP connection(s) in the last %.0f s: more than api.max_connections "
                        "(%d) were open", self._unreported, now - self._reported_at, self.max_connections)
            self._unreported, self._reported_at = 0, now
        return len(overdue)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            self.sweep()


def raise_open_files_limit(wanted: int) -> int:
    """Lift the soft RLIMIT_NOFILE toward the hard one (systemd's LimitNOFILE); returns how many
    connections fit under it, leaving room for the daemon's own files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted + RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < target:
        new_soft = target if hard == resource.RLIM_INFINITY else min(hard, target)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            soft = new_soft
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= target:
        return wanted
    fits = max(16, soft - RESERVED_FDS)
    log.warning("the open-files limit (%d) allows only %d HTTP connections, not api.max_connections = %d; "
                "raise LimitNOFILE in the systemd unit", soft, fits, wanted)
    return fits
