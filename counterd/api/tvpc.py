"""The AXIS People Counter ("tvpc") CGIs: `<prefix>.api?<command>&...` (spec: axis-tvpc.md).

A request names one command as a bare query key. The CGI (.api viewer, .apioperator operator,
.apiadmin admin) and the command each need a role; the caller needs the higher of the two.
"""
from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from dataclasses import dataclass
from typing import Awaitable, Callable

from aiohttp import web

from counterd.api import formats
from counterd.api.detail import DetailCsv, DetailJson
from counterd.api.exports import HEAVY_BINS, chunks
from counterd.api.logs import generate_logs, show_logs
from counterd.api.params import PARAMS
from counterd.api.query import (BadRequest, check_bin_count, one_value_each, parse_dates, parse_int, parse_query,
                                parse_res)
from counterd.api.replies import plain, refusal
from counterd.api.site import PERSON, SITE, Site, started_bins
from counterd.store import Store
from counterd.store.occupancy import replay, reset_offset
from counterd.store.wallclock import DAY, format_wall, from_wall, real_range_of_days

log = logging.getLogger("counterd.api")

PREFIXES = ("/local/tvpc/", "/local/people-counter/", "/local/occupancy-estimator/",
            "/tvpc/", "/people-counter/", "/occupancy-estimator/")
CGIS = {".api": "viewer", ".apioperator": "operator", ".apiadmin": "admin"}
EXPORT_RES = ("15m", "1h", "24h")
OCCUPANCY_RES = ("1m", "15m", "1h", "24h")
MAX_FORM_BYTES = 4096


@dataclass
class Call:
    request: web.Request
    site: Site
    command: str
    pairs: list[tuple[str, str]]        # every query (and form) parameter, in order
    params: dict[str, str]              # the same, each name once (query.one_value_each)

    def get(self, key: str) -> str | None:
        return self.params.get(key)


Handler = Callable[[Call], Awaitable[web.StreamResponse]]


def json_text(doc) -> web.Response:
    return web.Response(text=formats.compact_json(doc), content_type="application/json")


# ---- live --------------------------------------------------------------------------------------


async def live_sum(call: Call) -> web.Response:
    site = call.site
    now = site.clock()
    _, totals = site.live.today(now)
    return json_text({"serial": site.serial, "name": site.name, "timestamp": site.timestamp(now),
                      "in": totals.get((site.line, "in", PERSON), 0),
                      "out": totals.get((site.line, "out", PERSON), 0)})


async def list_cnt(call: Call) -> web.Response:
    site = call.site
    days = [format_wall(d, "%Y%m%d") for d in site.store.days_with_data()]
    return json_text({"timestamp": site.timestamp(site.clock()), "days": days})


# ---- exports -----------------------------------------------------------------------------------


def people_table(store: Store, site: Site, days: list[int], res: int, now: float) -> formats.Table:
    line = site.line
    out = []
    for day in started_bins(store.binned(days, res, line, PERSON), store.tz, now):
        rows = tuple(formats.Row(s, s + res, (day.count(s, line, "in", PERSON), day.count(s, line, "out", PERSON)))
                     for s in day.starts)
        out.append((day.day, rows))
    return formats.Table(site.name, site.serial, res, formats.PEOPLE_TYPES, tuple(out))


def occupancy_table(store: Store, site: Site, days: list[int], res: int, now: float) -> formats.Table:
    line = site.line
    offset = reset_offset(site.config.occupancy.reset_time)
    out = []
    for day in started_bins(store.binned(days, res, line, PERSON), store.tz, now):
        start, end = real_range_of_days(store.tz, day.day, day.day)
        steps = replay(store, start, min(end, max(start, now)), line, PERSON, offset)
        rows = []
        for s in day.starts:
            real_start, real_end = from_wall(store.tz, s), from_wall(store.tz, s + res)
            # The bin in progress: occupancy and visits as of now.
            occupancy = steps.before(min(real_end, now))
            average = steps.average_visit(real_start, min(real_end, now))
            rows.append(formats.Row(s, s + res, (occupancy, average, day.count(s, line, "in", PERSON),
                                                 day.count(s, line, "out", PERSON))))
        out.append((day.day, tuple(rows)))
    return formats.Table(site.name, site.serial, res, formats.OCCUPANCY_TYPES, tuple(out))


