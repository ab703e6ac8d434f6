"""The HTTP API application: Axis tvpc CGIs under every base path, /api/v1/, and alert webhooks.

`add_api(app, config, store_provider, bus)` mounts it on the daemon's application, one sub-app
per base path (the store is opened by the daemon's own cleanup_ctx, so the API asks for it when
it starts); `make_app(config, store)` builds a standalone one around an open Store (tests, the benchmark). Live totals and the
alert webhook follow the bus of committed batches (counterd/bus.py): what the API shows as live
is what the store holds.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import Callable

import aiohttp
from aiohttp import web

from counterd.api import tvpc, v1
from counterd.api.console import add_console
from counterd.api.auth import Authenticator
from counterd.api.exports import Exports
from counterd.api.query import BadRequest
from counterd.api.replies import refusal
from counterd.api.site import SITE, Site, serial_number
from counterd.bus import BatchBus
from counterd.confighub import ConfigHub, changed_keys, restart_needed
from counterd.config import Config, redact_url
from counterd.store import AsyncStore, LiveTotals, Store

log = logging.getLogger("counterd.api")

WEBHOOK_TIMEOUT_S = 10.0
WEBHOOK_QUEUE = 1000        # batches waiting for the webhook; beyond this the oldest are dropped


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Every client mistake is a 400 with one text line naming the parameter; a failing store is
    a 503 saying so."""
    try:
        return await handler(request)
    except BadRequest as exc:
        raise refusal(400, str(exc)) from None
    except sqlite3.Error as exc:          # disk full, a broken file: the box's problem, not the client's
        log.error("counts store failed during %s %s: %s", request.method, request.path, exc)
        raise refusal(503, f"store: {exc}") from None


def add_api(app: web.Application, hub: ConfigHub, store_provider: Callable[[], AsyncStore],
            bus: BatchBus, *, clock=time.time, sleep=asyncio.sleep) -> Site:
    """Mount the API on `app`. setparams goes through the config hub, which hands the new
    effective config to every registered component (the daemon's pipeline among them)."""
    config = hub.effective
    api = config.api
    auth = Authenticator(config.users, api.realm, anonymous_viewer=api.anonymous_viewer,
                         nonce_seconds=api.nonce_seconds, clock=clock, sleep=sleep)
    site = Site(hub, auth, store_provider, config.daemon.log_path, clock,
                serial_number(config.camera.serial), bus)
    site.exports = Exports(api.max_heavy_exports)
    app[SITE] = site
    if not config.users and not api.anonymous_viewer:
        log.warning("the HTTP API has no [[users]] and api.anonymous_viewer is off: it will refuse "
                    "every request (add users with: counterd passwd NAME --role ROLE)")
    hub.register("api", ("users", "api"), lambda old, new: apply_api(auth, old, new))
    hub.register("alert webhook", ("alerts",), restart_needed("alerts"))
    mount(app, tvpc.routes() + v1.routes() + add_console(app))
    app.cleanup_ctx.append(settings_ctx)
    app.cleanup_ctx.append(webhook_ctx)
    app.on_cleanup.append(lambda app: asyncio.to_thread(app[SITE].exports.shutdown))
    return site


# Each base path the API serves is a sub-app carrying error_middleware, so the daemon's own
# routes on the parent app (/metrics, /healthz) never pass through it. The shared keys (SITE,
# CONSOLE) stay on the parent: handlers read them through request.config_dict.
API_BASES = tvpc.PREFIXES + ("/api/v1/", "/console/")


def mount(app: web.Application, routes: list[web.RouteDef]) -> None:
    """Put each route in the sub-app of its base path. The console's two pages at / and /login
    stay on `app` (a sub-app needs a prefix): they only ask for a login, which the error
    middleware never translates."""
    subapps: dict[str, web.Application] = {}
    for route in routes:
        base = next((base for base in API_BASES if route.path.startswith(base)), None)
        if base is None:
            route.register(app.router)
            continue
        subapp = subapps.setdefault(base, web.Application(middlewares=[error_middleware]))
        web.RouteDef(route.method, route.path[len(base) - 1:], route.handler, route.kwargs).register(subapp.router)
    for base, subapp in subapps.items():
        app.add_subapp(base.rstrip("/"), subapp)


API_RELOADED = ("anonymous_viewer", "nonce_seconds", "live_view")    # [api] keys applied at once


def apply_api(auth: Authenticator, old: Config, new: Config) -> str | None:
    """Users and the keys in API_RELOADED apply to the next request; the rest (address, port,
    realm) shape the listening socket or every user's ha1, so they wait for a restart."""
    auth.users = {user.name: user for user in new.users}
    auth.anonymous_viewer = new.api.anonymous_viewer
    auth.nonce_seconds = new.api.nonce_seconds
    waiting = [key for key in changed_keys(old, new, "api") if key.split(".", 1)[1] not in API_RELOADED]
    return f"{', '.join(waiting)} changed; that takes effect after a restart" if waiting else None


def make_app(config: Config, store: Store, bus: BatchBus | None = None, **kwargs) -> web.Application:
    """A standalone API around an open store; its live totals follow `bus` (a new one if None:
    then only what the store held at start-up shows as live)."""
    app = web.Application()
    holder: list[AsyncStore] = []
    add_api(app, ConfigHub(config), lambda: holder[0], bus or BatchBus(), **kwargs)

    async def store_ctx(app: web.Application):
        holder.append(AsyncStore(store))
        yield
        holder[0].shutdown()        # the Store stays open: its owner closes it

    app.cleanup_ctx.insert(0, store_ctx)
    return app


async def settings_ctx(app: web.Application):
    """Lay the stored setparams values over the config once the store is open; start today's
    live totals from the store and follow the committed batches from then on."""
    site = app[SITE]
    site.hub.load_stored(await site.astore.run(site.store.get_params))
    site.live = LiveTotals(site.store.tz)
    await site.astore.run(site.live.load, site.store, site.clock())
    unsubscribe = site.bus.subscribe(lambda batch: site.live.add(batch.events))
    yield
    unsubscribe()


async def webhook_ctx(app: web.Application):
    """POST each stored alert as JSON to alerts.webhook_url, in order, following the bus."""
    site = app[SITE]
    url = site.config.alerts.webhook_url
    if not url:
        yield
        return
    timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session, \
            site.bus.follow(WEBHOOK_QUEUE) as batches:
        task = asyncio.create_task(_post_alerts(session, url, batches))
        yield
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


async def _post_alerts(session: aiohttp.ClientSession, url: str, batches) -> None:
    async for batch in batches:
        for alert in batch.alerts:
            try:
                async with session.post(url, json=alert.to_json()) as response:
                    if response.status >= 300:
                        log.warning("alert webhook answered HTTP %d for a %s alert", response.status, alert.kind)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                log.warning("alert webhook %s failed: %s", redact_url(url.split("?")[0]),
                            redact_url(str(exc)) or type(exc).__name__)
