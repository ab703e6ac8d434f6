"""Home Assistant MQTT discovery: one device per camera, with sensors for today's in/out per line
and class, occupancy and fps, and a binary sensor for the camera's health.

Each entity is a retained config message at <discovery_prefix>/<component>/<node>/<object>/config
that points at the state topics of counterd.mqtt.topics. An entity is removed by an empty retained
message on its config topic (what happens to a deleted line's sensors on reload).
"""
from __future__ import annotations

from counterd import __version__
from counterd.config import Config
from counterd.mqtt.topics import Topics, counted_classes, slug, to_json


def node_id(topics: Topics) -> str:
    """This camera's device id: its topic prefix, which is unique per broker anyway."""
    return slug(topics.prefix.replace("/", "_"))


def discovery_messages(config: Config, topics: Topics, discovery_prefix: str) -> dict[str, bytes]:
    """Config topic -> retained payload for every entity of this camera."""
    node = node_id(topics)
    device = {"identifiers": [node], "name": config.camera.name, "manufacturer": "counterd",
              "model": "line counter", "sw_version": __version__}
    common = {"availability_topic": topics.availability, "device": device}
    out: dict[str, bytes] = {}

    def add(component: str, object_id: str, entity: dict) -> None:
        unique = f"{node}_{object_id}"
        out[f"{discovery_prefix}/{component}/{node}/{object_id}/config"] = to_json(
            {**entity, "unique_id": unique, **common})

    for line in config.lines:
        for class_name in counted_classes(config):
            for direction in ("in", "out"):
                add("sensor", f"{slug(line.name)}_{slug(class_name)}_{direction}", {
                    "name": f"{line.name} {class_name} {direction} today",
                    "state_topic": topics.totals(line.name, class_name),
                    "value_template": f"{{{{ value_json['{direction}'] }}}}",
                    "state_class": "total_increasing", "icon": "mdi:counter"})
    add("sensor", "occupancy", {
        "name": "occupancy", "state_topic": topics.occupancy,
        "value_template": "{{ value_json.occupancy }}", "state_class": "measurement",
        "icon": "mdi:account-group"})
    add("sensor", "fps", {
        "name": "analysed fps", "state_topic": topics.health, "value_template": "{{ value_json.fps }}",
        "unit_of_measurement": "fps", "state_class": "measurement", "entity_category": "diagnostic"})
    add("binary_sensor", "health", {
        "name": "camera problem", "device_class": "problem", "state_topic": topics.health,
        "value_template": "{{ 'OFF' if value_json.healthy else 'ON' }}", "entity_category": "diagnostic"})
    return out
