"""How the demo's alarms compare with what its simulated sensors injected.

The simulated driver (edge_firmware/drv_simulated.py) injects an anomaly at a reading
whenever its uniform draw for (seed, seq, 99) is below ``anomaly_rate`` (deterministic), so
the demo knows every injected reading by its sequence number (``injected``). Per device
this reports: readings stored, injected, flagged by the board (thresholds or its edge
model), and, for the injected readings the gateway's detector scored (all but those of its
first ``window`` readings, its warm-up: before the first model it scores against
persistence), how many anomaly events of ``GET /api/devices/{id}/anomalies`` contain each
(one is the goal) and the events that contain none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def uniform_draw(seed: int, seq: int, k: int) -> float:
    """The simulated driver's draw for (seed, seq, k), uniform in [0, 1).

    The board module's own xorshift32 (edge_firmware/drv_simulated.py), written again here
    because board code is MicroPython kept private to the board;
    tests/demo/test_alarms.py compares the two on many inputs.
    """
    x = (seed ^ (seq * 2654435761) ^ (k * 40503 + 1)) & 0xFFFFFFFF or 1
    for _ in range(3):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
    return (x & 0xFFFFFF) / 16777216.0


def injected(seed: int, seq: int, rate: float) -> bool:
    """Whether the simulated sensor with ``seed`` injected an anomaly at reading ``seq``."""
    return uniform_draw(seed & 0xFFFFFFFF, seq, 99) < rate


def _within(event: dict[str, Any], t: float, half: float) -> bool:
    return bool(event["start"] - half <= t <= event["end"] + half)


def measure(db_path: Path, api_url: str, seeds: dict[str, int], rate: float,
            window: int, period_s: float) -> dict[str, Any]:
    """Per device and in total; ``window``: the readings the detector warms up on.
    Events are on the detector's grid: a reading belongs to one within half a period."""
    import httpx

    from gateway.store import Store

    out: dict[str, Any] = {"devices": {}}
    total: dict[str, Any] = {"stored": 0, "injected": 0, "board_flagged": 0, "spikes_scored": 0,
             "spikes_one_event": 0, "events": 0, "events_without_spike": 0}
    with Store.open(db_path, readonly=True) as store, \
            httpx.Client(base_url=api_url, timeout=10) as api:
        for device, seed in sorted(seeds.items()):
            samples = store.samples(device, limit=10**8)
            if not samples:
                continue
            injected_at = [s for s in samples if injected(seed, s.seq, rate)]
            events = api.get(f"/api/devices/{device}/anomalies", params={"limit": 1000}).json()
            doc: dict[str, Any] = {
                "stored": len(samples), "injected": len(injected_at),
                "board_flagged": sum(1 for s in samples if s.anomaly),
                "events": len(events) if isinstance(events, list) else 0,
            }
            if isinstance(events, list):
                start = min(s.ts for s in samples) + (window + 0.5) * period_s
                newest = max(s.ts for s in samples)
                scored = [s.ts for s in injected_at if start <= s.ts < newest]
                hits = [sum(1 for e in events if _within(e, t, period_s / 2)) for t in scored]
                doc.update(spikes_scored=len(scored),
                           spikes_one_event=sum(1 for h in hits if h == 1),
                           events_without_spike=sum(
                               1 for e in events if e["start"] >= start and not any(
                                   _within(e, t, period_s / 2) for t in scored)))
            out["devices"][device] = doc
            for key in total:
                total[key] += int(doc.get(key, 0))
    stored = max(total["stored"], 1)
    total["injected_rate"] = round(total["injected"] / stored, 5)
    total["board_flag_rate"] = round(total["board_flagged"] / stored, 5)
    total["board_flags_per_injected"] = (round(total["board_flagged"] / total["injected"], 3)
                                         if total["injected"] else None)
    out["total"] = total
    return out
