"""`counterd process` and the daemon count a recording the same: one pipeline, one detection
schedule (motion gate, stride, mosaic), the same end-of-stream rule."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter

from conftest import PETS_VIDEO, SHARED_MODELS, need_shared
from counterd.config import load_config
from counterd.daemon.service import DAEMON, make_daemon_app


def config_file(tmp_path, clip, model) -> str:
    path = tmp_path / "counterd.toml"
    path.write_text(f"""
[camera]
source = "{clip}"
timezone = "UTC"
[detector]
type = "onnx"
model = "{model}"
mosaic = true
[gating]
stride = true
[daemon]
state_dir = "{tmp_path / 'state'}"
[[lines]]
name = "middle"
start = [240, 0]
end = [240, 360]
[[lines]]
name = "across"
start = [0, 200]
end = [480, 200]
""")
    return str(path)


async def test_process_and_the_daemon_count_a_recording_the_same(tmp_path, aiohttp_client):
    clip, model = need_shared(PETS_VIDEO), need_shared(SHARED_MODELS["yolo11n_int8_320"])
    path = config_file(tmp_path, clip, model)
    process = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "counterd", "process", str(clip),
                                                       "--config", path, "--json"],
                                      capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr
    offline = Counter({(line, direction, cls): n
                       for line, directions in json.loads(process.stdout)["lines"].items()
                       for direction, classes in directions.items() for cls, n in classes.items()})
    assert sum(offline.values()) >= 10, offline          # a clip with crossings, or the test proves nothing

    client = await aiohttp_client(make_daemon_app(load_config(path)))
    daemon = client.app[DAEMON]
    assert await asyncio.to_thread(daemon.worker.finished.wait, 600), "the daemon never finished the file"
    await daemon.flusher.flush()
    live = Counter((line, direction, cls) for _, line, direction, cls, _ in daemon.store.events_between(0, 2e10))
    assert live == offline
    assert daemon.worker.frames_processed == json.loads(process.stdout)["frames"]