def exporter(open_writer, piece, content_type: str, allowed_res: tuple[str, ...] = EXPORT_RES) -> Handler:
    """A `date`/`res` export. open_writer(store, site, days, res, now) -> a writer (begin, part,
    end); piece(store, site, days, res, now) -> what its part() takes for a run of days. Short
    exports are made whole in the store's pool; heavy ones stream (counterd/api/exports.py)."""

    async def export(call: Call) -> web.StreamResponse:
        site = call.site
        selection = parse_dates(call.get("date"))
        res = parse_res(call.get("res"), allowed_res)
        now = site.clock()
        store = site.store
        days = selection.pick(store.days_with_data())
        check_bin_count(len(days), res, call.get("res") or "15m")

        def write(writer, run: list[int]) -> bytes:       # encoded here: in the export's measured work
            return writer.part(piece(store, site, run, res, now)).encode()

        if len(days) * DAY // res <= HEAVY_BINS:
            def whole() -> str:
                writer = open_writer(store, site, days, res, now)
                return writer.begin().encode() + write(writer, days) + writer.end().encode()
            return web.Response(body=await site.astore.run(whole), content_type=content_type, charset="utf-8")
        with site.exports.slot(call.command):
            writer = await site.exports.run(open_writer, store, site, days, res, now)
            response = web.StreamResponse()
            response.content_type, response.charset = content_type, "utf-8"
            await response.prepare(call.request)
            await response.write(writer.begin().encode())
            try:
                for run in chunks(days):
                    await response.write(await site.exports.run(write, writer, run))
            except sqlite3.Error as exc:       # too late for a 503: end the answer short
                log.error("%s stopped part-way: the counts store failed: %s", call.command, exc)
                if call.request.transport is not None:
                    call.request.transport.abort()     # the client sees a cut answer, not a whole one
                return response
            await response.write(writer.end().encode())
            await response.write_eof()
            return response
    return export


def people_export(kind: str) -> Handler:
    _, content_type = formats.RENDERERS[kind]
    return exporter(lambda store, site, days, res, now: formats.WRITERS[kind](
        _table_head(site, res, formats.PEOPLE_TYPES)), people_table, content_type)


def occupancy_export(kind: str) -> Handler:
    _, content_type = formats.RENDERERS[kind]
    return exporter(lambda store, site, days, res, now: formats.WRITERS[kind](
        _table_head(site, res, formats.OCCUPANCY_TYPES)), occupancy_table, content_type, OCCUPANCY_RES)


def _table_head(site: Site, res: int, types) -> formats.Table:
    return formats.Table(site.name, site.serial, res, types, ())


def detail_export(writer_class, content_type: str) -> Handler:
    return exporter(lambda store, site, days, res, now: writer_class(res, site.config, site.serial,
                                                                     store.lines_and_classes(days)),
                    lambda store, site, days, res, now: started_bins(store.binned(days, res), store.tz, now),
                    content_type)


async def export_cnt(call: Call) -> web.Response:
    raise refusal(501, "export-cnt: the AXIS Store Data Manager file format is not publicly "
                       "documented, so counterd cannot produce it; use export-csv, export-json or export-xml")


# ---- occupancy ---------------------------------------------------------------------------------


