"""Topic names and payloads: what a building system sees (README: Building systems).

Every topic hangs under one prefix (mqtt.topic_prefix, default counterd/<camera.name>). Line and
class names become topic levels with '/', '+', '#' and '%' percent-escaped, so any line name is a
valid, unambiguous level. Payloads are UTF-8 JSON; times are ISO 8601 in the camera's zone.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, tzinfo

from counterd.config import Config

ONLINE, OFFLINE = b"online", b"offline"
_ESCAPED = {c: f"%{ord(c):02X}" for c in "%/+#"}


def topic_level(name: str) -> str:
    """A line or class name as one topic level (escaping is reversible, so names never collide)."""
    return "".join(_ESCAPED.get(c, c) for c in name)


def slug(name: str) -> str:
    """A name as [A-Za-z0-9_-] (Home Assistant ids); a short hash keeps changed names apart."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    if clean != name:
        clean += "_" + hashlib.sha1(name.encode()).hexdigest()[:6]
    return clean


def default_prefix(camera_name: str) -> str:
    return "counterd/" + re.sub(r"[^A-Za-z0-9_-]", "_", camera_name)


def counted_classes(config: Config) -> list[str]:
    """The classes this counter can report, in config order."""
    if config.detector.type == "motion":
        return [config.detector.motion.class_name]
    return list(config.detector.classes)


def iso_time(ts: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="milliseconds")


def to_json(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Topics:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.events = f"{prefix}/events"
        self.alerts = f"{prefix}/alerts"
        self.occupancy = f"{prefix}/occupancy"
        self.availability = f"{prefix}/availability"
        self.health = f"{prefix}/health"

    def totals(self, line: str, class_name: str) -> str:
        return f"{self.prefix}/totals/{topic_level(line)}/{topic_level(class_name)}"

    def totals_of(self, config: Config) -> dict[tuple[str, str], str]:
        """(line, class) -> totals topic, for every configured line and counted class."""
        return {(line.name, c): self.totals(line.name, c)
                for line in config.lines for c in counted_classes(config)}


def event_payload(event, tz: tzinfo) -> bytes:
    return to_json({"time": iso_time(event.timestamp, tz), "ts": round(event.timestamp, 3),
                    "line": event.line, "direction": event.direction, "class": event.class_name,
                    "track_id": int(event.track_id)})


def alert_payload(alert, tz: tzinfo) -> bytes:
    return to_json({"time": iso_time(alert.ts, tz), "ts": round(alert.ts, 3), "line": alert.line,
                    "kind": alert.kind, "class": alert.class_name, "track_id": int(alert.track_id),
                    "detail": alert.detail})


def totals_payload(date: str, count_in: int, count_out: int) -> bytes:
    return to_json({"date": date, "in": count_in, "out": count_out})
