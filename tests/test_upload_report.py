"""Hourly report content, the [upload] config and its secret, checked against the fake service."""
from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from central_service import DJANGO_500, UNAUTHORIZED, CentralService
from counterd.cli import main
from counterd.config import ConfigError, Secret, config_from_dict, config_to_dict
from counterd.upload.pin import PinError, read_pin
from counterd.upload.report import build_report, warning_code
from counterd.report_schema import WARNING_NO_COVERAGE, WARNING_OK, WARNING_PARTIAL
from counterd.upload.sender import Outcome, classify
from upload_fakes import PIN, FakeStore, upload_config

HOUR_10 = datetime(2026, 11, 21, 10, tzinfo=UTC)
BUILT = datetime(2026, 11, 21, 11, 5, 7, 123456, tzinfo=UTC)
YOLO_HEADER = "image_proc,image_capt,camera_ref,model_name,car,pedestrian,cyclist,motorcycle,bus,lorry,van,taxi,warnings"


def busy_hour() -> FakeStore:
    store = FakeStore()
    at = HOUR_10 + timedelta(minutes=20)
    store.count(at, "door", "in", "person", 3)
    store.count(at, "door", "out", "person", 2)
    store.count(at, "pavement", "in", "truck", 4)
    store.count(at, "pavement", "out", "bicycle", 1)
    store.count(at, "door", "in", "dog", 7)                          # not a reported class
    store.count(HOUR_10 + timedelta(hours=1), "door", "in", "car")  # the next hour
    store.cover(HOUR_10, HOUR_10 + timedelta(hours=1))
    return store


def csv_lines(data: bytes) -> list[str]:
    return gzip.decompress(data).decode("utf-8").splitlines()


BOTH_LINES = ["door", "pavement"]


def test_report_is_one_gzipped_row_with_the_exact_header():
    report = build_report(busy_hour(), upload_config(lines=BOTH_LINES), HOUR_10 + timedelta(minutes=59), BUILT)
    assert report.data[:2] == b"\x1f\x8b"
    text = gzip.decompress(report.data)
    assert not text.startswith(b"\xef\xbb\xbf")
    assert csv_lines(report.data) == [
        YOLO_HEADER,
        "2026-11-21 11:05:07+00:00,2026-11-21 10:00:00+00:00,entrance-north,yolo,0,5,1,0,0,4,0,0,0"]
    assert report.name == "20261121T10Z_entrance-north.csv.gz"
    assert report.hour == HOUR_10


def test_only_the_primary_line_is_reported_by_default():
    """Summing every line would count a person who crosses two lines twice."""
    config = config_from_dict({"upload": {"camera_ref": "cam"}, "counting": {"primary_line": "pavement"},
                               "lines": [{"name": n, "start": [0, i], "end": [10, i]}
                                         for i, n in enumerate(BOTH_LINES)]}, "<test>")
    assert config.upload.lines == ("pavement",)
    fields = csv_lines(build_report(busy_hour(), config.upload, HOUR_10, BUILT).data)[1].split(",")
    assert dict(zip(YOLO_HEADER.split(","), fields))["pedestrian"] == "0"        # door's people left out
    assert dict(zip(YOLO_HEADER.split(","), fields))["lorry"] == "4"
    assert upload_config().lines == ("door",)                                     # the first line


def test_lines_direction_and_tf2_schema_are_configurable():
    config = upload_config(model_name="tf2", lines=["door"], direction="in")
    lines = csv_lines(build_report(busy_hour(), config, HOUR_10, BUILT).data)
    assert lines[0] == "image_proc,image_capt,camera_ref,model_name,car,person,bicycle,motorcycle,bus,truck,warnings"
    assert lines[1].endswith(",tf2,0,3,0,0,0,0,0")   # door, in: 3 people; the pavement is not reported


def test_class_map_replaces_the_default_mapping():
    config = upload_config(class_map=[["person", "pedestrian"], ["truck", "van"], ["bicycle", "van"]],
                           lines=BOTH_LINES)
    fields = dict(zip(YOLO_HEADER.split(","), csv_lines(build_report(busy_hour(), config, HOUR_10, BUILT).data)[1].split(",")))
    assert (fields["pedestrian"], fields["van"], fields["lorry"], fields["cyclist"]) == ("5", "5", "0", "0")


@pytest.mark.parametrize("covered_s, code", [
    (3600, WARNING_OK), (3600 * 0.99, WARNING_OK), (3500, WARNING_PARTIAL), (1, WARNING_PARTIAL),
    (0, WARNING_NO_COVERAGE)])
