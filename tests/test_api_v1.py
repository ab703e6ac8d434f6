"""/api/v1/: counts per line, direction and class with coverage, events, alerts, live, OpenAPI;
and alerts POSTed to a webhook."""
from __future__ import annotations

import asyncio

from aiohttp import web

from api_support import NOW, ev, local, make_config, record
from api_support import clock, client, store  # noqa: F401  (fixtures)
from counterd.api.app import make_app


async def get_json(client, path):
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_counts_every_line_and_class_with_coverage(client):
    doc = await get_json(client, "/api/v1/counts?date=20190316&res=1h")
    assert doc["timezone"] == "Europe/Berlin" and doc["res"] == "1h" and len(doc["bins"]) == 24
    one = doc["bins"][1]
    assert (one["start"], one["end"], one["coverage_s"]) == ("2019-03-16T01:00:00", "2019-03-16T02:00:00", 3600.0)
    assert one["counts"] == [
        {"line": "door", "direction": "in", "class": "car", "count": 1},
        {"line": "door", "direction": "in", "class": "person", "count": 3},
        {"line": "door", "direction": "out", "class": "person", "count": 1},
        {"line": "exit", "direction": "in", "class": "person", "count": 1}]
    cars = await get_json(client, "/api/v1/counts?date=20190316&res=24h&class=car")
    assert [b["counts"] for b in cars["bins"]] == [[{"line": "door", "direction": "in", "class": "car", "count": 1}]]
    today = await get_json(client, "/api/v1/counts?res=15m&line=door&direction=in")   # default: today
    # Today stops at the bin in progress (NOW is 12:34:56): 00:00 to 12:30.
    assert len(today["bins"]) == 51 and today["bins"][-1]["start"] == "2019-03-18T12:30:00"
    assert sum(c["count"] for b in today["bins"] for c in b["counts"]) == 1
    assert sum(b["coverage_s"] for b in today["bins"]) == 3600.0


async def test_counts_refuses_huge_1m_requests(client, store):
    for day in range(40):                                  # 40 days with data at 1m: 57600 bins
        start = local(2019, 1, 1, 12) + day * 86400
        store.add_coverage(start, start + 60)
    response = await client.get("/api/v1/counts?date=all&res=1m")
    assert response.status == 400 and (await response.text()).startswith("date: ")


async def test_events_and_alerts(client, store):
    events = (await get_json(client, f"/api/v1/events?since={local(2019, 3, 16)}&until={local(2019, 3, 17)}&line=door&limit=2"))["events"]
    assert [(e["time"], e["direction"], e["class"]) for e in events] == [
        ("2019-03-16T01:10:40", "in", "car"), ("2019-03-16T01:20:00", "out", "person")]
    await record(client.app, [ev(NOW - 3, track=7), ev(NOW - 2, track=8), ev(NOW - 1, "out", line="exit", track=9)])
    alerts = (await get_json(client, "/api/v1/alerts"))["alerts"]
    assert [(a["kind"], a["line"], a["track_id"]) for a in alerts][-2:] == [("tailgating", "door", 8),
                                                                            ("wrong-way", "exit", 9)]
    assert alerts[-1]["time"] == "2019-03-18T12:34:55"


async def test_live_and_openapi(client):
    live = await get_json(client, "/api/v1/live")
    assert live["day"] == "2019-03-18" and live["primary_line"] == "door" and live["occupancy"] == 1
    assert live["counts"] == [{"line": "door", "direction": "in", "class": "person", "count": 1}]
    spec = await get_json(client, "/api/v1/openapi.json")
    served = {r.resource.canonical for r in client.app.router.routes() if r.resource.canonical.startswith("/api/v1/")}
    assert spec["openapi"].startswith("3.") and set(spec["paths"]) == served      # every endpoint described
    assert {"/api/v1/counts", "/api/v1/lines", "/api/v1/snapshot.jpg", "/api/v1/live/stream"} <= served
    assert set(spec["paths"]["/api/v1/lines"]) == {"get", "put"}


async def test_alerts_are_posted_to_the_webhook(aiohttp_client, aiohttp_server, tmp_path, store, clock):
    received: asyncio.Queue = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put(await request.json())
        return web.Response(text="ok")

    sink = web.Application()
    sink.router.add_post("/hook", hook)
    sink_server = await aiohttp_server(sink)
    config = make_config(tmp_path, webhook_url=str(sink_server.make_url("/hook")))
    client = await aiohttp_client(make_app(config, store, clock=clock))
    await record(client.app, [ev(NOW, "out", line="exit", track=11)])
    alert = await asyncio.wait_for(received.get(), timeout=10)
    assert (alert["kind"], alert["line"], alert["track_id"]) == ("wrong-way", "exit", 11)


async def test_a_failing_webhook_never_logs_its_password(aiohttp_client, aiohttp_server, tmp_path, store, clock):
    import logging
    sink = web.Application()

    async def hook(request: web.Request) -> web.Response:
        request.transport.abort()            # the post fails mid-answer
        return web.Response(text="never")

    sink.router.add_post("/hook", hook)
    sink_server = await aiohttp_server(sink)
    url = str(sink_server.make_url("/hook")).replace("http://", "http://alerts:hook-secret-pw@")
    warned: asyncio.Queue = asyncio.Queue()
    loop = asyncio.get_running_loop()

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            loop.call_soon_threadsafe(warned.put_nowait, record.getMessage())

    handler = Catch(logging.WARNING)
    logging.getLogger("counterd.api").addHandler(handler)
    try:
        client = await aiohttp_client(make_app(make_config(tmp_path, webhook_url=url), store, clock=clock))
        await record(client.app, [ev(NOW, "out", line="exit", track=12)])
        text = await asyncio.wait_for(warned.get(), timeout=10)
    finally:
        logging.getLogger("counterd.api").removeHandler(handler)
    assert text.startswith("alert webhook http://alerts:***@") and "hook-secret-pw" not in text
