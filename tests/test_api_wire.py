"""Axis wire details real clients depend on: the doc's own setparams form, the Axis parameter
names they send, today's bins, characters XML cannot carry, HEAD never changing data, and one
rule for repeated parameters (issue 12 points 1, 3, 6; issue 13 points 14, 16, 18)."""
from __future__ import annotations

import csv
import io
import json

import aiohttp
import pytest
from lxml import etree

from api_support import NAME, NOW, PASSWORDS, SERIAL, ev, make_config
from api_support import clock, client, store  # noqa: F401  (fixtures)
from counterd.api import formats
from counterd.api.app import make_app
from counterd.api.query import MAX_FIELDS, MAX_QUERY_BYTES
from counterd.api.query import MAX_BINS
from counterd.config import ConfigError, config_from_dict

API = "/local/people-counter/.api?"
OPERATOR = "/local/people-counter/.apioperator?"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def basic(user: str) -> dict:
    return {"Authorization": aiohttp.encode_basic_auth(user, PASSWORDS[user])}


async def text_of(response, status: int = 200) -> str:
    text = await response.text()
    assert response.status == status, text
    return text


async def params_json(client) -> dict:
    return json.loads(await text_of(await client.get(API + "params.json")))


# ---- setparams (issue 12 points 1 and 3) ---------------------------------------------------------


async def test_the_axis_doc_setparams_form_with_the_command_in_url_and_body(client):
    """The doc's example verbatim: URL `.apioperator?setparams`, form body repeating it."""
    response = await client.post(OPERATOR + "setparams",
                                 data="&p1=Counter.Enable&v1=0&p2=Counter.Height&v2=280&setparams=needstobeincluded",
                                 headers={**FORM, **basic("otto")})
    lines = (await text_of(response)).splitlines()
    assert lines[0] == "OK"
    assert lines[1:] == ["Counter.Height: stored and shown in params.json; it has no meaning for counterd"]
    counter = (await params_json(client))["Counter"]
    assert (counter["Enabled"], counter["Height"]) == (0, 280)
    # Two different commands are still refused, by name.
    refused = await client.post(OPERATOR + "setparams", data="clear-data=1",
                                headers={**FORM, **basic("otto")})
    assert "setparams, clear-data" in await text_of(refused, 400)


async def test_axis_parameter_names_real_clients_send_are_kept_and_read_back(aiohttp_client, tmp_path,
                                                                          store, clock):
    config = make_config(tmp_path, anonymous_viewer=True)
    client = await aiohttp_client(make_app(config, store, clock=clock))
    before = (await params_json(client))["Counter"]
    assert (before["MasterPort"], before["EventListenerPort"], before["EventListenerMessage"]) == \
        (4066, 23456, "passage")                        # the device's defaults (spec: params.json)
    assert "Height" not in before and "SlavePass" not in before
    reply = await text_of(await client.get(
        OPERATOR + "setparams&Counter0SlavePort=4070&Counter.SlavePass=s3cret&Counter.Name=Lobby",
        headers=basic("otto")))
    assert reply.splitlines()[0] == "OK"
    assert [line.split(":")[0] for line in reply.splitlines()[1:]] == ["Counter.SlavePort", "Counter.SlavePass"]
    # Kept across a restart (a new app on the same store); the password is never shown back.
    again = await aiohttp_client(make_app(config, store, clock=clock))
    counter = (await params_json(again))["Counter"]
    assert (counter["Name"], counter["SlavePort"], counter["SlavePass"]) == ("Lobby", 4070, "********")
    assert "s3cret" not in json.dumps(await params_json(again))
    # A name no client sends (a typo) is still refused, naming it, and nothing is stored.
    typo = await client.get(OPERATOR + "setparams&Counter.Name=X&Counter.Heigth=280", headers=basic("otto"))
    assert "Counter.Heigth" in await text_of(typo, 400)
    assert (await params_json(client))["Counter"]["Name"] == "Lobby"


@pytest.mark.parametrize("query", ["setparams&Counter.Name=a&Counter.Name=b",
                                   "setparams&Counter.Enable=1&Counter.Enabled=0",
                                   "p1=Counter.Name&v1=a&p2=Counter.Name&v2=b&setparams=x"])
async def test_setparams_naming_one_parameter_twice_is_refused(client, query):
    response = await client.get(OPERATOR + query, headers=basic("otto"))
    assert "more than once" in await text_of(response, 400)
    assert (await params_json(client))["Counter"]["Name"] == NAME


# ---- today's bins (issue 12 point 6) -------------------------------------------------------------


