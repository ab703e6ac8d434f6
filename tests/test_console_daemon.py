"""The console against a running daemon on the demo scene: the live picture and its tracks, the
snapshot, and a lines change that applies at once, keeps counts and lands in the config file."""
from __future__ import annotations

import asyncio
import time
import tomllib

import cv2
import numpy as np
import pytest
from aiohttp import encode_basic_auth

from counterd.commands.demo import demo_config, write_config
from counterd.daemon import scene
from counterd.daemon.service import DAEMON, make_daemon_app, reload

OPERATOR = {"Authorization": encode_basic_auth("operator", "pw")}
CNTPOS = "/local/tvpc/.api?cntpos.json"


@pytest.fixture
async def demo(aiohttp_client, tmp_path):
    config = write_config(tmp_path / "demo.toml", demo_config(str(tmp_path), 8080, "pw"))
    client = await aiohttp_client(make_daemon_app(config, capture_factory=scene.DemoScene))
    deadline = time.monotonic() + 30
    while (await (await client.get("/api/v1/view")).json())["seq"] is None:
        assert time.monotonic() < deadline, "no frame analysed within 30 s"
        await asyncio.sleep(0.1)
    return client


async def until(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not (value := await predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)
    return value


async def test_live_picture_is_the_scene_with_its_tracks(demo):
    response = await demo.get("/api/v1/frame.jpg")
    assert response.status == 200 and response.content_type == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(await response.read(), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (scene.HEIGHT, scene.WIDTH, 3)
    assert 150 < image.mean() < 215                          # the demo's floor, not a blank frame
    assert response.headers["X-Frame-Seq"].isdigit()
    tracks = await until(lambda: _tracks(demo))              # people walk by within seconds
    assert all(t["class"] == "person" and 0 <= t["box"][0] < t["box"][2] <= scene.WIDTH + 40 for t in tracks)
    assert (await demo.get("/api/v1/snapshot.jpg")).status == 401
    snapshot = await demo.get("/api/v1/snapshot.jpg", headers=OPERATOR)
    assert snapshot.status == 200 and (await snapshot.read())[:2] == b"\xff\xd8"
    health = await (await demo.get("/api/v1/health", headers=OPERATOR)).json()
    assert health["camera"]["state"] == "up" and health["model"].startswith("motion")
    assert health["upload"]["enabled"] is False and isinstance(health["log"], list)


async def _tracks(client):
    return (await (await client.get("/api/v1/view")).json())["tracks"]


async def test_saved_lines_apply_at_once_keep_counts_and_persist(demo, tmp_path):
    daemon = demo.app[DAEMON]
    path = tmp_path / "demo.toml"
    before_text = path.read_text()
    await until(lambda: _counted(demo))                      # something counted before the change
    counted_before = await _counted(demo)
    tracker_before = daemon.worker.pipeline.tracker
    body = {"lines": [{"was": "demo", "name": "door", "start": [300, 20], "end": [300, 350]},
                      {"was": None, "name": "floor", "start": [20, 300], "end": [620, 300], "invert": True}]}
    response = await demo.put("/api/v1/lines", json=body, headers=OPERATOR)
    assert response.status == 200, await response.text()
    assert "saved to" in (await response.json())["message"]
    lines = (await (await demo.get("/api/v1/lines")).json())["lines"]
    assert [(l["name"], l["start"], l["invert"]) for l in lines] == [("door", [300, 20], False),
                                                                     ("floor", [20, 300], True)]
    cntpos = await (await demo.get(CNTPOS)).json()
    assert (cntpos["left"], cntpos["right"], cntpos["top"], cntpos["bottom"]) == (300, 300, 20, 350)
    saved = tomllib.loads(path.read_text())
    assert saved["lines"][0] == {"name": "door", "start": [300, 20], "end": [300, 350]}
    assert saved["lines"][1]["invert"] is True and saved["users"][0]["name"] == "operator"
    assert path.read_text().startswith("# counterd demo configuration")          # the comment stays
    assert (tmp_path / "demo.toml.bak").read_text() == before_text
    await until(lambda: _applied(daemon, ["door", "floor"]))
    assert daemon.worker.pipeline.tracker is tracker_before          # live tracks kept
    assert await _counted(demo) >= counted_before                    # counts kept

    # a line off the 640x360 frame is refused and nothing changes
    body["lines"][1]["end"] = [900, 300]
    refused = await demo.put("/api/v1/lines", json=body, headers=OPERATOR)
    assert refused.status == 400 and "outside the 640x360 frame" in await refused.text()
    assert tomllib.loads(path.read_text())["lines"][1]["end"] == [620, 300]


async def _counted(client) -> int:
    live = await (await client.get("/api/v1/live")).json()
    return sum(c["count"] for c in live["counts"])


async def _applied(daemon, names) -> bool:
    return [line.name for line in daemon.worker.pipeline.config.lines] == names


async def test_turning_the_live_view_off_stops_pixels_at_once(demo, tmp_path):
    path = tmp_path / "demo.toml"
    path.write_text(path.read_text().replace("live_view = true", "live_view = false"))
    assert await reload(demo.app)
    response = await demo.get("/api/v1/frame.jpg")
    assert response.status == 403 and "api.live_view" in await response.text()
    assert (await demo.get("/api/v1/snapshot.jpg", headers=OPERATOR)).status == 403


async def test_an_unwritable_config_is_a_503_naming_the_file_and_nothing_changes(demo, tmp_path):
    (tmp_path / ".demo.toml.tmp").mkdir()         # the new file cannot be written (root ignores modes)
    before = (tmp_path / "demo.toml").read_text()
    body = {"lines": [{"was": "demo", "name": "demo", "start": [100, 20], "end": [100, 350]}]}
    response = await demo.put("/api/v1/lines", json=body, headers=OPERATOR)
    assert response.status == 503 and "cannot write" in await response.text()
    assert ".demo.toml.tmp" in await response.text()
    assert (tmp_path / "demo.toml").read_text() == before
    assert (await (await demo.get("/api/v1/lines")).json())["lines"][0]["start"] == [320, 20]
