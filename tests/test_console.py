"""The console's endpoints without a daemon (page, roles, privacy switch, lines checks, counts
stream, health), its files as package data, the TOML rewrite of [[lines]], the live view's lazy
JPEG, and `counterd snapshot`."""
from __future__ import annotations

import asyncio
import fnmatch
import json
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest
from aiohttp import encode_basic_auth

from api_support import PASSWORDS, clock, make_config, store  # noqa: F401 (fixtures)
from counterd.api.app import make_app
from counterd.api.console import STATIC, static_files
from counterd.config.lines_file import replace_lines, save_config_text
from counterd.daemon.liveview import LiveView
from counterd.detections import Detections

REPO = Path(__file__).resolve().parents[1]
VERA = {"Authorization": encode_basic_auth("vera", PASSWORDS["vera"])}      # viewer
OTTO = {"Authorization": encode_basic_auth("otto", PASSWORDS["otto"])}      # operator


@pytest.fixture
async def console(aiohttp_client, tmp_path, store, clock):  # noqa: F811
    (tmp_path / "counterd.log").write_text("2019-03-18T12:00:00+0000 INFO counterd.daemon: started\n")
    return await aiohttp_client(make_app(make_config(tmp_path), store, clock=clock))


# ---- package data ------------------------------------------------------------------------------


def test_console_files_are_read_from_the_package_and_declared_as_package_data():
    files = static_files()          # importlib.resources: works from a wheel as from the tree
    assert set(files) == set(STATIC)
    assert b"<title>counterd console</title>" in files["index.html"]
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["counterd"]
    shipped = [p.relative_to(REPO / "counterd").as_posix() for p in (REPO / "counterd" / "console").iterdir()]
    assert sorted(shipped) == sorted(f"console/{name}" for name in STATIC)
    for name in shipped:           # a non-editable `pip install .` copies exactly these
        assert any(fnmatch.fnmatch(name, g) for g in globs), f"{name} is not in package-data"


# ---- page and roles ------------------------------------------------------------------------------


async def test_page_asks_for_a_login_and_serves_its_files(console):
    assert (await console.get("/")).status == 401
    page = await console.get("/", headers=VERA)
    assert page.status == 200 and page.content_type == "text/html"
    assert "/console/console.js" in await page.text()
    script = await console.get("/console/console.js")
    assert script.status == 200 and script.content_type == "text/javascript"
    assert (await console.get("/console/secrets.txt")).status == 404
    login = await console.get("/login", headers=VERA, allow_redirects=False)
    assert login.status == 401 and "needs operator" in await login.text()    # the browser asks again
    login = await console.get("/login", headers=OTTO, allow_redirects=False)
    assert login.status == 303 and login.headers["Location"] == "/"


async def test_whoami_tells_the_page_whether_it_may_edit(console):
    assert await (await console.get("/api/v1/whoami", headers=VERA)).json() == {
        "name": "vera", "role": "viewer", "can_edit": False, "live_view": False}
    assert (await (await console.get("/api/v1/whoami", headers=OTTO)).json())["can_edit"] is True


# ---- privacy switch ------------------------------------------------------------------------------


async def test_live_view_off_means_no_pixels_and_says_how_to_turn_it_on(console):
    for path, auth in (("/api/v1/frame.jpg", VERA), ("/api/v1/snapshot.jpg", OTTO)):
        response = await console.get(path, headers=auth)
        assert response.status == 403, path
        assert "live_view = true" in await response.text() and response.content_type == "text/plain"
    assert (await console.get("/api/v1/snapshot.jpg", headers=VERA)).status == 401    # operator only
    assert (await console.get("/api/v1/snapshot.jpg")).status == 401
    view = await (await console.get("/api/v1/view", headers=VERA)).json()
    assert view["live_view"] is False and (view["width"], view["height"]) == (320, 240)   # blank frame size


async def test_live_view_on_without_a_camera_is_a_clear_503(aiohttp_client, tmp_path, store, clock):  # noqa: F811
    client = await aiohttp_client(make_app(make_config(tmp_path, live_view=True), store, clock=clock))
    response = await client.get("/api/v1/frame.jpg", headers=VERA)
    assert response.status == 503 and "no camera" in await response.text()