async def test_today_stops_at_the_bin_in_progress_in_every_export(client, store):
    store.add_events([ev(NOW - 60)])                   # 12:33:56, in the 12:30-12:45 bin
    csv_rows = list(csv.DictReader(io.StringIO(await text_of(await client.get(API + "export-csv&date=20190318")))))
    assert len(csv_rows) == 51
    assert (csv_rows[-1]["Interval start"], csv_rows[-1]["Interval stop"]) == ("2019-03-18 12:30:00",
                                                                              "2019-03-18 12:45:00")
    assert csv_rows[-1]["Pedestrians coming in"] == "1"       # the counts so far
    data = json.loads(await text_of(await client.get(API + "export-json&date=20190318")))["data"]
    assert len(data) == 51 and list(data)[-1] == "20190318124500" and data["20190318124500"] == [1, 0]
    xml = etree.fromstring((await text_of(await client.get(API + "export-xml&date=20190318"))).encode())
    groups = xml.findall("cntset/cntgroup")
    assert len(groups) == 51 and groups[-1].get("time") == "12:45"
    occupancy = json.loads(await text_of(await client.get(API + "occupancy-export-json&date=20190318&res=1h")))
    assert list(occupancy["data"])[-1] == "20190318130000" and len(occupancy["data"]) == 13
    assert occupancy["data"]["20190318130000"][2:] == [1, 0]
    detail = json.loads(await text_of(await client.get(API + "export-detail-json&date=20190318&res=1h")))
    assert list(detail["data"])[-1] == "20190318130000"
    day = json.loads(await text_of(await client.get(API + "export-json&date=20190318&res=24h")))["data"]
    assert day == {"20190319000000": [2, 0]}           # the day bin has begun: its counts so far
    # A past day keeps all 96 bins, zeros included.
    assert len(json.loads(await text_of(await client.get(API + "export-json&date=20190316")))["data"]) == 96


# ---- characters XML cannot carry (issue 13 point 14) ---------------------------------------------


async def test_a_name_xml_cannot_carry_is_refused_and_export_xml_stays_well_formed(client):
    response = await client.get(OPERATOR + "setparams&Counter.Name=%EF%BF%BF", headers=basic("otto"))
    assert "U+FFFF" in await text_of(response, 400)
    xml = await text_of(await client.get(API + "export-xml&date=20190316&res=24h"))
    assert etree.fromstring(xml.encode()).find("cntset").get("name") == NAME


def test_export_xml_drops_characters_xml_cannot_carry_from_older_data():
    table = formats.Table("Lobby\uffff\x01", SERIAL, 86400, formats.PEOPLE_TYPES,
                          ((1552694400, (formats.Row(1552694400, 1552780800, (3, 1)),)),))
    doc = etree.fromstring(formats.to_xml(table).encode())
    assert doc.find("cntset").get("name") == "Lobby"


def test_config_refuses_a_camera_name_xml_cannot_carry():
    with pytest.raises(ConfigError, match="camera.name"):
        config_from_dict({"camera": {"name": "Lobby\uffff"}}, "<test>")


# ---- HEAD never changes data (issue 13 point 16) -------------------------------------------------


@pytest.mark.parametrize("command", ["clear-data", "setparams&Counter.Name=Lobby", "occupancy-reset&occ=7"])
async def test_head_never_runs_a_command_that_changes_data(client, store, command):
    cgi = API if command.startswith("occupancy") else OPERATOR
    response = await client.head(cgi + command, headers=basic("ada"))
    assert response.status == 405 and set(response.headers["Allow"].split(",")) == {"GET", "POST"}
    assert store.days_with_data() != [] and store.last_occupancy_reset(NOW + 1) is None
    assert (await params_json(client))["Counter"]["Name"] == NAME


async def test_head_of_a_read_command_still_answers(client):
    response = await client.head(API + "export-csv&date=20190316")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")


# ---- one rule for repeated parameters (issue 13 point 18) ----------------------------------------


@pytest.mark.parametrize("path, named", [
    (API + "export-csv&date=20190316&date=20190318", "date"),
    (API + "export-json&res=1h&res=15m", "res"),
    (API + "occupancy-reset&occ=1&occ=2", "occ"),
    ("/api/v1/counts?date=20190316&res=1h&res=15m", "res"),
    ("/api/v1/events?limit=5&limit=7", "limit"),
])
async def test_a_repeated_parameter_is_refused_by_name_on_both_apis(client, store, path, named):
    text = await text_of(await client.get(path), 400)
    assert text == f"{named}: given more than once (each parameter at most once)\n"
    assert store.last_occupancy_reset(NOW + 1) is None


async def test_openapi_states_the_limits(client):
    doc = json.loads(await text_of(await client.get("/api/v1/openapi.json")))
    assert doc["x-limits"] == {"max_query_bytes": MAX_QUERY_BYTES, "max_parameters": MAX_FIELDS,
                               "repeated_parameter": "refused (400)", "max_bins_per_counts_request": MAX_BINS}
    assert "at most once" in doc["info"]["description"]
    too_many = "&".join(f"p{i}=1" for i in range(MAX_FIELDS + 1))
    assert f"more than {MAX_FIELDS}" in await text_of(await client.get("/api/v1/live?" + too_many), 400)
