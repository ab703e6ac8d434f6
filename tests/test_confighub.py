"""The config hub: one path for SIGHUP and setparams, each component answering "applied" or
"needs restart", changes serialised, and the reload bugs it fixes."""
from __future__ import annotations

import asyncio
import dataclasses
import logging

import aiohttp
import numpy as np

from counterd.api.auth import make_ha1
from counterd.config import config_from_dict, load_config
from counterd.confighub import APPLIED, ConfigHub
from counterd.daemon.service import DAEMON, make_daemon_app, reload
from counterd.pipeline import Pipeline
from counterd.source import Frame
from test_daemon import unreachable_config
from test_detect_onnx import scripted_model, ultralytics_head

MOTION_LINES = {"detector": {"type": "motion"}, "lines": [{"name": "door", "start": [100, 0], "end": [100, 200]}]}


def test_a_pipeline_told_to_pair_frames_after_start_keeps_detecting_one_by_one():
    """The half-applied mosaic: the pipeline paired frames the detector was not built to batch."""
    config = config_from_dict(MOTION_LINES, "<test>")
    pipeline = Pipeline(config)
    pipeline.reconfigure(dataclasses.replace(config, detector=dataclasses.replace(config.detector, mosaic=True)))
    assert pipeline.config.detector.mosaic is False
    pipeline.step(Frame(np.zeros((200, 200, 3), np.uint8), 0.0, 0))
    assert pipeline.times.fresh                 # analysed at once, not held for a partner


async def test_reload_that_turns_on_mosaic_says_it_needs_a_restart_and_applies_the_rest(tmp_path, aiohttp_client):
    path = tmp_path / "counterd.toml"
    model = scripted_model(tmp_path / "m.onnx", ultralytics_head([]), [1, 3, 320, 320])   # onnx: can batch
    text = (f'[camera]\nsource = "rtsp://127.0.0.1:1/cam"\ntimezone = "UTC"\n[detector]\nmodel = "{model}"\n'
            '[api]\nanonymous_viewer = true\n[[lines]]\nname = "door"\nstart = [100, 0]\nend = [100, 200]\n')
    path.write_text(text)
    client = await aiohttp_client(make_daemon_app(load_config(path)))
    daemon = client.app[DAEMON]
    path.write_text(text.replace('[detector]\n', '[detector]\nmosaic = true\n') + '[counting]\nhysteresis_px = 9.0\n')
    assert await reload(client.app)
    assert daemon.hub.status["pipeline"].startswith("needs restart: detector.mosaic changed")
    assert daemon.effective_config.counting.hysteresis_px == 9.0
    health = await (await client.get("/healthz")).json()
    assert health["config"]["pipeline"] == daemon.hub.status["pipeline"]


async def test_setparams_goes_through_the_hub_to_every_component(tmp_path, aiohttp_client):
    ha1 = make_ha1("otto", "counterd", "pw")
    config = unreachable_config(tmp_path, users=[{"name": "otto", "role": "operator", "ha1": ha1}])
    client = await aiohttp_client(make_daemon_app(config))
    daemon = client.app[DAEMON]
    seen = []
    daemon.hub.register("probe", ("counting",), lambda old, new: seen.append(new.counting.hysteresis_px))
    response = await client.get("/local/tvpc/.apioperator?setparams&Counter.Hysteresis=11",
                                headers={"Authorization": aiohttp.encode_basic_auth("otto", "pw")})
    assert response.status == 200, await response.text()
    assert seen == [11.0] and daemon.hub.status["pipeline"] == APPLIED
    assert daemon.effective_config.counting.hysteresis_px == 11.0
    assert daemon.store.get_params() == {"Counter.Hysteresis": "11"}


async def test_changes_are_applied_one_at_a_time_and_reload_tasks_are_released(tmp_path, caplog):
    base = config_from_dict(MOTION_LINES, str(tmp_path / "c.toml"))
    (tmp_path / "c.toml").write_text('[detector]\ntype = "motion"\n[[lines]]\nname = "door"\n'
                                     'start = [100, 0]\nend = [100, 200]\n[counting]\nhysteresis_px = 8.0\n')
    hub = ConfigHub(base)
    inside, release, order = asyncio.Event(), asyncio.Event(), []

    async def slow(old, new):
        order.append("start")
        inside.set()
        await release.wait()
        order.append("end")
    hub.register("slow", ("counting",), slow)
    hub.register("restart only", ("camera",), lambda old, new: "camera.source changed")
    first = hub.reload_soon()
    await asyncio.wait_for(inside.wait(), 10)
    second = hub.reload_soon()
    assert hub.pending_reloads == 2
    await asyncio.sleep(0)               # give the second a turn: it must wait behind the first
    assert order == ["start"]
    release.set()
    with caplog.at_level(logging.INFO, logger="counterd.config"):
        assert await asyncio.wait_for(first, 10) and await asyncio.wait_for(second, 10)
    assert order == ["start", "end"]     # the second found nothing changed: not applied again
    assert hub.pending_reloads == 0      # both tasks released
    assert hub.status == {"slow": APPLIED}
    assert hub.effective.counting.hysteresis_px == 8.0
