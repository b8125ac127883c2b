"""What the forecaster computes around its network, in one place for training and export.

Input: a window of W standardized readings (oldest first, record-major, W*C values) and
the time of the reading to predict. The network sees

- the window itself (``normalize = "standard"``), or the window relative to its last
  reading (``"window"``: each value minus the same channel's last value, still divided by
  the channel's spread), so one network serves sites whose levels differ;
- then, with ``calendar``, four inputs: sine and cosine of the time of day and of the day
  of the week (UTC) of the predicted reading.

The network has a linear path from its inputs to its outputs beside the hidden layer.
Its H*C outputs (step-major: step 1's C channels first) are the change from the last
reading (``change``; else the standardized readings themselves). The output layer and the
linear path start at zero, so the untrained network is exactly persistence.

Everything between the standardized window and the standardized predictions is linear
except the hidden layer, so it folds into one plain network with a linear path
(``fold``): that is what TFLite and the boards' LEM1 model carry, so they compute the
same thing with the same few operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gateway.learning.mlp import MLPSpec, Weights

CALENDAR_INPUTS = 4
NORMALIZATIONS = ("standard", "window")
DAY_S = 86400
WEEK_DAYS = 7
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday: Monday is day 0


def calendar_features(t: np.ndarray) -> np.ndarray:
    """[N, 4] float32: sin/cos of time of day, sin/cos of day of week, of unix seconds ``t``.

    Whole seconds (floor), so a board computing with integers gets the same angles.
    """
    sec = np.floor(np.asarray(t, np.float64))
    tod = 2 * math.pi * np.mod(sec, DAY_S) / DAY_S
    dow = 2 * math.pi * np.mod(np.floor(sec / DAY_S) + EPOCH_WEEKDAY, WEEK_DAYS) / WEEK_DAYS
    return np.stack([np.sin(tod), np.cos(tod), np.sin(dow), np.cos(dow)], axis=1).astype(np.float32)


def timestamps_are_real(ts: np.ndarray) -> bool:
    """Readings stamped by a clock (after 2001), not counted from 0 by a board without one."""
    ts = np.asarray(ts, np.float64)
    return bool(ts.size) and float(np.nanmin(ts)) > 1e9


@dataclass(frozen=True)
class Computation:
    window: int
    channels: int
    horizon: int = 1
    normalize: str = "standard"
    calendar: bool = False
    change: bool = True  # outputs are the change from the last reading

    def __post_init__(self) -> None:
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon!r}")

    @property
    def n_inputs(self) -> int:
        return self.window * self.channels + (CALENDAR_INPUTS if self.calendar else 0)

    @property
    def n_outputs(self) -> int:
        return self.horizon * self.channels

    def last(self, x: np.ndarray) -> np.ndarray:
        return x[:, -self.channels :]

    def inputs(self, x: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        """The network's inputs for standardized windows ``x`` [N, W*C] (float32)."""
        x = np.asarray(x, np.float32)
        f = x - np.tile(self.last(x), (1, self.window)) if self.normalize == "window" else x
        if self.calendar:
            if t is None:
                raise ValueError("this forecaster has calendar inputs: the time is needed")
            f = np.concatenate([f, calendar_features(t)], axis=1)
        return np.ascontiguousarray(f, np.float32)

    def base(self, x: np.ndarray) -> np.ndarray:
        """What the network's output is added to: persistence (``change``) or zero."""
        if not self.change:
            return np.zeros((x.shape[0], self.n_outputs), np.float32)
        return np.tile(np.asarray(self.last(x), np.float32), (1, self.horizon))

    def targets(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(y, np.float32) - self.base(x), np.float32)

    def predictions(self, x: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.base(x) + outputs
        return out

    # a record as JSON field by field, as the API's and the peer's records are
    def to_dict(self) -> dict[str, object]:
        return {
            "horizon": self.horizon,
            "normalize": self.normalize,
            "calendar": self.calendar,
            "change": self.change,
        }

    # -- export ------------------------------------------------------------
    def input_map(self) -> np.ndarray:
        """P with inputs(x) = [x, cal] @ P (float64, square over the exported inputs)."""
        n = self.n_inputs
        p = np.eye(n)
        if self.normalize == "window":
            c, w = self.channels, self.window
            for ch in range(c):
                p[(w - 1) * c + ch, ch : w * c : c] -= 1.0
        return p

    def base_map(self) -> np.ndarray:
        """R with base(x) = [x, cal] @ R."""
        r = np.zeros((self.n_inputs, self.n_outputs))
        if self.change:
            c, w = self.channels, self.window
            for h in range(self.horizon):
                for ch in range(c):
                    r[(w - 1) * c + ch, h * c + ch] = 1.0
        return r

    def fold(self, spec: MLPSpec, weights: Weights) -> tuple[MLPSpec, Weights]:
        """One plain network (with a linear path) from [x_std, cal] to standardized predictions."""
        p = self.input_map()
        out = {k: np.asarray(v, np.float32).copy() for k, v in weights.items()}
        out["layers.0.weight"] = (p @ np.asarray(weights["layers.0.weight"], np.float64)).astype(
            np.float32
        )
        skip = self.base_map()
        if spec.skip:
            skip = skip + p @ np.asarray(weights["skip.weight"], np.float64)
        out["skip.weight"] = skip.astype(np.float32)
        return MLPSpec(spec.sizes, activation=spec.activation, output=spec.output, skip=True), out