def test_warning_code_follows_coverage(covered_s, code):
    assert warning_code(covered_s) == code
    store = FakeStore()
    store.cover(HOUR_10, HOUR_10 + timedelta(seconds=covered_s))
    assert csv_lines(build_report(store, upload_config(), HOUR_10, BUILT).data)[1].endswith(f",{code}")


def test_report_from_the_real_store(tmp_path):
    from counterd.count import CrossingEvent
    from counterd.store import Store
    store = Store(tmp_path / "counts.db", UTC)
    try:
        t = HOUR_10.timestamp()
        store.add_events([CrossingEvent(t + 60, "door", "in", "person", 1),
                          CrossingEvent(t + 120, "door", "out", "car", 2),
                          CrossingEvent(t + 3600, "door", "in", "person", 3)])
        store.add_coverage(t, t + 1800)
        line = csv_lines(build_report(store, upload_config(), HOUR_10, BUILT).data)[1]
    finally:
        store.close()
    assert line.endswith(",yolo,1,1,0,0,0,0,0,0,1")


# ---- the fake service is as strict as the real one ------------------------------------------


async def post(client, data: bytes | None, pin: str | None = PIN, overwrite: str | None = None):
    form = aiohttp.FormData()
    if data is not None:
        form.add_field("file", data, filename="report.csv.gz")
    if pin is not None:
        form.add_field("pin-code", pin)
    if overwrite is not None:
        form.add_field("overwrite", overwrite)
    response = await client.post("/upload_report", data=form)
    return response.status, await response.text()


@pytest.fixture
async def service_client(aiohttp_client):
    service = CentralService(pin=PIN)
    return service, await aiohttp_client(service.app())


async def test_service_stores_our_report(service_client):
    service, client = service_client
    status, body = await post(client, build_report(busy_hour(), upload_config(lines=BOTH_LINES), HOUR_10, BUILT).data)
    assert status == 200
    assert json.loads(body) == {"status": "ok", "message": "Report file was processed successfully",
                                "have_unknown_cameras": True, "pks_of_unknown_cameras": [1]}
    [row] = service.stored()
    assert (row.timestamp, row.camera_id, row.camera_ok) == (HOUR_10, "entrance-north", True)
    assert row.counts == {"car": 0, "pedestrian": 5, "cyclist": 1, "motorcycle": 0, "bus": 0, "lorry": 4,
                          "van": 0, "taxi": 0}