# ---- lines --------------------------------------------------------------------------------------


async def test_lines_are_listed_in_frame_pixels(console):
    doc = await (await console.get("/api/v1/lines", headers=VERA)).json()
    assert (doc["width"], doc["height"], doc["primary_line"]) == (320, 240, "door")
    assert doc["lines"][0] == {"name": "door", "start": [296, 88], "end": [0, 152], "invert": False,
                               "tailgate_seconds": 2.0, "forbidden_direction": ""}


@pytest.mark.parametrize("body, message", [
    ("not json", "body: not JSON"),
    ('{"lines": "door"}', 'expected {"lines": [...]}'),
    ('{"lines": []}', "give 1 to 64 lines"),
    ('{"lines": [{"name": "a", "start": [1, 2], "end": [3]}]}', "lines[0].end: must be [x, y]"),
    ('{"lines": [{"name": "", "start": [1, 2], "end": [3, 4]}]}', "lines[0].name"),
    ('{"lines": [{"name": "a", "start": [1, 2], "end": [3, 4], "invert": "yes"}]}', "lines[0].invert"),
    ('{"lines": [{"name": "a", "start": [1, NaN], "end": [3, 4]}]}', "lines[0].start"),
])
async def test_a_bad_lines_body_is_a_400_naming_the_problem(console, body, message):
    response = await console.put("/api/v1/lines", data=body, headers=OTTO)
    assert response.status == 400 and message in await response.text()


async def test_only_operators_change_lines(console):
    body = {"lines": [{"name": "a", "start": [1, 2], "end": [3, 4]}]}
    assert (await console.put("/api/v1/lines", json=body, headers=VERA)).status == 401
    assert (await console.put("/api/v1/lines", json=body)).status == 401
    response = await console.put("/api/v1/lines", json=body, headers=OTTO)   # valid, but no daemon here
    assert response.status == 503 and "no counting pipeline" in await response.text()


# ---- counts stream, health ----------------------------------------------------------------------


async def test_counts_stream_sends_todays_totals(console):
    response = await console.get("/api/v1/live/stream", headers=VERA)
    assert response.content_type == "text/event-stream"
    event = b""
    while not event.endswith(b"\n\n"):
        event += await asyncio.wait_for(response.content.readline(), 10)
    kind, data = event.decode().strip().split("\n")
    assert kind == "event: totals"
    assert json.loads(data.removeprefix("data: ")) == {
        "counts": [{"line": "door", "direction": "in", "class": "person", "count": 1}]}
    response.close()


async def test_health_shows_the_log_to_operators_only(console):
    viewer = await (await console.get("/api/v1/health", headers=VERA)).json()
    assert "log" not in viewer
    operator = await (await console.get("/api/v1/health", headers=OTTO)).json()
    assert any("counterd.daemon: started" in line for line in operator["log"])


# ---- the config file rewrite ----------------------------------------------------------------------

CONFIG = """\
# my site: front door camera
[camera]
name = "front"   # shown in reports

[counting]
primary_line = "door"

# Counting lines
[[lines]]
name = "door"      # the shop door
start = [320, 40]  # top of the frame
end = [320, 340]
tailgate_seconds = 2.0

[[lines]]
name = "pavement"
start = [20, 300]
end = [620, 300]

# uploads: keep this comment
[upload]
enabled = false
"""


def test_rewrite_keeps_comments_other_sections_and_each_lines_own_comments():
    lines = [{"was": "door", "name": "door", "start": [100, 40], "end": [320, 340], "tailgate_seconds": 2.0},
             {"was": None, "name": "exit", "start": [1, 2], "end": [3.5, 4], "invert": True}]
    text = replace_lines(CONFIG, lines)
    assert tomllib.loads(text)["lines"] == [
        {"name": "door", "start": [100, 40], "end": [320, 340], "tailgate_seconds": 2.0},
        {"name": "exit", "start": [1, 2], "end": [3.5, 4], "invert": True}]
    for kept in ("# my site: front door camera", 'name = "front"   # shown in reports', "# Counting lines",
                 'name = "door"      # the shop door', "end = [320, 340]", "# uploads: keep this comment\n[upload]"):
        assert kept in text, kept
    assert "pavement" not in text
    assert text.startswith(CONFIG[:CONFIG.index("[[lines]]")])        # everything before is untouched
    assert text.endswith(CONFIG[CONFIG.index("# uploads"):])          # and everything after


