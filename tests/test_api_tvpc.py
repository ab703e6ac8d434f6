"""The Axis tvpc endpoints: exact bodies per the spec's examples, every date and res form, DST,
days without data, the parsing rules of real clients, settings, maintenance and bad input."""
from __future__ import annotations

import csv
import io
import sqlite3
import json
import tarfile

import aiohttp
import pytest
from lxml import etree

from api_support import BERLIN, NAME, NOW, PASSWORDS, SERIAL, ev, local, make_config, record
from counterd.api.site import SITE
from api_support import clock, client, store  # noqa: F401  (fixtures)
from counterd.api.app import make_app
from counterd.store import Store

API = "/local/people-counter/.api?"
OPERATOR = "/local/people-counter/.apioperator?"
HEADER = ("Interval start,Interval stop,Camera serial number,Counter name,"
          "Pedestrians coming in,Pedestrians going out")


async def body(client, path, status=200, **kwargs) -> str:
    response = await client.get(path, **kwargs)
    text = await response.text()
    assert response.status == status, text
    return text


async def test_live_sum_exact(client, store):
    assert await body(client, API + "live-sum.json") == (
        f'{{"serial":"{SERIAL}","name":"{NAME}","timestamp":"20190318123456","in":1,"out":0}}')
    await record(client.app, [ev(NOW - 5, "out")])
    assert json.loads(await body(client, API + "live-sum.json"))["out"] == 1


async def test_list_cnt_lists_only_days_with_data(client):
    assert await body(client, API + "list-cnt.json") == '{"timestamp":"20190318123456","days":["20190316","20190318"]}'


async def test_export_csv_rows_and_header_keyed_reading(client):
    text = await body(client, API + "export-csv&date=20190316&res=1h")
    lines = text.split("\n")
    assert lines[0] == HEADER and text.endswith("\n") and "\r" not in text
    assert lines[1] == f"2019-03-16 00:00:00,2019-03-16 01:00:00,{SERIAL},{NAME},0,0"
    assert lines[2] == f"2019-03-16 01:00:00,2019-03-16 02:00:00,{SERIAL},{NAME},3,1"
    assert len(lines) == 1 + 24 + 1
    rows = list(csv.DictReader(io.StringIO(text)))          # the PHP client's header-keyed access
    bin_07_08 = next(r for r in rows if r["Interval stop"].endswith("08:00:00"))
    assert bin_07_08["Interval start"] == "2019-03-16 07:00:00" and bin_07_08["Camera serial number"] == SERIAL
    assert sum(int(r["Pedestrians coming in"]) for r in rows) == 3


async def test_export_csv_24h_stops_at_next_midnight(client):
    text = await body(client, API + "export-csv&date=20190316-20190318&res=24h")
    assert text == (f"{HEADER}\n2019-03-16 00:00:00,2019-03-17 00:00:00,{SERIAL},{NAME},3,1\n"
                    f"2019-03-18 00:00:00,2019-03-19 00:00:00,{SERIAL},{NAME},1,0\n")


# NOW is 2019-03-18 12:34:56: that day (today) stops at the bin in progress, 12:30 at 15m (51
# bins), 12:00 at 1h (13 bins); a past day has every bin.
@pytest.mark.parametrize("query, days, row_count", [
    ("export-csv", ["2019-03-16", "2019-03-18"], 96 + 51),            # defaults: all, 15m
    ("export-csv&date=all&res=15m", ["2019-03-16", "2019-03-18"], 96 + 51),
    ("export-csv&date=20190318&res=1h", ["2019-03-18"], 13),
    ("export-csv&date=20190301-20190317&res=1h", ["2019-03-16"], 24),
    ("export-csv&date=20190318,20190316,20190317&res=24h", ["2019-03-16", "2019-03-18"], 2),
    ("export-csv&date=20190317", [], 0),                               # a day without data
])
async def test_every_date_form(client, query, days, row_count):
    rows = list(csv.DictReader(io.StringIO(await body(client, API + query))))
    assert sorted({r["Interval start"][:10] for r in rows}) == days
    assert [r["Interval start"][:10] for r in rows] == sorted(r["Interval start"][:10] for r in rows)
    assert len(rows) == row_count


