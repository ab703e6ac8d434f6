"""/api/v1/: what the Axis formats cannot say — every line, direction and class, with coverage,
recent crossing events and alerts. JSON only; described by /api/v1/openapi.json. Viewer role."""
from __future__ import annotations

from aiohttp import web

from counterd import __version__
from counterd.api.console import OPENAPI_PATHS as CONSOLE_PATHS
from counterd.api.query import (MAX_BINS, MAX_FIELDS, MAX_QUERY_BYTES, BadRequest, check_bin_count, one_value_each, parse_dates, parse_epoch, parse_int,
                                parse_query, parse_res)
from counterd.api.site import SITE, Site, started_bins
from counterd.store.occupancy import replay, reset_offset
from counterd.store.wallclock import DAY, RESOLUTIONS, format_wall, to_wall

LOCAL = "%Y-%m-%dT%H:%M:%S"


async def _site_and_query(request: web.Request, what: str) -> tuple[Site, dict[str, str]]:
    site = request.config_dict[SITE]
    await site.auth.identify(request, "viewer", what)     # before parsing: 401 comes first
    return site, one_value_each(parse_query(request.rel_url.raw_query_string))


async def counts(request: web.Request) -> web.Response:
    site, query = await _site_and_query(request, "/api/v1/counts")
    now = site.clock()
    today = format_wall(to_wall(site.store.tz, now), "%Y%m%d")
    selection = parse_dates(query.get("date"), default=today)
    res_name = query.get("res", "1h")
    res = parse_res(res_name, tuple(RESOLUTIONS))
    line, class_name, direction = query.get("line"), query.get("class"), query.get("direction")
    if direction not in (None, "in", "out"):
        raise BadRequest(f"direction: must be in or out, got {direction[:20]!r}")

    def build() -> dict:
        store = site.store
        days = selection.pick(store.days_with_data())
        check_bin_count(len(days), res, res_name)
        bins = []
        for day in started_bins(store.binned(days, res, line, class_name), store.tz, now):
            per_bin: dict[int, list] = {s: [] for s in day.starts}
            for (start, ln, d, cls), n in sorted(day.counts.items()):
                if start in per_bin and (direction is None or d == direction):
                    per_bin[start].append({"line": ln, "direction": d, "class": cls, "count": n})
            bins += [{"start": format_wall(s, LOCAL), "end": format_wall(s + res, LOCAL),
                      "coverage_s": round(day.coverage.get(s, 0.0), 3), "counts": per_bin[s]}
                     for s in day.starts]
        return {"timezone": str(store.tz), "res": res_name, "bins": bins}

    return web.json_response(await site.astore.run(build))


def _event_json(row, tz) -> dict:
    ts, line, direction, class_name, track_id = row
    return {"timestamp": ts, "time": format_wall(to_wall(tz, ts), LOCAL), "line": line,
            "direction": direction, "class": class_name, "track_id": track_id}


async def events(request: web.Request) -> web.Response:
    site, query = await _site_and_query(request, "/api/v1/events")
    now = site.clock()
    since = parse_epoch(query.get("since"), "since", now - DAY)
    until = parse_epoch(query.get("until"), "until", now + 1)
    limit = parse_int(query.get("limit"), "limit", default=100, lo=1, hi=10_000)
    store = site.store
    rows = await site.astore.run(store.events_between, since, until, query.get("line"),
                                query.get("class"), limit)
    return web.json_response({"events": [_event_json(r, store.tz) for r in rows]})


async def alerts(request: web.Request) -> web.Response:
    site, query = await _site_and_query(request, "/api/v1/alerts")
    now = site.clock()
    since = parse_epoch(query.get("since"), "since", now - 7 * DAY)
    until = parse_epoch(query.get("until"), "until", now + 1)
    limit = parse_int(query.get("limit"), "limit", default=100, lo=1, hi=10_000)
    store = site.store
    found = await site.astore.run(store.alerts_between, since, until, limit)
    return web.json_response({"alerts": [
        {**a.to_json(), "time": format_wall(to_wall(store.tz, a.ts), LOCAL)} for a in found]})


async def live(request: web.Request) -> web.Response:
    site, _ = await _site_and_query(request, "/api/v1/live")
    now = site.clock()
    store = site.store
    day, totals = site.live.today(now)
    steps = await site.astore.run(replay, store, now, now, site.line, "person",
                                 reset_offset(site.config.occupancy.reset_time))
    return web.json_response({
        "time": format_wall(to_wall(store.tz, now), LOCAL), "day": format_wall(day, "%Y-%m-%d"),
        "primary_line": site.line, "occupancy": steps.before(now + 1e-6),
        "counts": [{"line": ln, "direction": d, "class": c, "count": n}
                   for (ln, d, c), n in sorted(totals.items())]})