def mangle(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"))


GOOD = YOLO_HEADER + "\n2026-11-21 11:05:07+00:00,2026-11-21 10:00:00+00:00,cam,yolo,0,5,1,0,0,4,0,0,0\n"


@pytest.mark.parametrize("data", [
    gzip.compress(b"\xef\xbb\xbf" + GOOD.encode()),                   # BOM
    mangle(GOOD.replace(",", ";")),                                    # delimiter
    mangle(GOOD.replace(",0,5,", ",0.0,5,")),                          # a float count
    mangle(GOOD.replace(",0,5,", ",,5,")),                             # an empty count
    mangle(GOOD.replace(",0,5,", ",None,5,")),                         # None count
    mangle(GOOD.replace("2026-11-21 10:00:00+00:00", "21/11/2026 10:00")),   # timestamp
    mangle(GOOD.replace(",taxi", ",taxis")),                           # header
    mangle(YOLO_HEADER + "\n"),                                        # no rows
    GOOD.encode(),                                                     # not compressed
], ids=["bom", "semicolons", "float", "empty", "none", "timestamp", "header", "no-rows", "plain"])
async def test_service_answers_html_500_to_content_it_cannot_parse(service_client, data):
    service, client = service_client
    assert await post(client, data) == (500, DJANGO_500)
    assert service.stored() == []


async def test_service_pin_overwrite_and_no_file(service_client):
    service, client = service_client
    assert await post(client, mangle(GOOD), pin="0000") == (401, json.dumps(UNAUTHORIZED))
    assert (await post(client, mangle(GOOD), pin=None))[0] == 401
    assert await post(client, None) == (200, "{}")
    assert (await post(client, mangle(GOOD)))[0] == 200
    assert (await post(client, mangle(GOOD.replace(",0,5,", ",0,6,")), overwrite="true"))[0] == 200
    assert service.stored()[0].counts["pedestrian"] == 5             # first write wins
    assert (await post(client, mangle(GOOD.replace(",0,5,", ",0,7,")), overwrite="t"))[0] == 200
    assert service.stored()[0].counts["pedestrian"] == 7             # only "t" overwrites
    assert len(service.stored()) == 1


async def test_service_breaks_on_a_camera_ref_with_a_space(service_client):
    service, client = service_client
    spaced = mangle(GOOD.replace(",cam,", ",Cam 2,"))
    assert (await post(client, spaced))[0] == 200
    assert (await post(client, spaced))[0] == 500


@pytest.mark.parametrize("status, body, outcome", [
    (200, b'{"status": "ok"}', Outcome.DELIVERED), (201, b'{"status": "ok"}', Outcome.DELIVERED),
    (200, b"<html><form>proxy login</form></html>", Outcome.REFUSED), (201, b"", Outcome.REFUSED),
    (200, b'{"status": "error"}', Outcome.REFUSED), (200, b'["ok"]', Outcome.REFUSED),
    (200, b"{}", Outcome.REFUSED), (401, json.dumps(UNAUTHORIZED).encode(), Outcome.REFUSED),
    (404, b"not found", Outcome.REFUSED), (301, b"", Outcome.REFUSED),
    (500, DJANGO_500.encode(), Outcome.REJECTED),
    (502, b"", Outcome.UNREACHABLE), (503, b"", Outcome.UNREACHABLE), (504, b"", Outcome.UNREACHABLE)])
def test_answers_are_classified_per_the_contract(status, body, outcome):
    assert classify(status, body, "http://svc/upload_report").outcome is outcome


# ---- config and the PIN ---------------------------------------------------------------------


def test_camera_ref_with_a_space_is_refused_at_load():
    with pytest.raises(ConfigError) as err:
        upload_config(camera_ref="entrance north")
    assert err.value.problems == [
        "test.toml: upload.camera_ref: must be lower-case letters, digits, '-' or '_' only "
        "(the service breaks on spaces), got 'entrance north'"]


@pytest.mark.parametrize("overrides, expected", [
    ({"pin": "", "pin_env": ""}, "upload.pin_env: one of pin, pin_env or pin_file is required"),
    ({"pin_env": "X"}, "upload.pin: give only one of pin, pin_env, pin_file"),
    ({"url": "gcc.example.org"}, "upload.url: must start with http:// or https://"),
    ({"class_map": [["person", "people"]]}, "upload.class_map[0]: 'people' is not a yolo column"),
    ({"class_map": [["persons", "pedestrian"]]}, "upload.class_map[0]: unknown COCO class name"),
    ({"lines": ["gate"]}, "upload.lines: no line is named 'gate'"),
    ({"backoff_cap_s": 1.0}, "upload.backoff_cap_s: must be >= backoff_base_s"),
    ({"minute": 60}, "upload.minute: must be <= 59"),
])
def test_upload_config_problems_name_the_key(overrides, expected):
    with pytest.raises(ConfigError) as err:
        upload_config(**overrides)
    assert any(p.startswith(f"test.toml: {expected}") for p in err.value.problems), err.value.problems


def test_pin_never_shows_in_repr_check_config_or_type_errors(tmp_path, capsys):
    config = upload_config(pin="93751")
    assert "93751" not in repr(config) and "93751" not in str(config.pin) and f"{config.pin}" != "93751"
    assert config_to_dict(config)["pin"] == "<redacted>"
    assert read_pin(config) == Secret("93751")
    toml = tmp_path / "c.toml"
    toml.write_text('[upload]\npin = "93751"\ncamera_ref = "x"\n[detector]\ntype = "motion"\n'
                    '[camera]\nsource = "rtsp://127.0.0.1:9/cam"\n')
    assert main(["check-config", str(toml)]) == 0
    assert "93751" not in capsys.readouterr().out
    with pytest.raises(ConfigError) as err:
        config_from_dict({"upload": {"pin": 93751}}, "test.toml")
    assert "93751" not in str(err.value)


def test_pin_from_environment_or_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GCC_PIN", " 5555\n")
    assert read_pin(upload_config(pin="", pin_env="GCC_PIN")).reveal() == "5555"
    monkeypatch.delenv("GCC_PIN")
    with pytest.raises(PinError, match="^upload.pin_env: environment variable GCC_PIN is not set or empty$"):
        read_pin(upload_config(pin="", pin_env="GCC_PIN"))
    pin_file = tmp_path / "pin"
    pin_file.write_text("6666\n")
    assert read_pin(upload_config(pin="", pin_file=str(pin_file))).reveal() == "6666"
    with pytest.raises(PinError, match="^upload.pin_file: cannot read .*missing"):
        read_pin(upload_config(pin="", pin_file=str(tmp_path / "missing")))
