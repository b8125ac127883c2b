"""The gateway's live detector: new readings of every device scored, flags merged into events.

A thread wakes every ``training.anomaly_interval_s``. For each device it reads the readings
that arrived since its last pass (plus a little context for interpolation), puts them on the
device's grid (``gateway.learning.regular``), feeds the finished slots to the device's
``Detector`` and stores the events the ``EventTracker`` opens, extends or closes
(``gateway.store.anomaly_events``). A slot is finished once a reading of a later slot has
arrived. The detector stands on the device's promoted forecaster; while the device has none
(not trained yet, or every version refused by the promotion guard), on persistence
calibrated on the readings stored so far (again each time they have doubled). A new model
version is swapped into the running detector (same window, new statistics). A detector
starting up scores from the device's first readings, or after where an earlier run stopped
(its progress is stored with the events), at most ``MAX_BACKLOG`` slots back, so every
reading is scored, once; events left open by an earlier run are closed.

Counted in /metrics: slots scored, flags, events opened, level shifts accepted, slots not
scored by reason, failed passes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from gateway.config import GatewayConfig
from gateway.runtime.parts import PeriodicPart

log = logging.getLogger("learnae.anomaly")

MAX_BACKLOG = 10000  # slots a detector starting up scores at most (older readings: history)


BEFORE_MODEL = 0  # the version number of the persistence detector a device starts with


@dataclass
class _DeviceState:
    version: int  # the model version scoring, or BEFORE_MODEL
    detector: Any
    tracker: Any
    origin: float
    fed_until: float  # time of the last slot fed to the detector


class AnomalyMonitor(PeriodicPart):
    """Start/stop like every part; ``poll_once`` does one pass (tests call it directly)."""

    thread_name = "anomaly-monitor"

    def __init__(self, config: GatewayConfig, *, registry: CollectorRegistry | None = None
                 ) -> None:
        self.config = config
        self._states: dict[str, _DeviceState] = {}
        self._persistence_tried: dict[str, int] = {}  # readings stored at the last try
        super().__init__(log)
        reg = REGISTRY if registry is None else registry
        self.scored = Counter("learnae_anomaly_scored", "Readings scored by the gateway's "
                              "detector", registry=reg)
        self.flags = Counter("learnae_anomaly_flags", "Readings the gateway's detector "
                             "flagged", registry=reg)
        self.events = Counter("learnae_anomaly_events", "Anomaly events opened", registry=reg)
        self.shifts = Counter("learnae_anomaly_level_shifts", "Runs of flags accepted as a "
                              "new level (their event becomes kind level_shift)", registry=reg)
        self.skipped = Counter("learnae_anomaly_unscored", "Grid slots not scored, by reason",
                               ["reason"], registry=reg)
        self.failures = Counter("learnae_anomaly_failures", "Detector passes that failed for "
                                "a device", registry=reg)

    # -- lifecycle --------------------------------------------------------------------
    # what a PeriodicPart asks of each part (Home Assistant answers the same two)
    def run_pass(self) -> int:
        return self.poll_once()

    def interval_s(self) -> float:
        return self.config.training.anomaly_interval_s

    # -- one pass ---------------------------------------------------------------------
    def poll_once(self) -> int:
        """Score every device's new readings; returns the number of slots scored."""
        from gateway.learning.registry import ModelRegistry
        from gateway.store import Store
        from gateway.store.anomaly_events import AnomalyEventLog

        done = 0
        with Store.open(self.config.db_path, readonly=True) as store, \
                ModelRegistry(self.config.db_path) as registry, \
                AnomalyEventLog.open(self.config.db_path) as log_:
            for info in store.devices():
                if self._stop.is_set():
                    break
                # the version served and pushed: the newest promoted one (its number, from
                # an index: the version itself is read only when it changes)
                current = registry.current_version(info.id, "forecast")
                try:
                    done += self._device(store, log_, registry, info.id, current, info.stored)
                except Exception:
                    self.failures.inc()
                    log.exception("anomaly detection for %s failed", info.id)
        return done

    def _scorer(self, store: Any, registry: Any, device: str, number: int | None, stored: int
                ) -> tuple[Any, Any, int] | None:
        """(predictor, calibration, version number) for the device: its promoted model's, or
        persistence's while it has none (None: the running detector already has it, too few
        readings, or persistence needs no new calibration yet)."""
        from gateway.learning.anomaly import Calibration, predictor_for
        from gateway.learning.calibration import before_model

        state = self._states.get(device)
        if number is not None:
            if state is not None and state.version == number:
                return None  # already scoring with it: not read or rebuilt on every pass
            version = registry.get(number)
            predictor = predictor_for(version.metadata, version.weights)
            doc = version.metadata.get("detector")
            cal = (Calibration.from_dict(doc) if doc else Calibration.plain(
                predictor.residual_scale, float(version.metadata["threshold"])))
            return predictor, cal, version.version
        if state is not None and state.version != BEFORE_MODEL:
            return None
        # calibrated (or tried) again only once the readings have doubled: a device whose
        # readings never give enough windows is not read whole on every pass
        if stored < 2 * self._persistence_tried.get(device, 0):
            return None
        self._persistence_tried[device] = max(stored, 1)
        settings = self.config.training
        series = store.read_series(device, limit=settings.max_readings or None)
        made = before_model(series.ts, series.values, list(series.channels), settings)
        if made is None:
            return None
        return made[0], made[1], BEFORE_MODEL

    def _device(self, store: Any, events: Any, registry: Any, device: str, number: int | None,
                stored: int = 0) -> int:
        from gateway.learning.anomaly import Detector, DetectorSettings
        from gateway.learning.events import EventTracker
        from gateway.learning.regular import regularize

        settings = self.config.training
        state = self._states.get(device)
        scorer = self._scorer(store, registry, device, number, stored)
        if scorer is not None:
            predictor, cal, number = scorer
            if state is not None and state.detector.predictor.channels != predictor.channels:
                state = None
            if state is None:
                newest = store.read_series(device, limit=1)
                if not len(newest):
                    return 0
                period, w = predictor.period_s, predictor.window
                # from the first readings, or after what earlier runs scored, at most
                # MAX_BACKLOG slots back; w slots before it warm up
                resume = max(events.scored_until(device) or -np.inf,
                             events.last_end(device) or -np.inf)
                oldest = float(newest.ts[-1]) - MAX_BACKLOG * period
                start = max(resume + period, oldest) - w * period
                det = Detector(predictor, cal, DetectorSettings(
                    shift_after=settings.anomaly_shift_after, gap=settings.anomaly_event_gap))
                tracker = EventTracker(device, predictor.channels, period,
                                       settings.anomaly_event_gap)
                events.close_open(device)  # left open by an earlier run: they cannot grow now
                state = _DeviceState(number, det, tracker, origin=start,
                                     fed_until=start - period)
                self._states[device] = state
            elif state.version != number or number == BEFORE_MODEL:
                state.detector.swap(predictor, cal)
                state.version = number
        if state is None:
            return 0
        period, channels = state.detector.predictor.period_s, state.detector.predictor.channels
        context = (settings.anomaly_max_fill + 2) * period
        series = store.read_series(device, since_ts=state.fed_until - context)
        if not len(series):
            return 0
        values = np.full((len(series), len(channels)), np.nan)
        for j, name in enumerate(channels):
            if name in series.channels:
                values[:, j] = series.values[:, series.channels.index(name)]
        grid_t, grid = regularize(series.ts, values, period, settings.anomaly_max_fill,
                                  state.origin)
        last_slot_t = state.origin + np.rint((series.ts[-1] - state.origin) / period) * period
        fresh = (grid_t > state.fed_until + period / 2) & (grid_t < last_slot_t - period / 2)
        scored = 0
        for t, x in zip(grid_t[fresh], grid[fresh], strict=True):
            res = state.detector.step(float(t), x)
            state.fed_until = float(t)
            if res.score is None:
                self.skipped.labels(res.reason or "not_scored").inc()
                continue
            scored += 1
            self.scored.inc()
            if res.flag:
                self.flags.inc()
            for ev in state.tracker.update(res):
                new = ev.id is None
                events.save(ev, state.version if state.version != BEFORE_MODEL else None)
                if new:
                    self.events.inc()
            if res.shifted:
                self.shifts.inc()
        if fresh.any():
            events.set_scored_until(device, state.fed_until)
        return scored