async def test_export_json_end_keys_and_uva_rule(client):
    text = await body(client, API + "export-json&res=24h&date=20190316")
    assert text == (f'{{"counter":{{"name":"{NAME}","serial":"{SERIAL}","delta":86400,"types":'
                    f'{{"Pedestrians coming in":3,"Pedestrians going out":4}}}},"data":{{"20190317000000":[3,1]}}}}')
    data = json.loads(text)
    assert data["counter"]["name"] == NAME and data["data"]["20190317000000"][0] == 3   # gate-counter.ts
    quarter = json.loads(await body(client, API + "export-json&date=20190316"))["data"]
    keys = list(quarter)
    assert len(keys) == 96 and keys[0] == "20190316001500" and keys[-1] == "20190317000000"
    assert quarter["20190316011500"] == [3, 0] and quarter["20190316013000"] == [0, 1]


async def test_export_xml_validates_against_served_dtd(client):
    text = await body(client, API + "export-xml&date=20190316&res=1h")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE countdata SYSTEM "appdata.dtd">\n')
    dtd = etree.DTD(io.StringIO(await body(client, "/local/people-counter/appdata.dtd")))
    doc = etree.fromstring(text.encode())
    assert dtd.validate(doc), dtd.error_log.filter_from_errors()
    (cntset,) = doc.findall("cntset")
    assert cntset.get("date") == "2019-03-16" and cntset.get("starttime") == "1552694400"
    assert cntset.get("delta") == "3600" and cntset.get("name") == NAME
    groups = cntset.findall("cntgroup")
    assert len(groups) == 24
    assert [int(g.get("endtime")) - 1552694400 for g in groups] == [3600 * k for k in range(1, 25)]  # start + k*delta
    assert groups[1].get("time") == "02:00"
    assert [(c.get("typeid"), c.text) for c in groups[1].findall("cnt")] == [("3", "3"), ("4", "1")]


async def test_dst_days(aiohttp_client, tmp_path, clock):
    clock.now = local(2024, 11, 1)
    store = Store(tmp_path / "dst.db", BERLIN)
    for day in ((2024, 3, 31), (2024, 10, 27)):
        store.add_coverage(local(*day), local(*day) + 30 * 3600)
    store.add_events([ev(local(2024, 3, 31, 3, 30)), ev(local(2024, 10, 27, 2, 30)),
                      ev(local(2024, 10, 27, 2, 30) + 3600)])
    client = await aiohttp_client(make_app(make_config(tmp_path, anonymous_viewer=True), store, clock=clock))
    spring = list(csv.DictReader(io.StringIO(await body(client, API + "export-csv&date=20240331&res=1h"))))
    assert len(spring) == 23 and not any(r["Interval start"].endswith("02:00:00") for r in spring)
    assert len((await body(client, API + "export-csv&date=20240331")).splitlines()) == 1 + 92
    autumn = json.loads(await body(client, API + "export-json&date=20241027&res=1h"))["data"]
    assert len(autumn) == 24 and autumn["20241027030000"] == [2, 0]
    day = json.loads(await body(client, API + "export-json&date=20241027&res=24h"))["data"]
    assert day == {"20241028000000": [2, 0]}
    store.close()


async def test_cntpos_from_primary_line(client):
    assert await body(client, API + "cntpos.json") == (
        '{"width":320,"height":240,"left":0,"right":296,"top":88,"bottom":152,"yfirst":88,"ylast":152,"radius":0}')


def basic(user: str) -> dict:
    return {"headers": {"Authorization": aiohttp.encode_basic_auth(user, PASSWORDS[user])}}


async def test_params_and_setparams_both_forms_persist(aiohttp_client, tmp_path, store, clock):
    config = make_config(tmp_path)
    client = await aiohttp_client(make_app(config, store, clock=clock))
    otto = basic("otto")
    params = json.loads(await body(client, API + "params.json", **otto))
    assert params["Counter"]["Name"] == NAME and params["Counter"]["Enabled"] == 1
    assert params["Static"]["Serial"] == SERIAL and "Version" in params["Build"]
    assert await body(client, OPERATOR + "setparams&Counter.Name=Lobby&Counter.PrimaryLine=exit", **otto) == "OK\n"
    response = await client.post(OPERATOR.rstrip("?"), data="p1=Counter.Enable&v1=0&setparams=needstobeincluded",
                                 headers={"Content-Type": "application/x-www-form-urlencoded", **otto["headers"]})
    assert response.status == 200 and await response.text() == "OK\n"
    # The counting change applies at once: the Axis formats now carry the exit line's people.
    assert json.loads(await body(client, API + "live-sum.json", **otto))["name"] == "Lobby"
    assert f"2019-03-16 00:00:00,2019-03-17 00:00:00,{SERIAL},Lobby,1,0" in \
        await body(client, API + "export-csv&res=24h", **otto)
    assert client.app[SITE].config.counting.enabled is False
    # Persisted: a new app on the same store starts with the set values; switching back shows
    # the door's counts again, so nothing was lost.
    again = await aiohttp_client(make_app(config, store, clock=clock))
    params = json.loads(await body(again, API + "params.json", **otto))["Counter"]
    assert (params["Name"], params["PrimaryLine"], params["Enabled"]) == ("Lobby", "exit", 0)
    assert again.app[SITE].config.counting.enabled is False
    await body(again, OPERATOR + "setparams&Counter.PrimaryLine=door", **otto)
    assert ",Lobby,3,1\n" in await body(again, API + "export-csv&res=24h", **otto)


