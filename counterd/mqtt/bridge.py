"""The daemon's side of MQTT: what to publish and when.

- each committed batch of crossings (and the alerts it raised) goes out as events, in order;
- today's totals per line and class, and occupancy, are retained state, refreshed at most once a
  second after a batch, and every minute anyway (a new day, an occupancy reset);
- health (fps, coverage, stream and upload state) every mqtt.health_interval_s;
- Home Assistant discovery configs when mqtt.discovery is on; a reload that removes a line
  clears its retained totals and its entities.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from counterd.api.site import PERSON
from counterd.bus import CommittedBatch
from counterd.config import Config, MqttConfig
from counterd.confighub import restart_needed
from counterd.daemon.camera import LinkState
from counterd.mqtt.discovery import discovery_messages, node_id
from counterd.mqtt.publisher import MqttMetrics, Publisher
from counterd.mqtt.topics import (
    Topics, alert_payload, default_prefix, event_payload, iso_time, to_json, totals_payload,
)
from counterd.store.occupancy import replay, reset_offset

if TYPE_CHECKING:
    from counterd.daemon.service import Daemon

log = logging.getLogger("counterd.mqtt")

# The config sections the bridge reads: lines and classes (topics, entities), the primary line and
# reset time (occupancy), the camera's name (the device); [mqtt] itself needs a restart.
MQTT_SECTIONS = ("mqtt", "lines", "detector", "counting", "occupancy", "camera")
STATE_EVERY_S = 1.0       # retained totals and occupancy change at most this often
STATE_REFRESH_S = 60.0    # and are recomputed this often without crossings (midnight, resets)
DRAIN_ON_STOP_S = 3.0     # shutdown waits this long for queued events to reach the broker


class MqttBridge:
    def __init__(self, daemon: Daemon, settings: MqttConfig):
        self.daemon = daemon
        self.settings = settings
        name = daemon.config.camera.name
        self.topics = Topics(settings.topic_prefix or default_prefix(name))
        client_id = settings.client_id or "counterd-" + self.topics.prefix.rsplit("/", 1)[-1]
        sweep = (f"{self.topics.prefix}/totals/#",
                 f"{settings.discovery_prefix}/+/{node_id(self.topics)}/+/config")
        self.publisher = Publisher(settings, client_id, self.topics.availability,
                                   MqttMetrics(daemon.metrics.registry), sweep=sweep)
        self._config = daemon.effective_config
        self._state_due = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._health_sample: tuple[float, float, float] | None = None   # (time, frames, coverage)

    @property
    def tz(self):
        return self.daemon.store.tz

    async def start(self) -> None:
        self._publish_discovery(self._config)
        await self._publish_state()            # today's totals from the store, before any event
        self.publisher.start()
        self._tasks = [asyncio.create_task(self._state_forever(), name="counterd-mqtt-state"),
                       asyncio.create_task(self._health_forever(), name="counterd-mqtt-health")]

    async def stop(self) -> None:
        """After the last flush: final totals and occupancy (they stay retained while we are
        down), then whatever is queued, then offline."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self._publish_state()
        except Exception:
            log.exception("mqtt: computing the final totals failed")
        await self.publisher.stop(DRAIN_ON_STOP_S)

    # -- inputs --------------------------------------------------------------------------------------

    def on_batch(self, batch: CommittedBatch) -> None:
        """A batch the store has committed (a follower of the daemon's bus; never waits)."""
        for event in batch.events:
            self.publisher.send(self.topics.events, event_payload(event, self.tz))
        for alert in batch.alerts:
            self.publisher.send(self.topics.alerts, alert_payload(alert, self.tz))
        if batch.events:
            self._state_due.set()

    def apply(self, old: Config, new: Config) -> str | None:
        """The config hub's call: lines, classes and occupancy apply at once; [mqtt] itself (the
        broker, the topics) is read once at start-up."""
        self.reconfigure(new)
        return restart_needed("mqtt")(old, new)

    def reconfigure(self, config: Config) -> None:
        """A new config: clear what belonged to removed lines or classes, announce new ones."""
        old, self._config = self._config, config
        gone = set(self.topics.totals_of(old).values()) - set(self.topics.totals_of(config).values())
        if self.settings.discovery:
            gone |= set(self._discovery(old)) - set(self._discovery(config))
        for topic in sorted(gone):
            self.publisher.set_state(topic, b"")
        self._publish_discovery(config)
        self._state_due.set()

    # -- state ---------------------------------------------------------------------------------------

    def _discovery(self, config: Config) -> dict[str, bytes]:
        return discovery_messages(config, self.topics, self.settings.discovery_prefix)

    def _publish_discovery(self, config: Config) -> None:
        if self.settings.discovery:
            for topic, payload in self._discovery(config).items():
                self.publisher.set_state(topic, payload)

    async def _state_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._state_due.wait(), STATE_REFRESH_S)
            except asyncio.TimeoutError:
                pass
            self._state_due.clear()
            try:
                await self._publish_state()
            except Exception:       # a store hiccup must not end the state updates for good
                log.exception("mqtt: computing totals and occupancy failed")
            await asyncio.sleep(STATE_EVERY_S)

    async def _publish_state(self) -> None:
        config, store, now = self._config, self.daemon.store, time.time()
        day, totals = self.daemon.site.live.today(now)     # followed from the bus by the API
        date = datetime.fromtimestamp(day, timezone.utc).date().isoformat()   # day is wall time
        retain = self.settings.retain
        for (line, class_name), topic in self.topics.totals_of(config).items():
            self.publisher.set_state(topic, totals_payload(date, totals.get((line, "in", class_name), 0),
                                                           totals.get((line, "out", class_name), 0)), retain)
        primary = config.primary_line
        if primary is not None:
            occupancy = await self.daemon.astore.run(_occupancy, store, now, primary.name,
                                                     reset_offset(config.occupancy.reset_time))
            self.publisher.set_state(self.topics.occupancy, to_json(
                {"occupancy": occupancy, "line": primary.name, "class": PERSON}), retain)

    async def _health_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            try:
                self.publisher.set_state(self.topics.health, to_json(await self.health()),
                                         self.settings.retain)
            except Exception:
                log.exception("mqtt: building the health message failed")

    async def health(self) -> dict:
        """fps and coverage over the time since the last call; stream, worker and upload state."""
        daemon, now = self.daemon, time.time()
        registry = daemon.metrics.registry
        frames = registry.get_sample_value("counterd_frames_processed_total") or 0.0
        covered = registry.get_sample_value("counterd_coverage_seconds_total") or 0.0
        previous, self._health_sample = self._health_sample, (now, frames, covered)
        fps = coverage = None
        if previous is not None and now > previous[0]:
            fps = round((frames - previous[1]) / (now - previous[0]), 2)
            coverage = round(min(1.0, (covered - previous[2]) / (now - previous[0])), 3)
        worker = daemon.worker
        camera = worker.camera if worker else None
        return {"time": iso_time(now, self.tz),
                "healthy": bool(worker and worker.healthy(daemon.healthy_heartbeat_s) and camera.state is LinkState.UP),
                "stream": camera.state.value if camera else "stopped",
                "stream_reason": camera.reason if camera else "",
                "fps": fps, "coverage": coverage,
                "upload": await self._upload_state()}

    async def _upload_state(self) -> dict:
        uploader = self.daemon.uploader
        if uploader is None:
            return {"enabled": False}

        def read() -> dict:
            status = uploader.outbox.read_status()
            return {"enabled": True, "pending_reports": len(uploader.outbox.pending()),
                    "last_success": (status.last_success or {}).get("time"),
                    "last_error": (status.last_error or {}).get("message")}
        return await asyncio.to_thread(read)


def _occupancy(store, now: float, line: str, offset: int) -> int:
    """Naive occupancy across the primary line now, as live-occupancy.json reports it."""
    return replay(store, now, now, line, PERSON, offset).before(now + 1e-6)
