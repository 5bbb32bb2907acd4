"""MQTT topics of the bridge: ``<prefix>/<site>/<sensor_id>/readings`` in, ``<prefix>/<site>/<sensor_id>/rejected``
out. ``<prefix>`` may have several levels (``plant/sm``); site and sensor are one level each, never wildcards."""

from __future__ import annotations

from dataclasses import dataclass

READINGS = "readings"
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ReadingsTopic:
    """A topic a device published readings to."""

    prefix: str
    site: str
    sensor_id: str

    @property
    def name(self) -> str:
        return f"{self.prefix}/{self.site}/{self.sensor_id}/{READINGS}"

    @property
    def rejected(self) -> str:
        """Where the bridge publishes the rejections of messages from this topic."""
        return f"{self.prefix}/{self.site}/{self.sensor_id}/{REJECTED}"


def subscription(prefix: str, site: str = "+") -> str:
    """The topic filter of the bridge: ``<prefix>/<site>/+/readings`` (``site`` is ``+`` for every site)."""
    return f"{prefix}/{site}/+/{READINGS}"


def parse_topic(topic: str, prefix: str) -> ReadingsTopic | None:
    """The readings topic ``topic`` names under ``prefix``, or None when it has another shape."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 3 or parts[2] != READINGS:
        return None
    site, sensor_id = parts[0], parts[1]
    if not site or not sensor_id or any(c in "+#" for c in site + sensor_id):
        return None
    return ReadingsTopic(prefix, site, sensor_id)


__all__ = ["READINGS", "REJECTED", "ReadingsTopic", "parse_topic", "subscription"]