async def test_setparams_bad_names_and_values_change_nothing(client, store):
    for query, named in [("setparams&Counter.Heigth=280", "Counter.Heigth"),
                         ("setparams&Counter.Height=2.8m", "Counter.Height"),
                         ("setparams&Counter.PrimaryLine=nowhere", "Counter.PrimaryLine"),
                         ("p1=Counter.Hysteresis&v1=-4&setparams=x", "Counter.Hysteresis"),
                         ("p1=Counter.Name&setparams=x", "v1")]:
        response = await client.get(OPERATOR + query, **basic("ada"))
        text = await response.text()
        assert response.status == 400 and named in text and text.count("\n") == 1
    params = json.loads(await body(client, API + "params.json"))["Counter"]
    assert (params["Name"], params["PrimaryLine"], params["Hysteresis"]) == (NAME, "door", 2.0)


async def test_occupancy_live_reset_and_exports(client, store, clock):
    occupancy = json.loads(await body(client, API + "live-occupancy.json"))
    # Keys with spaces, as sqs-occupancy-get and the UVA harvester read them.
    assert list(occupancy) == ["serial", "name", "timestamp", "unixtime", "occupancy", "total in",
                               "total out", "average visit time"]
    assert (occupancy["occupancy"], occupancy["total in"], occupancy["total out"]) == (1, 1, 0)
    assert occupancy["unixtime"] == int(NOW)
    reset = await client.get("/local/occupancy-estimator/.api?occupancy-reset&occ=5")
    assert reset.status == 200 and (await reset.json())["status"] == "OK"     # daniel-falk's check
    clock.now += 60
    await record(client.app, [ev(clock.now - 30), ev(clock.now - 20), ev(clock.now - 10, "out")])
    occupancy = json.loads(await body(client, "/local/occupancy-estimator/.api?live-occupancy.json"))
    assert (occupancy["occupancy"], occupancy["total in"], occupancy["total out"]) == (6, 3, 1)
    # Day export: [occupancy at the bin end, average visit time, total in, total out].
    data = json.loads(await body(client, "/tvpc/.apioperator?occupancy-export-json&res=24h&date=20190316",
                                   **basic("otto")))
    assert data["counter"]["delta"] == 86400
    assert data["counter"]["types"] == {"Occupancy": 64, "Average Time": 65, "Total In": 66, "Total Out": 67}
    (row,) = data["data"].values()
    assert row[0] == 2 and row[2:] == [3, 1]            # UVA reads [2] as the day's Total In
    # 3 people entered at 01:10:00/10/20 and one left at 01:20: person-seconds / ins.
    expected = round(((600 + 590 + 580) + 2 * (local(2019, 3, 17) - local(2019, 3, 16, 1, 20))) / 3)
    assert row[1] == expected
    minutes = await body(client, API + "occupancy-export-csv&res=1m&date=20190316")
    lines = minutes.splitlines()
    assert lines[0].endswith("Counter name,Occupancy,Average Time,Total In,Total Out") and len(lines) == 1 + 1440
    fields = lines[71].split(",")
    assert fields[:2] == ["2019-03-16 01:10:00", "2019-03-16 01:11:00"]
    assert fields[4] == "3" and fields[6:] == ["3", "0"]
    xml = await body(client, API + "occupancy-export-xml&res=1h&date=20190316")
    assert '<type typeid="64">Occupancy</type>' in xml and xml.count("<cntgroup ") == 24


async def test_clear_data_needs_operator(client, store):
    denied = await client.get(OPERATOR + "clear-data")      # anonymous viewer may not
    assert denied.status == 401
    viewer = await client.get(OPERATOR + "clear-data", **basic("vera"))
    assert viewer.status == 401 and "operator" in await viewer.text()      # a fresh challenge, as a device
    assert len(store.days_with_data()) == 2
    assert await body(client, OPERATOR + "clear-data", **basic("otto")) == "OK\n"
    assert json.loads(await body(client, API + "list-cnt.json"))["days"] == []
    assert json.loads(await body(client, API + "live-sum.json"))["in"] == 0


