"""The installer's console: the page at `/` (static files shipped inside the package) and the
JSON, JPEG and event-stream endpoints it uses.

Viewers see everything read-only; operators may change the lines. Pixels leave the box only
while api.live_view is on: otherwise every picture endpoint answers 403 saying how to turn it
on, and the page draws the lines on a blank frame of the right size. What the console needs
from a running daemon (the live view, saving lines, health) comes through `Console`; an API
without a daemon (tests, `make_app`) serves the page and says there is no camera.
"""
from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Awaitable, Callable

from aiohttp import web

from counterd.api.auth import ROLES
from counterd.api.logs import show_logs
from counterd.api.query import BadRequest
from counterd.api.replies import refusal
from counterd.api.site import SITE, Site
from counterd.daemon.liveview import LiveView, tracks_json

STATIC = {"index.html": "text/html", "console.css": "text/css", "console.js": "text/javascript"}
MAX_LINES_BODY = 64 * 1024
MAX_LINES = 64
HEALTH_LOG_LINES = 50
STREAM_BACKLOG = 10          # committed batches an event stream may fall behind by (then drops)
STREAM_KEEPALIVE_S = 15.0    # a comment line keeps proxies from closing a quiet stream
LIVE_VIEW_OFF = ("the live view is off on this box (api.live_view = false): no picture leaves it. "
                 "To turn it on, set live_view = true under [api] in the config file and restart "
                 "counterd (or send it SIGHUP)")


@dataclass
class Console:
    """What a running daemon lends the console; each is None without one."""
    live_view: LiveView | None = None
    # lines (validated shape) -> a one-line result; raises BadRequest / HTTPException on refusal
    save_lines: Callable[[list[dict]], Awaitable[str]] | None = None
    health: Callable[[], Awaitable[dict]] | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


CONSOLE = web.AppKey("console", Console)


def static_files() -> dict[str, bytes]:
    """The page's files, read from the installed package (not the source tree)."""
    folder = resources.files("counterd").joinpath("console")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC}


# ---- page --------------------------------------------------------------------------------------


def page_handlers(files: dict[str, bytes]):
    async def index(request: web.Request) -> web.Response:
        # A login is asked for here (unless anonymous viewers are allowed), so the browser holds
        # the credentials for the page's own requests.
        await request.config_dict[SITE].auth.identify(request, "viewer", "the console")
        return _static_response("index.html", files)

    async def login(request: web.Request) -> web.Response:
        """Log in as an operator (the browser asks for the password), then back to the page."""
        await request.config_dict[SITE].auth.identify(request, "operator", "editing in the console")
        raise web.HTTPSeeOther("/")

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in files or name == "index.html":
            raise web.HTTPNotFound(text=f"no console file {name[:60]!r}\n")
        return _static_response(name, files)

    return index, login, asset


def _static_response(name: str, files: dict[str, bytes]) -> web.Response:
    return web.Response(body=files[name], content_type=STATIC[name], charset="utf-8",
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


# ---- who, lines -------------------------------------------------------------------------------


def frame_size(site: Site, console: Console) -> tuple[int, int] | None:
    """The camera's frame size: the newest frame's, else the config's camera.width/height."""
    view = console.live_view.latest() if console.live_view else None
    if view is not None:
        return view.size
    camera = site.config.camera
    return (camera.width, camera.height) if camera.width else None


async def whoami(request: web.Request) -> web.Response:
    site = request.config_dict[SITE]
    identity = await site.auth.identify(request, "viewer", "/api/v1/whoami")
    return web.json_response({"name": identity.name, "role": identity.role,
                              "can_edit": ROLES[identity.role] >= ROLES["operator"],
                              "live_view": site.config.api.live_view})


def lines_json(site: Site, console: Console) -> dict:
    config = site.config
    size = frame_size(site, console)
    primary = config.primary_line
    return {"width": size[0] if size else None, "height": size[1] if size else None,
            "band_px": config.counting.hysteresis_px, "primary_line": primary.name if primary else "",
            "config_path": config.path,
            "lines": [{"name": line.name, "start": list(line.start), "end": list(line.end),
                       "invert": line.invert, "tailgate_seconds": line.tailgate_seconds,
                       "forbidden_direction": line.forbidden_direction} for line in config.lines]}


async def get_lines(request: web.Request) -> web.Response:
    site = request.config_dict[SITE]
    await site.auth.identify(request, "viewer", "/api/v1/lines")
    return web.json_response(lines_json(site, request.config_dict[CONSOLE]))


async def put_lines(request: web.Request) -> web.Response:
    """Replace every line: applied at once (counts and live tracks kept) and written to the
    config file, so a restart keeps them."""
    site, console = request.config_dict[SITE], request.config_dict[CONSOLE]
    await site.auth.identify(request, "operator", "changing lines")
    if (request.content_length or 0) > MAX_LINES_BODY:
        raise BadRequest(f"body: too long (at most {MAX_LINES_BODY} bytes)")
    raw = await request.content.read(MAX_LINES_BODY + 1)
    if len(raw) > MAX_LINES_BODY:
        raise BadRequest(f"body: too long (at most {MAX_LINES_BODY} bytes)")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body: not JSON ({exc})") from None
    lines = parse_lines(body)
    if console.save_lines is None:
        raise refusal(503, "lines: no counting pipeline runs in this process")
    message = await console.save_lines(lines)
    return web.json_response({"status": "OK", "message": message, **lines_json(site, console)})


def parse_lines(body) -> list[dict]:
    """The body's lines, each checked for shape; the config's own checks follow when saving."""
    if not isinstance(body, dict) or not isinstance(body.get("lines"), list):
        raise BadRequest('body: expected {"lines": [...]}')
    items = body["lines"]
    if not 1 <= len(items) <= MAX_LINES:
        raise BadRequest(f"lines: give 1 to {MAX_LINES} lines, got {len(items)}")
    return [_parse_line(i, item) for i, item in enumerate(items)]


def _parse_line(i: int, item) -> dict:
    where = f"lines[{i}]"
    if not isinstance(item, dict):
        raise BadRequest(f"{where}: expected an object")
    name = item.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 64 or any(ord(c) < 32 for c in name):
        raise BadRequest(f"{where}.name: must be 1-64 printable characters")
    line = {"name": name.strip(), "was": item.get("was") if isinstance(item.get("was"), str) else None}
    for key in ("start", "end"):
        point = item.get(key)
        if (not isinstance(point, list) or len(point) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in point)):
            raise BadRequest(f"{where}.{key}: must be [x, y] in pixels")
        line[key] = [round(float(v), 1) for v in point]
    invert = item.get("invert", False)
    if not isinstance(invert, bool):
        raise BadRequest(f"{where}.invert: must be true or false")
    line["invert"] = invert
    tailgate = item.get("tailgate_seconds")
    if tailgate is not None and (isinstance(tailgate, bool) or not isinstance(tailgate, (int, float))):
        raise BadRequest(f"{where}.tailgate_seconds: must be a number of seconds or null")
    line["tailgate_seconds"] = tailgate
    forbidden = item.get("forbidden_direction", "")
    if forbidden not in ("", "in", "out"):
        raise BadRequest(f'{where}.forbidden_direction: must be "", "in" or "out"')
    line["forbidden_direction"] = forbidden
    return line


