"""Per-line alert rules over crossing events: tailgating and wrong-way. Pure: events in, alerts out."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Alert:
    ts: float               # epoch seconds of the crossing that raised it
    line: str
    kind: str               # "tailgating" or "wrong-way"
    class_name: str
    track_id: int
    detail: str             # one line for people

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Checked:
    """The alerts a batch raised, and each line's last 'in' once that batch is stored."""
    alerts: list[Alert]
    last_in: dict[str, float]


class AlertRules:
    """Remembers each line's last stored 'in' crossing, so tailgating is found across batches.

    The flusher checks a batch before writing it and calls stored() once the write committed:
    a batch the store refused and that is checked again later raises its alerts once, never
    against itself."""

    def __init__(self, lines=()):
        self._last_in: dict[str, float] = {}
        self.reconfigure(lines)

    def reconfigure(self, lines) -> None:
        """New line settings (a reload); the last 'in' of lines kept by name is remembered."""
        self.tailgate = {line.name: line.tailgate_seconds for line in lines if line.tailgate_seconds}
        self.forbidden = {line.name: line.forbidden_direction for line in lines if line.forbidden_direction}

    def __bool__(self) -> bool:
        return bool(self.tailgate or self.forbidden)

    def stored(self, checked: Checked) -> None:
        self._last_in = checked.last_in

    def check(self, events) -> Checked:
        alerts, last_in = [], dict(self._last_in)
        for e in sorted(events, key=lambda e: e.timestamp):
            if self.forbidden.get(e.line) == e.direction:
                alerts.append(Alert(e.timestamp, e.line, "wrong-way", e.class_name, e.track_id,
                                    f"{e.class_name} (track {e.track_id}) crossed {e.line!r} "
                                    f"going {e.direction}, which is forbidden"))
            if e.direction == "in" and e.line in self.tailgate:
                last = last_in.get(e.line)
                if last is not None and e.timestamp - last <= self.tailgate[e.line]:
                    alerts.append(Alert(e.timestamp, e.line, "tailgating", e.class_name, e.track_id,
                                        f"{e.class_name} (track {e.track_id}) went in over {e.line!r} "
                                        f"{e.timestamp - last:.1f} s after the previous one "
                                        f"(limit {self.tailgate[e.line]:g} s)"))
                last_in[e.line] = e.timestamp
        return Checked(alerts, last_in)
