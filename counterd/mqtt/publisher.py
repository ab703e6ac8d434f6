"""The connection to the broker: one asyncio task that connects, publishes, and reconnects with
backoff and jitter, forever. Nothing it does blocks its callers.

Two kinds of message wait for it:
- events and alerts, in order, in a bounded queue (mqtt.queue_size). A message leaves the queue
  only once the broker has it (its PUBACK at QoS >= 1), so a broker that dies mid-publish loses
  nothing: the message is sent again after the reconnect (at least once). When the queue is full
  the oldest message is dropped and counted (counterd_mqtt_dropped_total).
- state: retained topics where only the latest payload matters (totals, occupancy, health,
  discovery). Kept one per topic, so they never pile up, and all sent again on every connect (a
  restarted broker without persistence has forgotten them). An empty payload clears a retained
  topic and is then forgotten.
"""
from __future__ import annotations

import asyncio
import logging
import random
import secrets
import ssl
from collections import deque

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from prometheus_client import CollectorRegistry, Counter, Gauge

from counterd.backoff import Backoff
from counterd.config import MqttConfig
from counterd.config.secrets import SecretError
from counterd.mqtt.credentials import read_login
from counterd.mqtt.topics import OFFLINE, ONLINE

log = logging.getLogger("counterd.mqtt")

CONNECT_TIMEOUT_S = 10.0     # connect, and wait for one PUBACK, at most this long


class MqttMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.connected = Gauge("counterd_mqtt_connected", "1 while connected to the MQTT broker",
                               registry=registry)
        self.queued = Gauge("counterd_mqtt_queued", "Events and alerts waiting for the MQTT broker",
                            registry=registry)
        self.dropped = Counter("counterd_mqtt_dropped", "Events and alerts dropped because "
                               "mqtt.queue_size was full while the broker was away", registry=registry)
        self.published = Counter("counterd_mqtt_published", "Messages the MQTT broker accepted",
                                 ["kind"], registry=registry)
        self.connect_failures = Counter("counterd_mqtt_connect_failures",
                                        "Failed or lost connections to the MQTT broker", registry=registry)
        for kind in ("event", "state"):
            self.published.labels(kind)


