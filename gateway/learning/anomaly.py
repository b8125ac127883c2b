"""The gateway's anomaly detector: one reading at a time, as it runs live and in replays.

It stands on any forecaster that can predict the next reading from a window (``Predictor``),
and adds what makes its alarms worth trusting:

* **Replacement.** A value whose score exceeds the threshold enters the window as its
  prediction, not as read (so do gaps), so one spike is one flag and not one per later
  window that still holds it. A run longer than ``MAX_REPLACED`` readings is the signal
  (a turn, a new level): the window then takes the run as read. The board's LEM scorer
  does the same (``shared.edge_model``).
* **Level shifts.** A run starts at a flag and lasts while flags keep coming (pauses of up to
  ``shift_after`` readings). Once it has ``shift_after`` readings, at least half of them
  flagged, and the median of its latest ``shift_after`` residuals is still more than half a
  threshold off, the detector accepts the new level: that median is added to a per-channel
  level offset and to the window, so flags stop within a bounded number of readings (one
  event, not hundreds until the next retraining).
* **Cycles longer than the window.** Residuals are corrected per phase of the day (``bins``
  phase bins): a summary of a longer history than the window, the mean and spread of the
  residual at this time of day, so a daily rise the window cannot see coming is not flagged
  at every cycle edge.
* **A persistence floor.** A channel the forecaster predicts worse than "next = last" on the
  held-out data is scored against the last reading instead, so a poor model cannot make the
  alarms worse than the naive baseline (the board, with no such fallback, runs the model).
* **Online adaptation** between retrainings: the per-phase bias follows the median of the
  unflagged residuals, the per-phase scale their median absolute value (stochastic medians;
  the scale bounded to 0.5 to 4 times the calibrated one).
* **A calibrated threshold.** ``calibration.calibrate`` picks the lowest threshold (not
  below a floor) at which the held-out part of the training series raises at most
  ``anomaly_false_alarms_per_day`` events per day, instead of a fixed quantile of scores
  (extrapolated from the bulk of the scores when the held-out span is too short to count).

score = max over present channels |x - pred - bias[phase]| / scale[phase], raw units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

DAY_S = 86400.0
MAX_BINS = 288  # phase bins per day: five-minutely at most (each needs readings to learn from)
SHRINK = 20.0  # a phase bin's statistics count as this many readings of the global ones
MAX_REPLACED = 2  # as shared.edge_model: readings in a row replaced before a run is taken as read
SCALE_BOUNDS = (0.5, 4.0)  # online scale stays within these factors of the calibrated one
MEDIAN_ABS = 0.6745  # median |x| of a standard normal x
MIN_COUNTED_EVENTS = 10  # a held-out span allowing fewer events extrapolates the tail instead
GAP_RATIO = 2.0  # extremes this far above the rest are anomalies, not the normal tail


class Predictor(Protocol):
    """What the detector needs from a forecaster (today's MLP or any other)."""

    @property
    def channels(self) -> list[str]: ...

    @property
    def window(self) -> int: ...

    @property
    def period_s(self) -> float: ...

    def predict(self, windows: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Next reading [N, C] (raw units) of each window [N, W, C] (raw, oldest first);
        ``times`` [N] are the times of the predicted readings (for calendar inputs)."""
        ...


class ForecastPredictor:
    """``Predictor`` over a ``gateway.learning.forecast.ForecastModel`` (standardised MLP)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    @property
    def channels(self) -> list[str]:
        return list(self.model.channels)

    @property
    def window(self) -> int:
        return int(self.model.window)

    @property
    def period_s(self) -> float:
        return float(self.model.period_s)

    def predict(self, windows: np.ndarray, times: np.ndarray) -> np.ndarray:
        n, w, c = windows.shape
        z = self.model.scaler.transform(windows.reshape(n * w, c)).reshape(n, w * c)
        # step 1 of a forecaster with any horizon; ``times`` feed its calendar inputs
        pred = self.model.predict_next_std(z, times)
        return np.asarray(self.model.scaler.inverse(pred), np.float64)

    @property
    def residual_scale(self) -> np.ndarray:
        """The model's own residual scale, raw units (what the board divides by)."""
        out: np.ndarray = np.asarray(self.model.residual_scale, np.float64) * self.model.scaler.std
        return out


@dataclass(frozen=True)
class PersistencePredictor:
    """``Predictor`` before a device has a model: the next reading is the last one.

    With the same calibration, replacement and events as a model, a device's spikes are
    alarms from its first readings on instead of after its first training.
    """

    channels: list[str]
    window: int
    period_s: float

    def predict(self, windows: np.ndarray, times: np.ndarray) -> np.ndarray:
        return np.array(windows[:, -1, :], np.float64)


def predictor_for(meta: dict[str, Any], weights: Any) -> ForecastPredictor:
    """The predictor of a registry version (metadata + weights)."""
    from gateway.learning.forecast import ForecastModel

    return ForecastPredictor(ForecastModel.from_metadata(meta, weights))


def phase_bins(period_s: float, window: int) -> int:
    """Phase bins per day; 1 (no phase correction) when a day is no longer than the window."""
    slots = DAY_S / period_s
    if slots <= window or slots < 2:
        return 1
    return int(min(MAX_BINS, round(slots)))


def phase_of(times: np.ndarray, bins: int) -> np.ndarray:
    if bins <= 1:
        return np.zeros(np.shape(times), np.int64)
    frac = np.mod(np.asarray(times, np.float64), DAY_S) / DAY_S
    return np.minimum((frac * bins).astype(np.int64), bins - 1)


@dataclass(frozen=True)
class Calibration:
    """The detector's statistics for one model version (stored in its metadata)."""

    threshold: float
    bias: np.ndarray  # [bins, C] raw units
    scale: np.ndarray  # [bins, C] raw units, > 0
    bins: int
    board_threshold: float  # the same budget for the board's scorer (no phase correction)
    held_days: float = 0.0
    held_events: int = 0
    persist: tuple[bool, ...] = ()  # channels predicted as "next = last": the model is worse

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "bias": self.bias.tolist(),
                "scale": self.scale.tolist(), "bins": self.bins,
                "board_threshold": self.board_threshold, "held_days": self.held_days,
                "held_events": self.held_events, "persist": list(self.persist)}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Calibration:
        return cls(threshold=float(doc["threshold"]), bias=np.asarray(doc["bias"], np.float64),
                   scale=np.asarray(doc["scale"], np.float64), bins=int(doc["bins"]),
                   board_threshold=float(doc["board_threshold"]),
                   held_days=float(doc.get("held_days", 0.0)),
                   held_events=int(doc.get("held_events", 0)),
                   persist=tuple(bool(v) for v in doc.get("persist", ())))

    @classmethod
    def plain(cls, scale: np.ndarray, threshold: float) -> Calibration:
        """No phase correction: the board's computation (scale = the model's residual scale)."""
        scale = np.asarray(scale, np.float64)[None, :]
        return cls(threshold, np.zeros_like(scale), scale, 1, threshold)


@dataclass
class StepResult:
    t: float
    score: float | None  # None: not scored (window filling, or nothing present)
    flag: bool = False
    channels: tuple[int, ...] = ()  # channels above the threshold
    shifted: bool = False  # this reading completed a run that was accepted as a new level
    reason: str = ""  # why not scored: "warming" | "gap"


@dataclass
class DetectorSettings:
    shift_after: int = 6  # flagged readings in a row before the new level is accepted
    gap: int = 2  # unflagged readings that do not yet end a run (nor an event)
    adapt: bool = True  # online bias/scale updates and level-shift acceptance
    alpha: float = 0.02  # weight of one unflagged residual in the phase statistics


@dataclass
class Detector:
    """Streaming state of one device: feed ``step`` one grid slot at a time, in order."""

    predictor: Predictor
    calibration: Calibration
    settings: DetectorSettings = field(default_factory=DetectorSettings)

    def __post_init__(self) -> None:
        c = len(self.predictor.channels)
        self.win = np.zeros((self.predictor.window, c))
        self.raw = np.zeros_like(self.win)  # the window as read (gaps as predicted)
        self.replaced = 0  # readings in a row with a replaced value
        self.filled = 0
        self.level = np.zeros(c)
        self.missing = 0
        self.run: list[np.ndarray] = []
        self.quiet = 0  # unflagged readings since the last flag of the run
        self.run_flags = 0  # flagged readings in the run
        self._load(self.calibration)

    def _load(self, cal: Calibration) -> None:
        self.calibration = cal
        self.bias = cal.bias.copy()
        self.scale = cal.scale.copy()
        self.scale0 = cal.scale.copy()
        self.threshold = cal.threshold
        c = self.win.shape[1]
        self.persist = np.asarray(cal.persist if len(cal.persist) == c else (False,) * c, bool)

    def swap(self, predictor: Predictor, calibration: Calibration) -> None:
        """A retrained model: new statistics, same window (no warm-up), level offset reset."""
        if list(predictor.channels) != list(self.predictor.channels) or (
                predictor.window != self.predictor.window):
            self.predictor = predictor
            self.__post_init__()
            self._load(calibration)
            return
        self.predictor = predictor
        self.level[:] = 0.0
        self._load(calibration)

    def reset(self) -> None:
        self.filled = 0
        self.replaced = 0
        self.run, self.run_flags = [], 0

    def step(self, t: float, x: np.ndarray) -> StepResult:
        present = ~np.isnan(x)
        w = self.predictor.window
        if self.filled < w:
            if not present.all():
                return StepResult(t, None, reason="warming")  # the first windows hold no gap
            self.win[:-1] = self.win[1:]
            self.win[-1] = x
            self.raw[:] = self.win
            self.filled += 1
            return StepResult(t, None, reason="warming")
        b = int(phase_of(np.asarray([t]), self.calibration.bins)[0])
        pred = self.predictor.predict((self.win - self.level)[None], np.asarray([t]))[0]
        pred = pred + self.level
        if self.persist.any():
            pred = np.where(self.persist, self.win[-1], pred)
        pred = pred + self.bias[b]
        self.win[:-1] = self.win[1:]
        self.raw[:-1] = self.raw[1:]
        self.raw[-1] = np.where(present, x, pred)
        if not present.any():
            self.win[-1] = pred
            self.missing += 1
            if self.missing > w:  # the window would hold only predictions: start again
                self.reset()
            return StepResult(t, None, reason="gap")
        self.missing = 0
        resid = np.where(present, x - pred, 0.0)
        per = np.abs(resid) / self.scale[b]
        score = float(per.max())
        over = present & (per > self.threshold)
        clean = np.where(over | ~present, pred, x)
        result = StepResult(t, score, bool(over.any()), tuple(np.flatnonzero(over).tolist()))
        if result.flag:
            self.quiet = 0
            self.run.append(resid)
            self.run_flags += 1
        elif self.run:  # the run goes on over pauses; the statistics wait for its end
            self.quiet += 1
            self.run.append(resid)
            if self.quiet > self.settings.shift_after:
                self.run, self.run_flags = [], 0
        elif self.settings.adapt:
            a = self.settings.alpha
            s0 = self.scale0[b]
            # bias and scale follow the median residual and the median absolute residual
            # (0.6745 sigma for a normal bulk), a step of alpha x the calibrated scale a
            # reading: robust as the calibration is, so common large residuals (a cycle's
            # edge) move neither
            self.bias[b] = np.where(present, self.bias[b] + a * s0 * np.sign(resid),
                                    self.bias[b])
            up = np.abs(resid) > MEDIAN_ABS * self.scale[b]
            new = self.scale[b] + a * s0 * np.where(up, 1.0, -1.0)
            lo, hi = SCALE_BOUNDS
            new = np.clip(new, lo * s0, hi * s0)
            self.scale[b] = np.where(present, new, self.scale[b])
        k = self.settings.shift_after
        jump = self._new_level(k, b) if self.settings.adapt and len(self.run) >= k else None
        if jump is not None:  # sustained: the latest residuals still half a threshold off
            self.win[:-1] += jump  # the window as it would have been at the new level
            clean = np.where(present, x, pred + jump)
            self.replaced = -1  # the window is at the new level: nothing to restore
            result.shifted = True
        self.win[-1] = clean
        self.replaced = self.replaced + 1 if (result.flag and not result.shifted) else 0
        if self.replaced > MAX_REPLACED:
            # a deviation that lasts is the signal (a turn, a new level): the window takes
            # the readings of the run as read (as the board's scorer does) ...
            k = min(self.replaced, w)
            self.win[-k:] = self.raw[-k:]
            self.replaced = 0
            # ... and, adapting, the level offset moves by the run's median residual,
            # so that a forecaster of absolute levels predicts at the new level
            jump = self._new_level(k, b) if self.settings.adapt and len(self.run) >= k else None
            if jump is not None:
                self.win[:-k] += jump
                result.shifted = True
        return result

    def _new_level(self, k: int, b: int) -> np.ndarray | None:
        """Accept the run's latest ``k`` residuals as a new level where their median is
        half a threshold off (the level offset moves by it, the run ends); that move, or
        None where no channel moved."""
        jump = np.median(np.asarray(self.run[-k:]), axis=0)
        moved = np.abs(jump) > 0.5 * self.threshold * self.scale[b]
        if not moved.any():
            return None
        jump = np.where(moved, jump, 0.0)
        self.level += jump
        self.run, self.run_flags = [], 0
        return jump


def unit_score(score: float | None, threshold: float) -> float | None:
    """Score mapped to 0..1 as s / (s + threshold): the alarm is at 0.5."""
    if score is None:
        return None
    return float(score / (score + threshold)) if score + threshold > 0 else 0.0