# ---- pictures ------------------------------------------------------------------------------------


async def view(request: web.Request) -> web.Response:
    """The newest analysed frame's tracks and size: no pixels, so served with live view off too."""
    site, console = request.config_dict[SITE], request.config_dict[CONSOLE]
    await site.auth.identify(request, "viewer", "/api/v1/view")
    latest = console.live_view.latest() if console.live_view else None
    size = frame_size(site, console)
    return web.json_response({
        "live_view": site.config.api.live_view, "camera": console.live_view is not None,
        "width": size[0] if size else None, "height": size[1] if size else None,
        "seq": latest.seq if latest else None, "timestamp": latest.timestamp if latest else None,
        "tracks": tracks_json(latest.tracks) if latest else []})


def picture_handler(role: str, what: str, with_tracks: bool):
    async def handle(request: web.Request) -> web.Response:
        site, console = request.config_dict[SITE], request.config_dict[CONSOLE]
        await site.auth.identify(request, role, what)
        if not site.config.api.live_view:
            raise refusal(403, LIVE_VIEW_OFF)
        if console.live_view is None:
            raise refusal(503, f"{what}: no camera runs in this process")
        picture = await console.live_view.picture()
        if picture is None:
            raise refusal(503, f"{what}: no frame analysed yet (is the camera up? see /healthz)")
        headers = {"Cache-Control": "no-store", "X-Frame-Seq": str(picture.seq),
                   "X-Frame-Timestamp": f"{picture.timestamp:.3f}"}
        if with_tracks:      # the boxes of this very frame, for the page's overlay
            headers["X-Frame-Tracks"] = json.dumps(picture.tracks, separators=(",", ":"))
        return web.Response(body=picture.jpeg, content_type="image/jpeg", headers=headers)
    return handle


# ---- counts stream, health ------------------------------------------------------------------


def live_totals(site: Site) -> dict:
    day, totals = site.live.today(site.clock())
    return {"counts": [{"line": ln, "direction": d, "class": c, "count": n}
                       for (ln, d, c), n in sorted(totals.items())]}