async def live_occupancy(call: Call) -> web.Response:
    site = call.site
    now = site.clock()
    offset = reset_offset(site.config.occupancy.reset_time)

    def measure() -> tuple[int, int]:
        store = site.store
        steps = replay(store, now, now, site.line, PERSON, offset)
        return steps.before(now + 1e-6), steps.average_visit(steps.times[0], now)

    occupancy, average = await site.astore.run(measure)
    _, totals = site.live.today(now)
    return json_text({"serial": site.serial, "name": site.name, "timestamp": site.timestamp(now),
                      "unixtime": int(now), "occupancy": occupancy,
                      "total in": totals.get((site.line, "in", PERSON), 0),
                      "total out": totals.get((site.line, "out", PERSON), 0),
                      "average visit time": average})


async def occupancy_reset(call: Call) -> web.Response:
    value = parse_int(call.get("occ"), "occ", default=0, lo=0, hi=1_000_000)
    await call.site.astore.run(call.site.store.add_occupancy_reset, call.site.clock(), value)
    return json_text({"status": "OK", "occupancy": value})


# ---- settings and maintenance -------------------------------------------------------------------


async def cntpos(call: Call) -> web.Response:
    config = call.site.config
    line = config.primary_line
    (x1, y1), (x2, y2) = (line.start, line.end) if line else ((0, 0), (0, 0))
    return json_text({"width": config.camera.width or 0, "height": config.camera.height or 0,
                      "left": round(min(x1, x2)), "right": round(max(x1, x2)),
                      "top": round(min(y1, y2)), "bottom": round(max(y1, y2)),
                      "yfirst": round(y1), "ylast": round(y2), "radius": 0})


async def params_json(call: Call) -> web.Response:
    return json_text(call.site.settings.as_groups(call.site.serial))


_OLD_NAME = re.compile(r"p(\d+)")
_OLD_VALUE = re.compile(r"v(\d+)")


async def setparams(call: Call) -> web.Response:
    """Both forms: `p1=Counter.Name&v1=x&setparams=...` and `setparams&Counter.Name=x`. The
    answer is `OK`; Axis parameters that counterd stores but does not act on are named on the
    lines after it, so a person reading the reply knows nothing changed."""
    params = call.params
    pairs = []
    for key, value in params.items():
        if key == call.command or _OLD_VALUE.fullmatch(key):
            continue
        old = _OLD_NAME.fullmatch(key)
        if old:
            if f"v{old.group(1)}" not in params:
                raise BadRequest(f"setparams: {key}={value[:40]} has no v{old.group(1)}")
            pairs.append((value, params[f"v{old.group(1)}"]))
        else:
            pairs.append((key, value))
    site = call.site
    parsed = site.settings.parse(pairs)
    await site.hub.set_params(parsed, lambda texts: site.astore.run(site.store.set_params, texts))
    kept = [name for name in parsed if not PARAMS[name].effect]
    notes = [f"{name}: stored and shown in params.json; it has no meaning for counterd" for name in kept]
    return plain("\n".join(["OK", *notes]))


async def clear_data(call: Call) -> web.Response:
    await call.site.astore.run(call.site.store.clear_data)
    call.site.live.clear()
    return plain("OK")


async def show_logs_cmd(call: Call) -> web.Response:
    # Log files, not the store: off the loop, without taking one of the store's two workers.
    text = await asyncio.to_thread(show_logs, call.site.log_path)
    return web.Response(text=text, content_type="text/plain")


async def generate_logs_cmd(call: Call) -> web.Response:
    site = call.site
    data = await asyncio.to_thread(generate_logs, site.config, site.log_path)
    stamp = site.timestamp(site.clock())
    return web.Response(body=data, content_type="application/gzip", headers={
        "Content-Disposition": f'attachment; filename="counterd-logs-{stamp}.tar.gz"'})