async def openapi(request: web.Request) -> web.Response:
    await _site_and_query(request, "/api/v1/openapi.json")
    return web.json_response(OPENAPI)


def _param(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


_COUNT = {"type": "object", "properties": {
    "line": {"type": "string"}, "direction": {"type": "string", "enum": ["in", "out"]},
    "class": {"type": "string"}, "count": {"type": "integer"}}}
_ERRORS = {"400": {"description": "bad or repeated parameter: one text/plain line naming it"},
           "401": {"description": "login needed, or the login's role is too low (Digest MD5 and SHA-256, "
                                  "and Basic challenges)"},
           "429": {"description": "too many failed logins from this address or for this user name; "
                                  "Retry-After says when to try again"}}


def _get(summary: str, params: list[dict], schema: dict) -> dict:
    return {"get": {"summary": summary, "parameters": params, "security": [{"digest": []}, {"basic": []}],
                    "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
                                  **_ERRORS}}}


OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "counterd API", "version": __version__,
             "description": "Counts per line, direction and class beyond what the Axis formats carry. "
                            "Times are local wall-clock (camera.timezone) unless named timestamp (epoch s). "
                            "Every endpoint needs the viewer role unless it says otherwise. "
                            f"Limits: a query string of at most {MAX_QUERY_BYTES} bytes and {MAX_FIELDS} "
                            "parameters, strict UTF-8 without control characters; each parameter at most "
                            "once (a repeated one is refused with 400 naming it, the same rule as the Axis "
                            f"CGIs); /api/v1/counts at most {MAX_BINS} bins per request. Bins that have "
                            "not begun are not reported: today's stop at the bin in progress."},
    "x-limits": {"max_query_bytes": MAX_QUERY_BYTES, "max_parameters": MAX_FIELDS,
                 "repeated_parameter": "refused (400)", "max_bins_per_counts_request": MAX_BINS},
    "components": {"securitySchemes": {"digest": {"type": "http", "scheme": "digest"},
                                       "basic": {"type": "http", "scheme": "basic"}}},
    "paths": {
        "/api/v1/counts": _get(
            "Counts in local-time bins with the seconds of video analysed in each",
            [_param("date", "YYYYMMDD, YYYYMMDD-YYYYMMDD, YYYYMMDD,YYYYMMDD,... or all; default today. "
                            "Only days with data appear."),
             _param("res", "bin length; default 1h", {"type": "string", "enum": list(RESOLUTIONS)}),
             _param("line", "only this line"), _param("class", "only this class (COCO name)"),
             _param("direction", "only in or out", {"type": "string", "enum": ["in", "out"]})],
            {"type": "object", "properties": {
                "timezone": {"type": "string"}, "res": {"type": "string"},
                "bins": {"type": "array", "items": {"type": "object", "properties": {
                    "start": {"type": "string"}, "end": {"type": "string"},
                    "coverage_s": {"type": "number"}, "counts": {"type": "array", "items": _COUNT}}}}}}),
        "/api/v1/events": _get(
            "Recent crossing events, oldest first (the newest `limit` of the window)",
            [_param("since", "epoch seconds; default 24 h ago", {"type": "number"}),
             _param("until", "epoch seconds; default now", {"type": "number"}),
             _param("line", "only this line"), _param("class", "only this class"),
             _param("limit", "at most this many (1-10000, default 100)", {"type": "integer"})],
            {"type": "object", "properties": {"events": {"type": "array", "items": {"type": "object"}}}}),
        "/api/v1/alerts": _get(
            "Tailgating and wrong-way alerts, oldest first",
            [_param("since", "epoch seconds; default 7 days ago", {"type": "number"}),
             _param("until", "epoch seconds; default now", {"type": "number"}),
             _param("limit", "at most this many (1-10000, default 100)", {"type": "integer"})],
            {"type": "object", "properties": {"alerts": {"type": "array", "items": {"type": "object"}}}}),
        "/api/v1/live": _get(
            "Today's totals per line, direction and class, and the primary line's occupancy", [],
            {"type": "object", "properties": {"day": {"type": "string"}, "occupancy": {"type": "integer"},
                                              "counts": {"type": "array", "items": _COUNT}}}),
        "/api/v1/openapi.json": _get("This document", [], {"type": "object"}),
        **CONSOLE_PATHS,        # the console's endpoints (counterd/api/console.py)
    },
}


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/counts", counts), web.get("/api/v1/events", events),
            web.get("/api/v1/alerts", alerts), web.get("/api/v1/live", live),
            web.get("/api/v1/openapi.json", openapi)]
