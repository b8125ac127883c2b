"""Flags into anomaly events: what a user is alarmed about, once per incident.

Consecutive flagged readings (and flags at most ``gap`` unflagged readings apart) are one
event: device, start and end time (of the first and last flagged reading), peak score,
the channels that were above the threshold, and how many readings were flagged. An event
whose run was accepted as a new level is of kind ``level_shift``; else ``anomaly``.
An event stays open until ``gap`` unflagged readings have followed its last flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.learning.anomaly import StepResult


@dataclass
class AnomalyEvent:
    device: str
    start: float
    end: float
    peak: float
    channels: list[str]
    flags: int = 1
    kind: str = "anomaly"  # "anomaly" | "level_shift"
    open: bool = True
    id: int | None = None  # set by whoever stores it

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "device": self.device, "start": self.start, "end": self.end,
                "peak": self.peak, "channels": list(self.channels), "flags": self.flags,
                "kind": self.kind, "open": self.open}


class EventTracker:
    """Merges one device's ``StepResult``s into events; ``update`` returns what changed."""

    def __init__(self, device: str, channels: list[str], period_s: float, gap: int = 2) -> None:
        self.device = device
        self.channels = list(channels)
        self.period_s = period_s
        self.gap = gap
        self.current: AnomalyEvent | None = None

    def update(self, result: StepResult) -> list[AnomalyEvent]:
        """Events opened, extended or closed by this reading (the same object while open)."""
        changed: list[AnomalyEvent] = []
        ev = self.current
        if ev is not None and result.shifted:
            ev.kind = "level_shift"
            changed.append(ev)
        if ev is not None:
            since = round((result.t - ev.end) / self.period_s)  # slots since its last flag
            if since > self.gap + 1 or (not result.flag and since >= self.gap + 1):
                ev.open = False
                changed.append(ev)
                self.current = ev = None
        if result.flag:
            names = [self.channels[j] for j in result.channels]
            score = float(result.score or 0.0)
            if ev is None:
                ev = AnomalyEvent(self.device, result.t, result.t, score, names)
                self.current = ev
            else:
                ev.end = result.t
                ev.peak = max(ev.peak, score)
                ev.channels = sorted(set(ev.channels) | set(names),
                                     key=self.channels.index)
                ev.flags += 1
            if result.shifted:
                ev.kind = "level_shift"
            if ev not in changed:
                changed.append(ev)
        return changed

    def close(self) -> list[AnomalyEvent]:
        """End of the stream: close the open event, if any."""
        ev, self.current = self.current, None
        if ev is None:
            return []
        ev.open = False
        return [ev]