COMMANDS: dict[str, tuple[str, Handler]] = {
    "live-sum.json": ("viewer", live_sum),
    "list-cnt.json": ("viewer", list_cnt),
    "export-csv": ("viewer", people_export("csv")),
    "export-json": ("viewer", people_export("json")),
    "export-xml": ("viewer", people_export("xml")),
    "export-detail-csv": ("viewer", detail_export(DetailCsv, "text/csv")),
    "export-detail-json": ("viewer", detail_export(DetailJson, "application/json")),
    "export-cnt": ("viewer", export_cnt),
    "cntpos.json": ("viewer", cntpos),
    "params.json": ("viewer", params_json),
    "live-occupancy.json": ("viewer", live_occupancy),
    "occupancy-reset": ("viewer", occupancy_reset),
    "occupancy-export-csv": ("viewer", occupancy_export("csv")),
    "occupancy-export-json": ("viewer", occupancy_export("json")),
    "occupancy-export-xml": ("viewer", occupancy_export("xml")),
    "setparams": ("operator", setparams),
    "clear-data": ("operator", clear_data),
    "show-logs": ("operator", show_logs_cmd),
    "generate-logs": ("operator", generate_logs_cmd),
}


# What a HEAD request must never run: HEAD is for looking, and aiohttp answers it with the GET
# handler unless told otherwise.
CHANGES_STATE = frozenset({"setparams", "clear-data", "occupancy-reset"})


def find_command(pairs: list[tuple[str, str]]) -> str:
    """The one command named; the same one twice (in the URL and in a form body, as the Axis
    doc's setparams example does) is still one."""
    found = list(dict.fromkeys(k for k, _ in pairs if k in COMMANDS))
    if len(found) > 1:
        raise BadRequest(f"command: one per request, got {', '.join(found)}")
    if found:
        return found[0]
    bare = [k for k, v in pairs if v == "" and not _OLD_NAME.fullmatch(k)]
    if bare:
        raise BadRequest(f"command: unknown command {bare[0][:60]!r}")
    raise BadRequest("command: none given (e.g. .api?live-sum.json)")


def cgi_handler(cgi_role: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        site = request.config_dict[SITE]
        # Credentials before anything else: a client that sends none (curl --digest's first
        # request, with an empty body) must get the challenge, not a complaint about its query.
        identity = await site.auth.identify(request, cgi_role, request.path.rpartition("/")[2])
        pairs = parse_query(request.rel_url.raw_query_string)
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            pairs += parse_query(await read_form(request, site.config.api.header_timeout_s))
        command = find_command(pairs)
        params = one_value_each(pairs, may_repeat=command)
        role_needed, handler = COMMANDS[command]
        site.auth.need(request, identity, role_needed, command)
        if request.method == "HEAD" and command in CHANGES_STATE:
            raise web.HTTPMethodNotAllowed("HEAD", ["GET", "POST"], content_type="text/plain",
                                           text=f"{command}: changes data, so only GET or POST runs it, never HEAD\n")
        return await handler(Call(request, site, command, pairs, params))
    return handle


async def read_form(request: web.Request, timeout_s: float) -> bytes:
    if (request.content_length or 0) > MAX_FORM_BYTES:
        raise BadRequest(f"body: too long (at most {MAX_FORM_BYTES} bytes)")
    try:
        async with asyncio.timeout(timeout_s):      # a body trickled byte by byte holds a connection
            form = await request.read()
    except TimeoutError:
        raise BadRequest(f"body: not received within {timeout_s:g} s (api.header_timeout_s)") from None
    if len(form) > MAX_FORM_BYTES:
        raise BadRequest(f"body: too long (at most {MAX_FORM_BYTES} bytes)")
    return form


async def appdata_dtd(request: web.Request) -> web.Response:
    """The DTD export-xml names; public like any schema, so clients can validate without a login."""
    return web.Response(text=formats.APPDATA_DTD, content_type="application/xml-dtd")


def routes() -> list[web.RouteDef]:
    table = []
    for prefix in PREFIXES:
        for cgi, role in CGIS.items():
            table.append(web.get(prefix + cgi, cgi_handler(role)))
            table.append(web.post(prefix + cgi, cgi_handler(role)))
        table.append(web.get(prefix + "appdata.dtd", appdata_dtd))
    return table
