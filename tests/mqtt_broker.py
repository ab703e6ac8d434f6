"""A real mosquitto broker for the tests, and a plain paho subscriber that hands messages to
asyncio.

Tests that need the broker skip when Debian's mosquitto is not installed, except under CI (env
var CI set), where a missing broker fails them: CI installs it (.ci/run).
"""
from __future__ import annotations

import asyncio
import getpass
import json
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from rtsp_server import free_port

READY_TIMEOUT_S = 20.0
WAIT_S = 30.0          # generous: seven test suites share two cores


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None)
    if found is None:
        message = "needs Debian's mosquitto broker (apt-get install mosquitto)"
        if os.environ.get("CI"):
            pytest.fail(message + ": CI must install it (.ci/run)")
        pytest.skip(message)
    return found


class Broker:
    """mosquitto on a free 127.0.0.1 port. `users` turns anonymous access off; `persistent`
    keeps subscriptions and queued messages across a kill (saved on every change)."""

    def __init__(self, directory: Path, *, users: dict[str, str] | None = None, persistent: bool = False,
                 tls: "Certificates | None" = None):
        self.binary = mosquitto_binary()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        # As root, mosquitto would switch to its own user, which cannot write the test's directory.
        lines = [f"listener {self.port} 127.0.0.1", "log_dest stderr", "log_type all",
                 f"user {getpass.getuser()}"]
        if users:
            passwd = self.dir / "passwd"
            passwd.write_text("")
            for name, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), name, password], check=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if tls:           # TLS only, and only for clients with a certificate from the test CA
            lines += [f"cafile {tls.ca}", f"certfile {tls.server_cert}", f"keyfile {tls.server_key}",
                      "require_certificate true"]
        if persistent:
            lines += ["persistence true", f"persistence_location {self.dir}/",
                      "autosave_on_changes true", "autosave_interval 1"]
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None
        self.log: list[str] = []

    def start(self) -> "Broker":
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        ready = threading.Event()

        def read_log(proc: subprocess.Popen) -> None:
            for line in proc.stderr:
                self.log.append(line)
                if " running" in line:       # logged once the listener is open
                    ready.set()
            ready.set()     # it exited: start() reports that below

        threading.Thread(target=read_log, args=(self.proc,), daemon=True).start()
        if not ready.wait(READY_TIMEOUT_S) or self.proc.poll() is not None:
            raise AssertionError("mosquitto did not start:\n" + "".join(self.log))
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Subscriber:
    """A plain paho client. Messages are kept in arrival order; `next(prefix)` awaits the next
    one whose topic starts with the given text."""

    def __init__(self, broker: Broker, topics: list[str], *, client_id: str = "", persistent: bool = False,
                 login: tuple[str, str] | None = None, tls: "Certificates | None" = None):
        self.loop = asyncio.get_running_loop()
        self.received: list[paho.MQTTMessage] = []
        self._arrived = asyncio.Event()
        self._cursors: dict[str, int] = {}      # prefix -> index of the next message to look at
        self.topics = topics
        self.subscribed = asyncio.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=not persistent)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self.loop.call_soon_threadsafe(self.subscribed.set)
        self.client.on_message = lambda c, u, message: self.loop.call_soon_threadsafe(self._add, message)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        if login:
            self.client.username_pw_set(*login)
        if tls:
            self.client.tls_set(ca_certs=str(tls.ca), certfile=str(tls.client_cert), keyfile=str(tls.client_key))
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _add(self, message: paho.MQTTMessage) -> None:
        self.received.append(message)
        self._arrived.set()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe([(topic, 1) for topic in self.topics])

    async def ready(self) -> "Subscriber":
        await asyncio.wait_for(self.subscribed.wait(), WAIT_S)
        return self

    async def next(self, prefix: str = "") -> paho.MQTTMessage:
        """The next message under `prefix` not yet returned for that prefix (each prefix reads
        the whole stream on its own, so waiting for one topic never loses another's messages)."""
        async def found() -> paho.MQTTMessage:
            while True:
                start = self._cursors.get(prefix, 0)
                for i in range(start, len(self.received)):
                    if self.received[i].topic.startswith(prefix):
                        self._cursors[prefix] = i + 1
                        return self.received[i]
                self._cursors[prefix] = len(self.received)
                self._arrived.clear()
                await self._arrived.wait()
        return await asyncio.wait_for(found(), WAIT_S)

    async def next_json(self, prefix: str = "") -> tuple[str, dict]:
        message = await self.next(prefix)
        return message.topic, json.loads(message.payload)

    async def until(self, topic: str, predicate=lambda payload: True) -> bytes:
        """Await a message on exactly `topic` whose payload satisfies the predicate."""
        while True:
            message = await self.next(topic)
            if message.topic == topic and predicate(message.payload):
                return message.payload

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Certificates:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate, made with
    the openssl command (EC keys: quick to make)."""

    def __init__(self, directory: Path):
        if shutil.which("openssl") is None:
            message = "needs the openssl command (apt-get install openssl)"
            if os.environ.get("CI"):
                pytest.fail(message + ": CI must install it (.ci/run)")
            pytest.skip(message)
        directory.mkdir(parents=True, exist_ok=True)
        self.ca, ca_key = directory / "ca.crt", directory / "ca.key"
        self.server_cert, self.server_key = directory / "server.crt", directory / "server.key"
        self.client_cert, self.client_key = directory / "client.crt", directory / "client.key"
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        self._openssl("req", "-x509", *key, "-keyout", ca_key, "-out", self.ca, "-days", "2",
                      "-subj", "/CN=counterd test CA")
        san = directory / "san.ext"
        san.write_text("subjectAltName=IP:127.0.0.1\n")
        for cert, cert_key, name, extra in ((self.server_cert, self.server_key, "127.0.0.1", ["-extfile", san]),
                                           (self.client_cert, self.client_key, "counterd", [])):
            csr = cert.with_suffix(".csr")
            self._openssl("req", *key, "-keyout", cert_key, "-out", csr, "-subj", f"/CN={name}")
            self._openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", ca_key, "-CAcreateserial",
                          "-out", cert, "-days", "2", *extra)

    @staticmethod
    def _openssl(*args) -> None:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