async def live_stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `totals` with today's counts per line, direction and class, sent at
    once and then after every committed batch that changes them (the bus of counterd/bus.py)."""
    site, console = request.config_dict[SITE], request.config_dict[CONSOLE]
    await site.auth.identify(request, "viewer", "/api/v1/live/stream")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    stopping = asyncio.ensure_future(console.stopping.wait())
    last = None
    try:
        async with site.bus.follow(maxsize=STREAM_BACKLOG) as batches:
            while True:
                totals = live_totals(site)      # also after a quiet spell: a new day starts at 0
                if totals != last:
                    await response.write(f"event: totals\ndata: {json.dumps(totals)}\n\n".encode())
                    last = totals
                else:
                    await response.write(b": still here\n\n")     # proxies keep a quiet stream open
                batch = asyncio.ensure_future(anext(batches))
                await asyncio.wait((batch, stopping), timeout=STREAM_KEEPALIVE_S,
                                   return_when=asyncio.FIRST_COMPLETED)
                batch.cancel()
                if stopping.done():
                    break
    except ConnectionError:
        pass            # the browser went away
    finally:
        stopping.cancel()
    return response


async def health(request: web.Request) -> web.Response:
    site, console = request.config_dict[SITE], request.config_dict[CONSOLE]
    identity = await site.auth.identify(request, "viewer", "/api/v1/health")
    body = await console.health() if console.health else {"camera": None}
    if ROLES[identity.role] >= ROLES["operator"]:
        text = await asyncio.to_thread(show_logs, site.log_path, HEALTH_LOG_LINES)
        body["log"] = text.splitlines()
    return web.json_response(body)


def add_console(app: web.Application) -> list[web.RouteDef]:
    """Lend `app` the console's state; its routes are returned for the API to mount."""
    app[CONSOLE] = Console()
    index, login, asset = page_handlers(static_files())
    app.on_shutdown.append(_stop_streams)
    return [
        web.get("/", index), web.get("/login", login), web.get("/console/{name}", asset),
        web.get("/api/v1/whoami", whoami),
        web.get("/api/v1/lines", get_lines), web.put("/api/v1/lines", put_lines),
        web.get("/api/v1/view", view),
        web.get("/api/v1/frame.jpg", picture_handler("viewer", "/api/v1/frame.jpg", True)),
        web.get("/api/v1/snapshot.jpg", picture_handler("operator", "/api/v1/snapshot.jpg", False)),
        web.get("/api/v1/live/stream", live_stream),
        web.get("/api/v1/health", health),
    ]


async def _stop_streams(app: web.Application) -> None:
    app[CONSOLE].stopping.set()     # event streams end now, not at the shutdown timeout


# ---- OpenAPI (merged into /api/v1/openapi.json) ------------------------------------------------

_AUTH = [{"digest": []}, {"basic": []}]
_LINE = {"type": "object", "required": ["name", "start", "end"], "properties": {
    "name": {"type": "string"}, "was": {"type": "string", "nullable": True,
                                        "description": "PUT: the line's name before this edit (keeps its comments in the file)"},
    "start": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
    "end": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
    "invert": {"type": "boolean"}, "tailgate_seconds": {"type": "number", "nullable": True},
    "forbidden_direction": {"type": "string", "enum": ["", "in", "out"]}}}
_LINES = {"type": "object", "properties": {
    "width": {"type": "integer", "nullable": True}, "height": {"type": "integer", "nullable": True},
    "band_px": {"type": "number"}, "primary_line": {"type": "string"}, "config_path": {"type": "string"},
    "lines": {"type": "array", "items": _LINE}}}


def _op(summary: str, role: str, content_type: str, schema: dict, extra: dict | None = None) -> dict:
    return {"summary": summary + f" ({role} role)", "security": _AUTH, "responses": {
        "200": {"description": "OK", "content": {content_type: {"schema": schema}}},
        "401": {"description": "login needed, or the login's role is too low"},
        "429": {"description": "too many failed logins; Retry-After says when to try again"}, **(extra or {})}}


_NO_PIXELS = {"403": {"description": "api.live_view is off (the text says how to turn it on)"},
              "503": {"description": "no frame analysed yet, or no camera in this process"}}
_JPEG = {"type": "string", "format": "binary"}

OPENAPI_PATHS = {
    "/api/v1/lines": {
        "get": _op("The counting lines in frame pixels, and the frame size", "viewer", "application/json", _LINES),
        "put": {**_op("Replace every line: applied at once (counts and live tracks kept) and written to the "
                      "config file atomically, the previous file kept as <file>.bak", "operator",
                      "application/json", _LINES,
                      {"400": {"description": "a bad line: one text/plain line naming it"},
                       "503": {"description": "the config file cannot be written"}}),
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"lines": {"type": "array", "items": _LINE}}}}}}},
    },
    "/api/v1/view": {"get": _op("The newest analysed frame's number, size and tracked boxes (no pixels)", "viewer",
                                "application/json", {"type": "object"})},
    "/api/v1/frame.jpg": {"get": _op("The newest analysed frame as JPEG (made at most once a second); "
                                     "X-Frame-Tracks holds that frame's boxes as JSON", "viewer",
                                     "image/jpeg", _JPEG, _NO_PIXELS)},
    "/api/v1/snapshot.jpg": {"get": _op("The live view's picture, for scripts", "operator", "image/jpeg", _JPEG,
                                        _NO_PIXELS)},
    "/api/v1/live/stream": {"get": _op("Server-sent events: `totals` with today's counts per line, direction and "
                                       "class, at once and on every change", "viewer", "text/event-stream",
                                       {"type": "string"})},
    "/api/v1/health": {"get": _op("Frames/s, stage times, camera, model, coverage of the last hour, uploads; "
                                  "the last 50 log lines for operators", "viewer", "application/json",
                                  {"type": "object"})},
    "/api/v1/whoami": {"get": _op("The caller's name and role, and whether the live view is on", "viewer",
                                  "application/json", {"type": "object"})},
}