def test_rewrite_renames_in_place_and_replaces_an_inline_array():
    text = replace_lines(CONFIG, [{"was": "pavement", "name": "kerb", "start": [20, 300], "end": [620, 300]}])
    assert tomllib.loads(text)["lines"] == [{"name": "kerb", "start": [20, 300], "end": [620, 300]}]
    config = CONFIG.replace("enabled = false", 'enabled = false\nlines = ["door", "pavement"]')
    text = replace_lines(config, [{"was": "door", "name": "entrance", "start": [1, 2], "end": [3, 4]},
                                  {"was": "pavement", "name": "pavement", "start": [1, 5], "end": [3, 5]}])
    doc = tomllib.loads(text)          # what named the renamed line follows it
    assert doc["counting"]["primary_line"] == "entrance" and doc["upload"]["lines"] == ["entrance", "pavement"]
    inline = 'lines = [{name = "a", start = [1, 2], end = [3, 4]}]\n[camera]\nname = "x"\n'
    text = replace_lines(inline, [{"was": "a", "name": "b", "start": [5, 6], "end": [7, 8]}])
    assert tomllib.loads(text) == {"camera": {"name": "x"}, "lines": [{"name": "b", "start": [5, 6], "end": [7, 8]}]}


def test_save_is_atomic_and_keeps_the_previous_file(tmp_path):
    path = tmp_path / "counterd.toml"
    path.write_text(CONFIG)
    path.chmod(0o640)
    backup = save_config_text(path, "new = 1\n")
    assert path.read_text() == "new = 1\n" and backup.read_text() == CONFIG
    assert backup.name == "counterd.toml.bak"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counterd.toml", "counterd.toml.bak"]  # no temp left


# ---- live view ----------------------------------------------------------------------------------


class Ticks:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_live_view_encodes_lazily_at_most_once_per_interval():
    ticks = Ticks()
    view = LiveView(min_interval_s=1.0, clock=ticks)
    assert await view.picture() is None
    tracks = Detections.from_arrays([[10, 20, 30, 60]], [0.9], [0], [7])
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, 32:] = 255
    view.update(image, tracks, 1234.5)
    assert view.encodes == 0                           # the worker's hand-over encodes nothing
    first = await view.picture()
    assert (first.width, first.height, first.seq) == (64, 48, 1)
    assert first.tracks == [{"id": 7, "class": "person", "box": [10.0, 20.0, 30.0, 60.0]}]
    decoded = cv2.imdecode(np.frombuffer(first.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (48, 64, 3) and decoded[:, :28].max() < 40 and decoded[:, 36:].min() > 215
    view.update(image, Detections.empty(), 1234.6)
    together = await asyncio.gather(view.picture(), view.picture())
    assert all(p is first for p in together) and view.encodes == 1   # within the interval: same one
    ticks.now += 1.0
    assert (await view.picture()).seq == 2 and view.encodes == 2


# ---- counterd snapshot --------------------------------------------------------------------------


def test_snapshot_saves_a_frame_of_the_configured_source(tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(5):
        frame = np.zeros((120, 160, 3), np.uint8)
        frame[:, :80] = (0, 0, 255)                   # left half red
        writer.write(frame)
    writer.release()
    config = tmp_path / "counterd.toml"
    config.write_text(f'[camera]\nsource = "{video}"\n[[lines]]\nname = "door"\nstart = [80, 0]\nend = [80, 120]\n')
    out = tmp_path / "frame.jpg"
    done = subprocess.run([sys.executable, "-m", "counterd", "snapshot", "--config", str(config), "--out", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "160x120" in done.stdout
    image = cv2.imread(str(out))
    assert image.shape == (120, 160, 3)
    assert image[60, 20, 2] > 200 and image[60, 20, 0] < 60 and image[60, 140].max() < 60
    missing = subprocess.run([sys.executable, "-m", "counterd", "snapshot", "--config", str(config),
                              "--out", str(tmp_path / "no-such-dir" / "f.jpg")], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2 and "cannot write" in missing.stderr