class Publisher:
    def __init__(self, settings: MqttConfig, client_id: str, availability: str, metrics: MqttMetrics,
                 rng: random.Random | None = None, sweep: tuple[str, ...] = ()):
        self.settings = settings
        self.sweep = sweep          # topic filters of our retained state: what we no longer set is cleared
        self.client_id = client_id
        self.availability = availability
        self.metrics = metrics
        self._backoff = Backoff(settings.backoff_base_s, settings.backoff_cap_s, rng or random.Random())
        self._queue: deque[tuple[str, bytes]] = deque()
        self._in_flight: tuple[str, bytes] | None = None
        self._state: dict[str, tuple[bytes, bool]] = {}    # topic -> (payload, retain)
        self._dirty: dict[str, None] = {}                  # state topics to send, in order
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()                        # nothing waits to be sent
        self._closing = False
        self._connected = False
        self._last_failure = ""
        self._drop_logged = False
        self._task: asyncio.Task | None = None
        metrics.queued.set_function(lambda: len(self._queue) + (self._in_flight is not None))

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    # -- for producers, on the event loop: never wait ---------------------------------------------

    def send(self, topic: str, payload: bytes) -> None:
        """Queue an event or alert; if the queue is full, the oldest one gives way."""
        if len(self._queue) >= self.settings.queue_size:
            self._queue.popleft()
            self.metrics.dropped.inc()
            if not self._drop_logged:
                log.warning("mqtt: the queue is full (mqtt.queue_size = %d) while %s is away: "
                            "dropping the oldest events (counterd_mqtt_dropped_total)",
                            self.settings.queue_size, self.where)
                self._drop_logged = True
        self._queue.append((topic, payload))
        self._idle.clear()
        self._wake.set()

    def set_state(self, topic: str, payload: bytes, retain: bool = True) -> None:
        """The latest value of a state topic; b"" clears a retained topic."""
        if self._state.get(topic) == (payload, retain):
            return
        self._state[topic] = (payload, retain)
        self._dirty[topic] = None
        self._idle.clear()
        self._wake.set()

    async def sent(self) -> None:
        """Return once everything queued so far has reached the broker."""
        await self._idle.wait()

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="counterd-mqtt")

    async def stop(self, drain_s: float) -> None:
        """Send what is waiting (for at most drain_s), say offline, and disconnect cleanly."""
        self._closing = True
        self._wake.set()
        if self._task is None:
            return
        if self._connected:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), drain_s)
            except asyncio.TimeoutError:
                pass
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        left = len(self._queue) + (self._in_flight is not None)
        if left:     # they are still in the counts database (and the API); only MQTT missed them
            log.warning("mqtt: %d queued event(s) not sent to %s before shutdown", left, self.where)

    # -- the connection loop -------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closing:
            try:
                client = await self._client()
                async with client:
                    self._on_connected()
                    await self._serve(client)
            except aiomqtt.MqttError as exc:
                self._on_failure(exc)
            except Exception:       # a bug here must not end MQTT for the daemon's lifetime
                log.exception("mqtt: publishing to %s failed; reconnecting", self.where)
            finally:
                self._connected = False
                self.metrics.connected.set(0)
            if self._closing:
                return
            await asyncio.sleep(self._backoff.next_delay())

    async def _client(self) -> aiomqtt.Client:
        s = self.settings
        try:      # read at every attempt: a fixed password or certificate file needs no restart
            password = await asyncio.to_thread(read_login, s)
        except SecretError as exc:
            raise aiomqtt.MqttError(str(exc)) from None
        tls = None
        if s.tls:
            tls = aiomqtt.TLSParameters(ca_certs=s.ca_file or None, certfile=s.cert_file or None,
                                        keyfile=s.key_file or None, cert_reqs=ssl.CERT_REQUIRED)
        will = aiomqtt.Will(self.availability, OFFLINE, qos=max(s.qos, 1), retain=True)
        try:
            return aiomqtt.Client(s.host, s.port, username=s.username or None,
                                  password=password.reveal() if password else None,
                                  identifier=self.client_id, will=will, keepalive=s.keepalive_s,
                                  timeout=CONNECT_TIMEOUT_S, tls_params=tls)
        except (OSError, ValueError) as exc:     # an unreadable CA or certificate file
            raise aiomqtt.MqttError(f"TLS setup failed: {exc}") from None

    def _on_connected(self) -> None:
        self._connected = True
        self.metrics.connected.set(1)
        self._backoff.reset()
        self._last_failure = ""
        log.info("mqtt: connected to %s as %s", self.where, self.client_id)
        self._dirty = dict.fromkeys(self._state)   # the broker may have forgotten retained state
        if self._dirty:
            self._idle.clear()
        self._drop_logged = False

    def _on_failure(self, exc: aiomqtt.MqttError) -> None:
        self.metrics.connect_failures.inc()
        reason = describe(exc, self.settings.username)
        was_connected, self._connected = self._connected, False
        if was_connected:
            log.warning("mqtt: lost the connection to %s: %s; reconnecting (backoff %g-%g s)",
                        self.where, reason, self.settings.backoff_base_s, self.settings.backoff_cap_s)
        elif reason != self._last_failure:     # the same failure again is not logged again
            log.error("mqtt: cannot connect to %s: %s; retrying (backoff %g-%g s)",
                      self.where, reason, self.settings.backoff_base_s, self.settings.backoff_cap_s)
        self._last_failure = reason

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Publish until the connection drops (MqttError) or, when closing, until all is sent."""
        await self._sweep_stale(client)
        sender = asyncio.create_task(self._publish_all(client))
        watcher = asyncio.create_task(_until_disconnected(client))
        try:
            done, _ = await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, watcher):
                task.cancel()
            await asyncio.gather(sender, watcher, return_exceptions=True)
        for task in done:
            task.result()       # raises the MqttError that ended it

    async def _sweep_stale(self, client: aiomqtt.Client) -> None:
        """Clear retained topics under our filters that we no longer publish (a line deleted while
        the daemon was down). The broker sends a subscription's retained messages before it routes
        anything published after the SUBSCRIBE, so our own marker message ends the list."""
        if not self.sweep:
            return
        marker = f"{self.availability.rsplit('/', 1)[0]}/sweep/{secrets.token_hex(6)}"
        filters = [*self.sweep, marker]
        await client.subscribe([(f, 1) for f in filters])
        await client.publish(marker, b"end", qos=1)
        stale = []
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                async for message in client.messages:
                    topic = message.topic.value
                    if topic == marker:
                        break
                    if message.retain and message.payload and topic not in self._state:
                        stale.append(topic)
        except TimeoutError:        # a broker that reorders: keep what it has, publish anyway
            log.warning("mqtt: %s did not echo the sweep marker; retained topics of removed lines "
                        "may stay", self.where)
            stale = []
        await client.unsubscribe(filters)
        for topic in stale:
            log.info("mqtt: clearing %s, retained by an earlier configuration", topic)
            self.set_state(topic, b"")

    async def _publish_all(self, client: aiomqtt.Client) -> None:
        qos = self.settings.qos
        await client.publish(self.availability, ONLINE, qos=max(qos, 1), retain=True)
        while True:
            self._wake.clear()
            if self._queue:
                self._in_flight = self._queue.popleft()
                try:
                    await client.publish(*self._in_flight, qos=qos)
                except BaseException:
                    self._queue.appendleft(self._in_flight)    # first in line after the reconnect
                    raise
                finally:
                    self._in_flight = None
                self.metrics.published.labels("event").inc()
            if self._dirty:
                topic = next(iter(self._dirty))
                payload, retain = sent = self._state[topic]
                await client.publish(topic, payload, qos=qos, retain=retain)
                self.metrics.published.labels("state").inc()
                if self._state.get(topic) == sent:     # unchanged while it was on its way
                    del self._dirty[topic]
                    if not payload:
                        del self._state[topic]
            if not self._queue and not self._dirty:
                self._idle.set()
                if self._closing:
                    await client.publish(self.availability, OFFLINE, qos=max(qos, 1), retain=True)
                    return
                await self._wake.wait()


async def _until_disconnected(client: aiomqtt.Client) -> None:
    """Raise MqttError when the connection drops. Iterating messages is how aiomqtt reports that
    (a publish waiting for its PUBACK would wait for its whole timeout); we are subscribed to
    nothing now, so any late message of the sweep is simply passed over."""
    async for _ in client.messages:
        pass


def describe(exc: aiomqtt.MqttError, username: str) -> str:
    """One line for people: what went wrong and which setting to look at."""
    code = getattr(exc.rc, "value", exc.rc) if isinstance(exc, MqttConnectError) else None
    if code in (4, 5, 0x86, 0x87):      # CONNACK codes (MQTT 3.1.1 and 5): bad credentials, not authorised
        who = f"user {username!r}" if username else "an anonymous client"
        return (f"the broker refused the login of {who} ({exc}): check mqtt.username and "
                f"mqtt.password (or password_env / password_file)")
    text = str(exc) or type(exc).__name__
    if exc.__cause__ is not None:       # aiomqtt's "Disconnected during message iteration"
        text = f"the connection dropped ({exc.__cause__})"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        text += ": check mqtt.ca_file (the CA that signed the broker's certificate) and that mqtt.host is a name the certificate holds"
    return text
