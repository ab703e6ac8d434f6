"""MQTT against a real mosquitto: events once per crossing and in order, retained state after a
daemon restart, no queued event lost when the broker dies (and a full queue drops the oldest,
counted), a wrong password is one clear log line, TLS with a client certificate, Home Assistant
discovery announced and removed with a line (on reload, or at start after the daemon was down)."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import timezone
from pathlib import Path

import pytest

from counterd.config import ConfigError, config_from_dict
from counterd.count import CrossingEvent
from counterd.daemon.service import DAEMON, make_daemon_app, reload
from counterd.mqtt.topics import topic_level
from mqtt_broker import WAIT_S, Broker, Certificates, Subscriber

PREFIX = "counterd/Lobby"
LINES = [{"name": "door", "start": [100, 0], "end": [100, 200], "forbidden_direction": "out"},
         {"name": "exit/west", "start": [0, 50], "end": [200, 50]}]


def daemon_config(state: Path, broker: Broker, lines=LINES, **mqtt):
    return config_from_dict({
        "camera": {"name": "Lobby", "source": "rtsp://127.0.0.1:1/cam", "timezone": "UTC"},
        "detector": {"type": "motion"},
        "source": {"backoff_base_s": 0.5, "backoff_cap_s": 1.0},
        "daemon": {"state_dir": str(state)},
        "api": {"anonymous_viewer": True},
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": broker.port,
                 "backoff_base_s": 0.2, "backoff_cap_s": 0.5, **mqtt},
        "lines": lines}, str(state / "counterd.toml"))


def crossings(n: int, start: float, line: str = "door", direction: str = "in", first_id: int = 1):
    return [CrossingEvent(start + i * 0.1, line, direction, "person", first_id + i) for i in range(n)]


async def commit(app, events) -> None:
    """Hand events to the daemon as the worker does, and flush them through the store now."""
    daemon = app[DAEMON]
    daemon.recorder.add(events, events[-1].timestamp)
    await daemon.flusher.flush()


@pytest.fixture
def broker(tmp_path):
    broker = Broker(tmp_path / "broker", persistent=True).start()
    yield broker
    broker.stop()


async def test_events_arrive_once_per_crossing_in_order_with_alerts_and_totals(tmp_path, broker, aiohttp_client):
    sub = await Subscriber(broker, [f"{PREFIX}/#"]).ready()
    try:
        client = await aiohttp_client(make_daemon_app(daemon_config(tmp_path, broker)))
        assert await sub.until(f"{PREFIX}/availability") == b"online"
        now = time.time() - 10     # crossings in the past: occupancy counts up to now
        batches = [crossings(3, now), crossings(2, now + 1, direction="out", first_id=4),
                   crossings(1, now + 2, line="exit/west", first_id=6)]
        for batch in batches:
            await commit(client.app, batch)
        sent = [e for batch in batches for e in batch]
        received = [(await sub.next_json(f"{PREFIX}/events"))[1] for _ in sent]
        assert [(r["line"], r["direction"], r["class"], r["track_id"]) for r in received] == \
            [(e.line, e.direction, e.class_name, e.track_id) for e in sent]
        assert [r["ts"] for r in received] == [round(e.timestamp, 3) for e in sent]
        assert received[0]["time"].endswith("+00:00")
        # Once: the next event message after them is a new crossing, not a repeat.
        sentinel = crossings(1, now + 3, first_id=99)
        await commit(client.app, sentinel)
        assert (await sub.next_json(f"{PREFIX}/events"))[1]["track_id"] == 99

        topic, alert = await sub.next_json(f"{PREFIX}/alerts")
        assert alert["kind"] == "wrong-way" and alert["line"] == "door" and alert["track_id"] == 4
        door = await sub.until(f"{PREFIX}/totals/door/person",
                               lambda p: json.loads(p)["in"] == 4)
        assert json.loads(door)["out"] == 2
        west = f"{PREFIX}/totals/{topic_level('exit/west')}/person"
        assert west == f"{PREFIX}/totals/exit%2Fwest/person"
        assert json.loads(await sub.until(west, lambda p: json.loads(p)["in"] == 1))["out"] == 0
        occupancy = await sub.until(f"{PREFIX}/occupancy", lambda p: json.loads(p)["occupancy"] == 2)
        assert json.loads(occupancy)["line"] == "door"
        metrics = await (await client.get("/metrics")).text()
        assert "counterd_mqtt_connected 1.0" in metrics
        assert 'counterd_mqtt_published_total{kind="event"} 9.0' in metrics    # 7 events, 2 alerts
    finally:
        sub.close()


async def test_retained_state_is_right_after_a_daemon_restart(tmp_path, broker, aiohttp_client):
    config = daemon_config(tmp_path, broker)
    first = make_daemon_app(config)
    client = await aiohttp_client(first)
    door, occupancy = f"{PREFIX}/totals/door/person", f"{PREFIX}/occupancy"
    watcher = await Subscriber(broker, [f"{PREFIX}/availability"]).ready()
    try:
        assert await watcher.until(f"{PREFIX}/availability") == b"online"
        await commit(first, crossings(5, time.time() - 30) + crossings(2, time.time() - 20, direction="out",
                                                                          first_id=10))
        await client.close()                  # a clean stop: final totals, then offline
        assert await watcher.until(f"{PREFIX}/availability", lambda p: p == b"offline") == b"offline"
        state = await retained(broker, [door, occupancy])
        assert (state[door]["in"], state[door]["out"]) == (5, 2)
        assert state[door]["date"] == time.strftime("%Y-%m-%d", time.gmtime())      # camera.timezone UTC
        assert state[occupancy] == {"occupancy": 3, "line": "door", "class": "person"}
        # The broker forgets them (a restart without persistence): the restarted daemon's own
        # state, read from its counts database, must bring them back.
        cleaner = await Subscriber(broker, [door]).ready()
        for topic in (door, occupancy):
            cleaner.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(WAIT_S)
        cleaner.close()
        assert await retained(broker, [door, occupancy]) == {}

        again = await aiohttp_client(make_daemon_app(config))
        assert await watcher.until(f"{PREFIX}/availability", lambda p: p == b"online") == b"online"
        await asyncio.wait_for(again.app[DAEMON].mqtt.publisher.sent(), WAIT_S)
        state = await retained(broker, [door, occupancy, f"{PREFIX}/totals/exit%2Fwest/person"])
        assert (state[door]["in"], state[door]["out"], state[occupancy]["occupancy"]) == (5, 2, 3)
        assert (state[f"{PREFIX}/totals/exit%2Fwest/person"]["in"]) == 0
        await again.close()
    finally:
        watcher.close()


async def retained(broker: Broker, topics: list[str]) -> dict[str, dict]:
    """What a new subscriber is handed at once: the retained payloads of `topics` (the broker
    sends them before anything published after the subscription, so a marker ends the list)."""
    marker = f"{PREFIX}/test-marker"
    sub = await Subscriber(broker, [*topics, marker]).ready()
    try:
        sub.client.publish(marker, b"end", qos=1)
        found = {}
        while (message := await sub.next()).topic != marker:
            assert message.retain
            found[message.topic] = json.loads(message.payload)
        return found
    finally:
        sub.close()


async def test_a_broker_killed_mid_run_loses_no_queued_event(tmp_path, broker, aiohttp_client):
    # A persistent session: the broker keeps the subscription (and queues for it) across its death.
    sub = await Subscriber(broker, [f"{PREFIX}/events"], client_id="building", persistent=True).ready()
    try:
        client = await aiohttp_client(make_daemon_app(daemon_config(tmp_path, broker)))
        now = time.time() - 10
        before = crossings(3, now)
        await commit(client.app, before)
        for event in before:
            assert (await next_event(sub))[1]["track_id"] == event.track_id
        # Killed once the daemon has the broker's acknowledgements: a message still waiting for its
        # PUBACK would be sent again after the reconnect (at least once), a repeat this test forbids.
        await asyncio.wait_for(client.app[DAEMON].mqtt.publisher.sent(), WAIT_S)
        broker.kill()
        during = crossings(4, now + 1, first_id=10)
        await commit(client.app, during)          # the broker is gone: these wait in the queue
        metrics = await (await client.get("/metrics")).text()
        assert "counterd_mqtt_queued 4.0" in metrics, [l for l in metrics.splitlines() if "mqtt" in l]
        assert "counterd_mqtt_dropped_total 0.0" in metrics
        broker.start()                            # same port, same persistence directory

        for event in during:
            assert (await next_event(sub))[1]["track_id"] == event.track_id
        after = crossings(1, now + 2, first_id=50)
        await commit(client.app, after)
        assert (await next_event(sub))[1]["track_id"] == 50   # nothing repeated
        await asyncio.wait_for(client.app[DAEMON].mqtt.publisher.sent(), WAIT_S)
        metrics = await (await client.get("/metrics")).text()
        assert "counterd_mqtt_queued 0.0" in metrics
    finally:
        sub.close()


async def next_event(sub: Subscriber) -> tuple[str, dict]:
    """The next crossing the daemon sent. A restarted broker may hand the subscriber again, marked
    as a repeat (DUP), a message whose acknowledgement it had not yet saved: that is the broker's
    own at-least-once leg to the subscriber, not something the daemon sent twice, so skip it."""
    while True:
        message = await sub.next(f"{PREFIX}/events")
        if not (message.dup and any(m.payload == message.payload for m in sub.received if m is not message)):
            return message.topic, json.loads(message.payload)


class Records(logging.Handler):
    """Log records of one logger, with an asyncio event for the first that matches."""

    def __init__(self, text: str):
        super().__init__(logging.INFO)
        self.text = text
        self.seen = asyncio.Event()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self.text in record.getMessage():
            self.seen.set()


@pytest.fixture
def mqtt_log():
    handlers = []
    logger = logging.getLogger("counterd.mqtt")
    old_level = logger.level
    logger.setLevel(logging.INFO)

    def watch(text: str) -> Records:
        handler = Records(text)
        logger.addHandler(handler)
        handlers.append(handler)
        return handler
    yield watch
    for handler in handlers:
        logger.removeHandler(handler)
    logger.setLevel(old_level)


async def test_a_wrong_password_is_one_clear_log_line_and_no_crash(tmp_path, aiohttp_client, mqtt_log):
    broker = Broker(tmp_path / "broker", users={"counter": "right-pass"}).start()
    try:
        refused = mqtt_log("refused the login")
        client = await aiohttp_client(make_daemon_app(daemon_config(
            tmp_path, broker, username="counter", password="wrong-pass")))
        await asyncio.wait_for(refused.seen.wait(), WAIT_S)
        line = next(r for r in refused.records if "refused the login" in r.getMessage())
        assert line.levelno == logging.ERROR
        assert "user 'counter'" in line.getMessage() and "mqtt.password" in line.getMessage()
        assert "wrong-pass" not in line.getMessage()
        # It keeps retrying (counted), logging the same refusal only once, and the daemon serves on.
        await commit(client.app, crossings(2, time.time()))
        health = await client.get("/healthz")
        assert health.status == 200
        live = await (await client.get("/local/tvpc/.api?live-sum.json")).json()
        assert live["in"] == 2
        metrics = await (await client.get("/metrics")).text()
        assert "counterd_mqtt_connected 0.0" in metrics and "counterd_mqtt_queued 2.0" in metrics
        assert sum("refused the login" in r.getMessage() for r in refused.records) == 1
    finally:
        broker.stop()


async def test_the_right_password_connects(tmp_path, aiohttp_client):
    broker = Broker(tmp_path / "broker", users={"counter": "right-pass", "reader": "r"}).start()
    secret = tmp_path / "mqtt-password"
    secret.write_text("right-pass\n")
    try:
        sub = await Subscriber(broker, [f"{PREFIX}/availability"], login=("reader", "r")).ready()
        try:
            await aiohttp_client(make_daemon_app(daemon_config(
                tmp_path, broker, username="counter", password_file=str(secret))))
            assert await sub.until(f"{PREFIX}/availability", lambda p: p == b"online") == b"online"
        finally:
            sub.close()
    finally:
        broker.stop()


async def test_discovery_announces_one_device_and_removes_a_deleted_line(tmp_path, broker, aiohttp_client):
    sub = await Subscriber(broker, ["homeassistant/#", f"{PREFIX}/totals/#"]).ready()
    try:
        path = tmp_path / "counterd.toml"
        path.write_text(toml_config(broker, LINES))
        client = await aiohttp_client(make_daemon_app(daemon_config(tmp_path, broker, discovery=True)))
        expected = 2 * 2 + 3          # in/out for each line (one class), occupancy, fps, health
        configs = {}
        while len(configs) < expected:
            message = await sub.next("homeassistant/")
            configs[message.topic] = json.loads(message.payload)
        devices = {json.dumps(c["device"], sort_keys=True) for c in configs.values()}
        assert len(devices) == 1 and json.loads(devices.pop())["name"] == "Lobby"
        assert all(c["availability_topic"] == f"{PREFIX}/availability" for c in configs.values())
        west = [t for t in configs if "exit" in t]
        assert len(west) == 2 and all(configs[t]["state_topic"] == f"{PREFIX}/totals/exit%2Fwest/person"
                                      for t in west)
        assert {t.split("/")[1] for t in configs} == {"sensor", "binary_sensor"}

        path.write_text(toml_config(broker, LINES[:1]))     # the exit line is deleted
        assert await reload(client.app)
        cleared = set()
        gone = set(west) | {f"{PREFIX}/totals/exit%2Fwest/person"}
        while cleared != gone:
            message = await sub.next()
            if message.payload == b"":
                assert message.topic in gone, message.topic
                cleared.add(message.topic)
    finally:
        sub.close()


async def test_health_is_published_every_interval(tmp_path, broker, aiohttp_client):
    sub = await Subscriber(broker, [f"{PREFIX}/health"]).ready()
    try:
        await aiohttp_client(make_daemon_app(daemon_config(tmp_path, broker, health_interval_s=1)))
        first = json.loads(await sub.until(f"{PREFIX}/health"))
        second = json.loads(await sub.until(f"{PREFIX}/health"))
        assert second["time"] > first["time"]
        assert second["healthy"] is False and second["stream"] == "down"   # the camera is unreachable
        assert second["fps"] == 0.0 and second["coverage"] == 0.0
        assert second["upload"] == {"enabled": False}
    finally:
        sub.close()


def toml_config(broker: Broker, lines) -> str:
    text = ('[camera]\nname = "Lobby"\nsource = "rtsp://127.0.0.1:1/cam"\ntimezone = "UTC"\n'
            '[detector]\ntype = "motion"\n[api]\nanonymous_viewer = true\n'
            f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\ndiscovery = true\n'
            'backoff_base_s = 0.2\nbackoff_cap_s = 0.5\n')
    for line in lines:
        text += (f'[[lines]]\nname = "{line["name"]}"\nstart = {line["start"]}\nend = {line["end"]}\n')
    return text


@pytest.mark.parametrize("mqtt, expected", [
    ({"topic_prefix": "site/+/counter"}, "mqtt.topic_prefix: must not contain '+', '#'"),
    ({"topic_prefix": "site/"}, "mqtt.topic_prefix: must not start or end with '/'"),
    ({"discovery_prefix": ""}, "mqtt.discovery_prefix: must not be empty"),
    ({"key_file": "k.pem", "tls": True}, "mqtt.key_file: needs cert_file"),
    ({"ca_file": "ca.pem"}, "mqtt.ca_file: is only used with TLS: set mqtt.tls = true"),
    ({"password": "x", "password_env": "P", "username": "u"}, "mqtt.password: give only one of"),
    ({"password": "x"}, "mqtt.username: required when a password is given"),
    ({"qos": 3}, "mqtt.qos: must be <= 2, got 3"),
    ({"queue_size": 0}, "mqtt.queue_size: must be >= 1, got 0"),
    ({"backoff_base_s": 5, "backoff_cap_s": 1}, "mqtt.backoff_cap_s: must be >= backoff_base_s"),
    ({"enabled": True, "host": ""}, "mqtt.host: required when mqtt is enabled"),
])
def test_mqtt_config_errors_name_the_key(mqtt, expected):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"mqtt": mqtt}, "site.toml")
    assert any(p.startswith(f"site.toml: {expected}") for p in info.value.problems), info.value.problems


def test_the_password_is_never_shown():
    from counterd.config import config_to_dict
    config = config_from_dict({"mqtt": {"username": "u", "password": "hunter2"}})
    assert "hunter2" not in repr(config) and config_to_dict(config)["mqtt"]["password"] == "<redacted>"


async def test_a_line_deleted_while_the_daemon_was_down_is_cleared_at_start(tmp_path, broker, aiohttp_client):
    first = await aiohttp_client(make_daemon_app(daemon_config(tmp_path, broker, discovery=True)))
    await asyncio.wait_for(first.app[DAEMON].mqtt.publisher.sent(), WAIT_S)   # all retained state is out
    await first.close()
    west = f"{PREFIX}/totals/exit%2Fwest/person"
    sub = await Subscriber(broker, [west, "homeassistant/#"]).ready()
    try:
        assert json.loads(await sub.until(west))["in"] == 0       # retained from the first run
        await aiohttp_client(make_daemon_app(daemon_config(tmp_path, broker, lines=LINES[:1], discovery=True)))
        assert await sub.until(west, lambda p: p == b"") == b""
        cleared = 0
        while cleared < 2:                  # the exit line's in and out sensors
            message = await sub.next("homeassistant/sensor/")
            if message.payload == b"":
                assert "exit" in message.topic
                cleared += 1
    finally:
        sub.close()


async def test_tls_with_a_client_certificate(tmp_path, aiohttp_client, mqtt_log):
    certs = Certificates(tmp_path / "certs")
    broker = Broker(tmp_path / "broker", tls=certs).start()
    try:
        sub = await Subscriber(broker, [f"{PREFIX}/availability"], tls=certs).ready()
        try:
            await aiohttp_client(make_daemon_app(daemon_config(
                tmp_path, broker, tls=True, ca_file=str(certs.ca), cert_file=str(certs.client_cert),
                key_file=str(certs.client_key))))
            assert await sub.until(f"{PREFIX}/availability", lambda p: p == b"online") == b"online"
        finally:
            sub.close()
        # A broker whose certificate the configured CA did not sign is refused, with the reason.
        refused = mqtt_log("certificate verify failed")
        other = Certificates(tmp_path / "other")
        await aiohttp_client(make_daemon_app(daemon_config(
            tmp_path / "second", broker, tls=True, ca_file=str(other.ca), cert_file=str(certs.client_cert),
            key_file=str(certs.client_key), client_id="second")))
        await asyncio.wait_for(refused.seen.wait(), WAIT_S)
    finally:
        broker.stop()


async def test_a_full_queue_drops_the_oldest_and_counts_them(tmp_path, broker, aiohttp_client):
    sub = await Subscriber(broker, [f"{PREFIX}/events"], client_id="building", persistent=True).ready()
    try:
        client = await aiohttp_client(make_daemon_app(daemon_config(tmp_path, broker, queue_size=3)))
        await asyncio.wait_for(client.app[DAEMON].mqtt.publisher.sent(), WAIT_S)
        broker.kill()
        await commit(client.app, crossings(5, time.time() - 10))
        metrics = await (await client.get("/metrics")).text()
        assert "counterd_mqtt_queued 3.0" in metrics and "counterd_mqtt_dropped_total 2.0" in metrics
        broker.start()
        assert [(await next_event(sub))[1]["track_id"] for _ in range(3)] == [3, 4, 5]
    finally:
        sub.close()


async def test_the_demo_scene_publishes_every_stored_crossing_once_in_order(tmp_path, broker, aiohttp_client):
    """The whole chain with real frames: synthetic walkers -> motion detector -> tracker -> lines ->
    store -> bus -> broker. After a clean stop, the events on the broker are exactly the stored ones."""
    from counterd.commands.demo import demo_config
    from counterd.daemon import scene
    from counterd.store import Store
    data = demo_config(str(tmp_path), 8080, "pw")      # the port is unused: the test client serves
    data["camera"]["timezone"] = "UTC"
    data["mqtt"] = {"enabled": True, "host": "127.0.0.1", "port": broker.port, "topic_prefix": "demo"}
    sub = await Subscriber(broker, ["demo/events", "demo/availability"]).ready()
    try:
        client = await aiohttp_client(make_daemon_app(config_from_dict(data, str(tmp_path / "demo.toml")),
                                                      capture_factory=scene.DemoScene))
        for _ in range(3):                          # walkers cross every few seconds
            await asyncio.wait_for(sub.next("demo/events"), 120)
        await client.close()                        # the last flush, the queue, then offline
        await sub.until("demo/availability", lambda p: p == b"offline")
    finally:
        sub.close()
    store = Store.open(tmp_path / "counts.db", timezone.utc, read_only=True)
    try:
        stored = store.events_between(0, time.time() + 60)
    finally:
        store.close()
    published = [json.loads(m.payload) for m in sub.received if m.topic == "demo/events"]
    assert len(stored) >= 3
    assert [e["ts"] for e in published] == sorted(e["ts"] for e in published)      # in order
    # Once each: the same crossings as stored, none missing, none repeated (ties in time by track).
    assert sorted((e["ts"], e["line"], e["direction"], e["class"], e["track_id"]) for e in published) == \
        sorted((round(ts, 3), line, direction, cls, track) for ts, line, direction, cls, track in stored)


def test_reconnect_waits_double_up_to_the_cap_with_jitter():
    import random
    from counterd.backoff import Backoff
    waits = [Backoff(1.0, 8.0, random.Random(seed)) for seed in (1, 2)]
    runs = [[backoff.next_delay() for _ in range(6)] for backoff in waits]
    for run in runs:
        for wait, ceiling in zip(run, (1, 2, 4, 8, 8, 8)):
            assert ceiling / 2 <= wait <= ceiling          # the upper half of each ceiling
    assert runs[0] != runs[1]                              # two boxes do not retry in lockstep
    waits[0].reset()
    assert waits[0].next_delay() <= 1.0


def test_check_config_names_an_unreadable_mqtt_file(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "cam.toml"
    path.write_text('[camera]\nsource = "rtsp://camera.local/stream"\n[detector]\ntype = "motion"\n'
                    '[[lines]]\nname = "door"\nstart = [10, 10]\nend = [10, 100]\n'
                    f'[mqtt]\nenabled = true\ntls = true\nca_file = "{tmp_path}/missing-ca.pem"\n')
    result = subprocess.run([sys.executable, "-m", "counterd", "check-config", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"mqtt.ca_file: cannot read {tmp_path}/missing-ca.pem: No such file or directory" in result.stderr
    path.write_text(path.read_text().replace(f'ca_file = "{tmp_path}/missing-ca.pem"\n',
                                             'username = "u"\npassword_env = "COUNTERD_TEST_UNSET_MQTT_PW"\n'))
    result = subprocess.run([sys.executable, "-m", "counterd", "check-config", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "mqtt.password_env: environment variable COUNTERD_TEST_UNSET_MQTT_PW is not set" in result.stderr


async def test_a_daemon_that_dies_is_marked_offline_by_its_will(tmp_path, broker):
    import signal
    import subprocess
    import sys
    from rtsp_server import free_port
    path = tmp_path / "cam.toml"
    path.write_text(toml_config(broker, LINES).replace(
        '[api]\n', f'[api]\nhost = "127.0.0.1"\nport = {free_port()}\n') +
        f'[daemon]\nstate_dir = "{tmp_path}"\n')
    sub = await Subscriber(broker, [f"{PREFIX}/availability"]).ready()
    daemon = subprocess.Popen([sys.executable, "-m", "counterd", "run", "--config", str(path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await sub.until(f"{PREFIX}/availability", lambda p: p == b"online")
        daemon.send_signal(signal.SIGKILL)        # no clean stop: only the broker can say offline
        assert await sub.until(f"{PREFIX}/availability", lambda p: p == b"offline") == b"offline"
    finally:
        sub.close()
        if daemon.poll() is None:
            daemon.kill()
        daemon.wait(timeout=30)