async def test_show_logs_and_generate_logs(client, tmp_path):
    (tmp_path / "counterd.log.1").write_text("2019-03-18T10:00:00+0100 INFO counterd.daemon: started\n")
    (tmp_path / "counterd.log").write_text("2019-03-18T12:00:00+0100 CRITICAL counterd.camera: gone\n")
    text = await body(client, OPERATOR + "show-logs", **basic("otto"))
    assert text.splitlines() == ["2019-03-18T10:00:00+0100 <INFO> counterd.daemon: started",
                                 "2019-03-18T12:00:00+0100 <CRITICAL> counterd.camera: gone"]
    response = await client.get(OPERATOR + "generate-logs", **basic("otto"))
    assert response.status == 200 and response.content_type == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(await response.read()), mode="r:gz") as tar:
        names = tar.getnames()
        resolved = tar.extractfile("config/resolved.json").read().decode()
    assert {"logs/counterd.log", "logs/counterd.log.1", "config/resolved.json"} <= set(names)
    assert '"ha1": "<redacted>"' in resolved
    assert not any(user.ha1.reveal() in resolved for user in make_config().users)


async def test_export_cnt_is_501(client):
    response = await client.get(API + "export-cnt")
    assert response.status == 501 and "not publicly documented" in await response.text()


@pytest.mark.parametrize("query, named", [
    ("export-csv&res=7m", "res"),
    ("export-json&date=20190230", "date"),
    ("export-xml&date=2019031", "date"),
    ("export-csv&date=20190320-20190310", "date"),
    ("export-csv&date=20190316,tomorrow", "date"),
    ("occupancy-export-json&res=2h", "res"),
    ("occupancy-reset&occ=-3", "occ"),
    ("occupancy-reset&occ=many", "occ"),
    ("launch-missiles", "command"),
    ("", "command"),
    ("export-csv&live-sum.json", "command"),
    ("export-csv&date=%FF%FE", "query"),
    ("export-csv&date=" + "2" * 5000, "query"),
])
async def test_bad_input_is_400_naming_the_parameter(client, store, query, named):
    before = store.counts_between(*_all_time())
    response = await client.get(API + query)
    text = await response.text()
    assert response.status == 400 and response.content_type == "text/plain"
    assert text.startswith(named + ":") and text.count("\n") == 1
    assert store.counts_between(*_all_time()) == before


def _all_time():
    from datetime import datetime, timezone
    return datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc)


async def test_every_base_path_answers(client):
    for prefix in ("/local/tvpc/", "/local/people-counter/", "/local/occupancy-estimator/",
                   "/tvpc/", "/people-counter/", "/occupancy-estimator/"):
        assert json.loads(await body(client, prefix + ".api?live-sum.json"))["serial"] == SERIAL
        assert "<!ELEMENT countdata" in await body(client, prefix + "appdata.dtd")


async def test_detail_exports_carry_every_line_and_class(client):
    rows = list(csv.DictReader(io.StringIO(await body(client, API + "export-detail-csv&date=20190316&res=24h"))))
    assert len(rows) == 2 * 6           # one bin x (door, exit) x the six default classes
    by_key = {(r["Line"], r["Class"]): (r["Coming in"], r["Going out"], r["Analysed seconds"]) for r in rows}
    assert by_key[("door", "person")] == ("3", "1", "86400")
    assert by_key[("door", "car")] == ("1", "0", "86400") and by_key[("exit", "person")] == ("1", "0", "86400")
    assert by_key[("exit", "bus")] == ("0", "0", "86400")
    data = json.loads(await body(client, API + "export-detail-json&date=20190316&res=1h"))
    assert data["counter"]["lines"] == ["door", "exit"] and len(data["data"]) == 24
    hour = data["data"]["20190316020000"]
    assert hour["coverage"] == 3600 and hour["counts"]["door"]["person"] == [3, 1]
    # The Axis export of the same hour is unchanged: people of the primary line only.
    assert json.loads(await body(client, API + "export-json&date=20190316&res=1h"))["data"]["20190316020000"] == [3, 1]


async def test_too_many_bins_is_400(client, store):
    for day in range(75):                                   # 75 days with data at 1m: 108 000 bins
        start = local(2019, 1, 1, 12) + day * 86400
        store.add_coverage(start, start + 60)
    response = await client.get(API + "occupancy-export-csv&res=1m")
    assert response.status == 400 and (await response.text()).startswith("date: ")


async def test_a_failing_store_is_503_not_500(client, store, monkeypatch):
    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(store, "binned", broken)
    response = await client.get(API + "export-csv")
    assert response.status == 503 and await response.text() == "store: disk I/O error\n"
