"""MQTT for building systems: crossings, today's totals, occupancy, alerts and health on a broker,
with Home Assistant discovery (README: Building systems).

topics (names and payloads), discovery (Home Assistant entities), publisher (the connection, the
bounded queue, reconnects), bridge (what the daemon publishes and when; started by the daemon's
mqtt_ctx). aiomqtt is imported only when [mqtt] is enabled.
"""
