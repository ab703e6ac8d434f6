"""`counterd report build|push|status|requeue`."""
from __future__ import annotations

import asyncio
import gzip
import json
import threading
from pathlib import Path

import pytest
from aiohttp import web

from counterd.cli import main
from central_service import CentralService
from upload_fakes import PIN

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = str(REPO / "config" / "counterd.toml")


def test_build_with_the_example_config_and_no_store_reports_no_coverage(tmp_path, capsys):
    assert main(["report", "build", "--hour", "2026-11-21T10", "--config", EXAMPLE,
                 "--state-dir", str(tmp_path)]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.startswith("image_proc,image_capt,camera_ref,model_name,car,pedestrian")
    fields = row.split(",")
    assert fields[1:4] == ["2026-11-21 10:00:00+00:00", "entrance-north", "yolo"]
    assert fields[4:] == ["0"] * 8 + ["2"]
    assert not (tmp_path / "counts.db").exists()       # building a report creates nothing


def test_build_to_a_file_with_an_offset_hour(tmp_path, capsys):
    out = tmp_path / "r.csv.gz"
    assert main(["report", "build", "--hour", "2026-11-21T11:30+01:00", "--config", EXAMPLE,
                 "--state-dir", str(tmp_path), "--out", str(out)]) == 0
    assert ",2026-11-21 10:00:00+00:00," in gzip.decompress(out.read_bytes()).decode()


def test_bad_hour_is_one_line(tmp_path, capsys):
    assert main(["report", "build", "--hour", "yesterday", "--config", EXAMPLE, "--state-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        "counterd: error: --hour: expected YYYY-MM-DDTHH (UTC), e.g. 2026-11-21T10, got 'yesterday'")


def write_config(tmp_path: Path, url: str, pin: str) -> str:
    path = tmp_path / "counterd.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n\n'
                    f'[upload]\nenabled = true\nurl = "{url}"\ncamera_ref = "gate-3"\npin = "{pin}"\n')
    return str(path)


@pytest.fixture
def service_in_thread():
    """The fake service on its own loop and thread, for CLI commands that run asyncio.run()."""
    service = CentralService(pin=PIN)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(service.app())

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    service.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield service
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_spool_push_and_status(tmp_path, capsys, service_in_thread):
    config = write_config(tmp_path, service_in_thread.url, "0000")
    for hour in ("2026-11-21T08", "2026-11-21T07"):
        assert main(["report", "build", "--hour", hour, "--config", config, "--spool"]) == 0
    assert main(["report", "push", "--config", config]) == 1            # wrong PIN: kept
    assert [u.status for u in service_in_thread.uploads] == [401]
    capsys.readouterr()
    assert main(["report", "status", "--config", config, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert [w["file"] for w in status["waiting"]] == ["20261121T07Z_gate-3.csv.gz", "20261121T08Z_gate-3.csv.gz"]
    assert "401 unauthorized" in status["last_error"]["message"]

    config = write_config(tmp_path, service_in_thread.url, PIN)
    assert main(["report", "push", "--config", config]) == 0
    assert [r.timestamp.hour for r in service_in_thread.stored()] == [7, 8]
    capsys.readouterr()
    assert main(["report", "status", "--config", config]) == 0
    text = capsys.readouterr().out
    assert "waiting: 0 report(s)" in text and "last delivered hour: 2026-11-21T08:00:00+00:00" in text
    assert PIN not in text


def test_requeue_moves_quarantined_reports_back(tmp_path, capsys):
    config = write_config(tmp_path, "http://127.0.0.1:9", PIN)
    assert main(["report", "build", "--hour", "2026-11-21T08", "--config", config, "--spool"]) == 0
    outbox = tmp_path / "state" / "outbox"
    (outbox / "quarantine").mkdir()
    (outbox / "20261121T08Z_gate-3.csv.gz").rename(outbox / "quarantine" / "20261121T08Z_gate-3.csv.gz")
    (outbox / "quarantine" / "20261121T08Z_gate-3.csv.gz.why").write_text("500\n")
    assert main(["report", "requeue", "--config", config]) == 0
    assert [p.name for p in outbox.glob("*.csv.gz")] == ["20261121T08Z_gate-3.csv.gz"]
    assert list((outbox / "quarantine").iterdir()) == []
    assert main(["report", "requeue", "--config", config, "nope.csv.gz"]) == 2
