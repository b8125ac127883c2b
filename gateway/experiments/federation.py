"""What federation does for the forecasting task: sites as in-process LEARNAE peers.

Every site is one gateway with one device: a full PeerNode (signed log, gossip through a
LocalHub, weights through a SimNetwork of per-peer stores) whose trainer is the gateway's
own shared-forecaster step (``gateway.learning.federated``). Each site's test period is
the last 20 % of its time; training uses the readings before it (only the last
``train_hours`` of them when set). Reported per site, step 1 and the mean over steps
1..H, MAE and MSE in the site's standardized units (each channel divided by its spread
over the site's training readings, averaged over channels):

persistence, seasonal naive, ridge, local (the same forecaster trained on the site's own
windows only), fused (the site's LEARNAE weights after the last round), personalised
(the better of fused and a short local fine-tune, chosen on the site's validation
windows), centralised (one forecaster on all sites' training windows pooled: the
yardstick, not something LEARNAE can do).
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from gateway.config import PeerSection, TrainingSection
from gateway.data.sites import Site, SiteError
from gateway.errors import SkipTraining
from gateway.experiments.simnet import SimNetwork
from gateway.learning.baselines import baseline_table, choose_ridge
from gateway.learning.computation import Computation
from gateway.learning.dataset import build_forecast_dataset
from gateway.learning.federated import (
    DeviceWindows,
    device_windows,
    mse,
    personalise,
    shared_computation,
    spec_for,
    train_shared,
)
from gateway.learning.forecast import init_forecaster, ridge_start, train_config
from gateway.learning.mlp import MLPSpec, Weights, predict
from gateway.peer.identity import Identity
from gateway.peer.node import PeerNode
from gateway.peer.trainer import TrainOutcome
from gateway.peer.transport import LocalHub

TEST_FRACTION = 0.2
MIN_TRAIN_WINDOWS = 48
MIN_TEST_WINDOWS = 24
METHODS = ("persistence", "seasonal_naive", "ridge", "local", "fused", "personalized",
           "centralized")


@dataclass(frozen=True)
class FederationConfig:
    horizon: int = 1
    train_hours: float | None = None
    rounds: int = 12
    epochs: int = 4  # local epochs per round
    window: int = 8
    hidden_units: int = 32
    seed: int = 0


def site_period(site: Site) -> float:
    """The sampling period: the median gap between consecutive distinct readings."""
    gaps = np.diff(np.unique(site.ts))
    if gaps.size == 0:
        raise SiteError(f"site {site.name!r}: {site.ts.size} reading(s), a series needs more")
    return float(np.median(gaps))


def settings_for(cfg: FederationConfig, period_s: float) -> TrainingSection:
    return TrainingSection(period_s=period_s, window=cfg.window, horizon=cfg.horizon,
                           hidden_units=cfg.hidden_units, epochs=cfg.epochs, seed=cfg.seed,
                           min_windows=0, test_fraction=TEST_FRACTION)


def site_windows(site: Site, cfg: FederationConfig, comp: Computation | None = None
                 ) -> tuple[DeviceWindows, TrainingSection, float]:
    """The site's windows: training (before its test period) then test; SiteError if unusable."""
    if site.ts.size < 2:
        raise SiteError(f"site {site.name!r}: {site.ts.size} reading(s), a series needs more")
    period = site_period(site)
    settings = settings_for(cfg, period)
    t0, t1 = float(site.ts[0]), float(site.ts[-1])
    test_start = t0 + (1.0 - TEST_FRACTION) * (t1 - t0)
    lo = -np.inf if cfg.train_hours is None else test_start - cfg.train_hours * 3600.0
    train_mask = (site.ts < test_start) & (site.ts >= lo)
    if not train_mask.any():
        raise SiteError(f"site {site.name!r}: no readings in its training period before "
                        f"{test_start:.0f} (train_hours {cfg.train_hours})")
    try:
        fitted = build_forecast_dataset(site.ts[train_mask], site.values[train_mask],
                                        site.channels, window=cfg.window, period_s=period,
                                        min_windows=0, horizon=cfg.horizon)
        ds = build_forecast_dataset(site.ts, site.values, site.channels, window=cfg.window,
                                    period_s=period, min_windows=0, scaler=fitted.scaler,
                                    horizon=cfg.horizon)
    except SkipTraining as exc:
        raise SiteError(f"site {site.name!r}: {exc}") from exc
    last_target = ds.t + (cfg.horizon - 1) * period
    first_input = ds.t - cfg.window * period
    train_rows = np.flatnonzero((last_target < test_start) & (first_input >= lo - period / 2))
    test_rows = np.flatnonzero(ds.t >= test_start)
    if train_rows.size < MIN_TRAIN_WINDOWS:
        raise SiteError(f"site {site.name!r}: {train_rows.size} gap-free training windows of "
                        f"{cfg.window}+{cfg.horizon} readings, needs {MIN_TRAIN_WINDOWS}")
    if test_rows.size < MIN_TEST_WINDOWS:
        raise SiteError(f"site {site.name!r}: {test_rows.size} gap-free windows in its test "
                        f"period (from {test_start:.0f}), needs {MIN_TEST_WINDOWS}")
    sub = ds.subset(np.concatenate([train_rows, test_rows]))
    comp = comp or shared_computation(settings, len(site.channels), [site.ts])
    windows = device_windows(site.name, sub, comp, settings,
                             test=slice(train_rows.size, train_rows.size + test_rows.size))
    return windows, settings, test_start


class SiteTrainer:
    """LocalTrainer of one site: a few epochs of the gateway's shared-forecaster step."""

    def __init__(self, spec: MLPSpec, d: DeviceWindows, settings: TrainingSection,
                 start: Weights) -> None:
        self.spec, self.d, self.settings, self.start = spec, d, settings, start
        self.calls = 0

    def initial_weights(self) -> Weights:
        return {k: v.copy() for k, v in self.start.items()}

    def train(self, weights: Weights) -> TrainOutcome:
        self.calls += 1
        cfg = dataclasses.replace(train_config(self.settings), seed=self.settings.seed
                                  + 1000 * self.calls)
        trained = train_shared(self.spec, weights, [self.d], cfg)
        metrics = {"val_loss": mse(self.spec, trained, self.d, "val")}
        return TrainOutcome(trained, self.d.samples, metrics)


def _table(spec: MLPSpec, d: DeviceWindows, comp: Computation, preds: dict[str, Weights | None]
           ) -> dict[str, Any]:
    rows = d.test
    x, y = d.ds.x[rows], d.ds.y[rows]
    predictions = {}
    for name, weights in preds.items():
        if weights is not None:
            predictions[name] = comp.predictions(x, predict(spec, weights, d.features[rows]))
    assert d.ridge is not None
    predictions["ridge"] = comp.predictions(x, d.ridge.predict(d.features[rows]))
    seasonal = None if d.ds.seasonal is None else d.ds.seasonal[rows]
    return baseline_table(y=y, last=d.ds.last_inputs[rows], seasonal=seasonal,
                          channels=comp.channels, predictions=predictions)


def _summary(table: dict[str, Any], horizon: int) -> dict[str, Any]:
    steps = table["steps"]

    def pick(step_names: list[str], method: str) -> dict[str, float] | None:
        got = [steps[s][method] for s in step_names]
        if any(g is None for g in got):
            return None
        return {k: round(float(np.mean([g[k] for g in got])), 5) for k in ("mae", "mse")}

    out = {"h1": {m: pick(["h1"], m) for m in METHODS}}
    if horizon > 1:
        out[f"h{horizon}"] = {m: pick(list(steps), m) for m in METHODS}
    return out


def _trained(spec: MLPSpec, start: Weights, devices: list[DeviceWindows],
             settings: TrainingSection, epochs: int) -> Weights:
    cfg = dataclasses.replace(train_config(settings), epochs=epochs)
    return train_shared(spec, start, devices, cfg)


def _ridge_init(settings: TrainingSection, spec: MLPSpec, d: DeviceWindows) -> bool:
    return settings.init == "ridge" and spec.skip and d.ridge is not None


def check_sites(sites: list[Site]) -> list[str]:
    """The channels every site has (in the first site's order); SiteError if none or a clash."""
    if not sites:
        raise SiteError("no site given")
    names = [s.name for s in sites]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SiteError(f"site names {dup} are given twice")
    common = [c for c in sites[0].channels if all(c in s.channels for s in sites[1:])]
    if not common:
        raise SiteError("the sites share no channel: " + "; ".join(
            f"{s.name}: {', '.join(s.channels)}" for s in sites))
    return common


def run_federation(sites: list[Site], cfg: FederationConfig,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    say = progress or (lambda s: print(s, file=sys.stderr, flush=True))
    started = time.monotonic()
    channels = check_sites(sites)
    sites = [dataclasses.replace(s, values=s.values[:, [s.channels.index(c) for c in channels]],
                                 channels=list(channels)) for s in sites]
    settings0 = settings_for(cfg, site_period(sites[0]))
    comp = shared_computation(settings0, len(channels), [s.ts for s in sites])
    prepared = [site_windows(s, cfg, comp) for s in sites]
    devices = [p[0] for p in prepared]
    spec = spec_for(settings0, comp)
    session_seed = int.from_bytes(hashlib.sha256(b"forecast-federation").digest()[:4], "little")
    start = init_forecaster(spec, session_seed + cfg.seed)
    total_epochs = cfg.rounds * cfg.epochs
    say(f"{len(sites)} sites, channels {channels}, windows "
        f"{[(d.samples, d.test.stop - d.test.start) for d in devices]}")

    # local and centralised start as the gateway starts a fresh forecaster (``init``)
    local = []
    for d, (_, settings, _) in zip(devices, prepared, strict=True):
        s0 = start
        if d.ridge is not None and _ridge_init(settings, spec, d):
            s0 = ridge_start(spec, start, d.ridge)
        local.append(_trained(spec, s0, [d], settings, total_epochs))
    pooled_ridge = choose_ridge(np.concatenate([d.features[d.train] for d in devices]),
                                np.concatenate([d.targets[d.train] for d in devices]))
    s0 = ridge_start(spec, start, pooled_ridge) if settings0.init == "ridge" and spec.skip \
        else start
    central = _trained(spec, s0, devices, settings0, total_epochs)
    say("local-only and centralised models trained")

    hub, net = LocalHub(seed=cfg.seed), SimNetwork()
    peer_settings = PeerSection(enabled=True, session="forecast", fusion="mean",
                                fuse_peers=max(1, len(sites) - 1), fetch_timeout_s=0.5,
                                staleness_half_life=2.0, shard_epoch_s=1.0)
    tick = [0]
    nodes = []
    for i, (d, (_, settings, _)) in enumerate(zip(devices, prepared, strict=True)):
        nodes.append(PeerNode(
            identity=Identity.from_seed(f"forecast/{cfg.seed}/{i}".encode()),
            store=net.store_for(d.device), transport=hub.endpoint(d.device),
            trainer=SiteTrainer(spec, d, settings, start), settings=peer_settings,
            registry=CollectorRegistry(), seed=cfg.seed * 1000 + i,
            clock=lambda: float(tick[0]),
        ))
    rng = np.random.default_rng(cfg.seed + 7)
    for r in range(cfg.rounds):
        tick[0] = r
        for node in nodes:
            node.refresh_gossip()
        for i in rng.permutation(len(nodes)):
            nodes[i].run_round()
        say(f"round {r + 1}/{cfg.rounds}")

    result_sites: dict[str, Any] = {}
    for i, (d, (_, settings, test_start)) in enumerate(zip(devices, prepared, strict=True)):
        fused = nodes[i].current_weights()
        assert fused is not None
        fused = {k: np.asarray(v, np.float32) for k, v in fused.items()}
        personal, choice = personalise(spec, fused, d, settings)
        table = _table(spec, d, comp, {"local": local[i], "fused": fused,
                                       "personalized": personal, "centralized": central})
        summary: dict[str, Any] = _summary(table, cfg.horizon)
        h1 = summary["h1"]
        summary.update(
            train_hours=round(d.samples * settings.period_s / 3600.0, 1),
            train_windows=d.samples,
            test_windows=d.test.stop - d.test.start,
            test_start=test_start,
            personalisation=choice["choice"],
            alarms=alarm_events(sites[i], d, spec, comp, personal, settings),
            ratios={
                "personalized_to_persistence": _ratio(h1, "personalized", "persistence"),
                "personalized_to_ridge": _ratio(h1, "personalized", "ridge"),
                "personalized_to_local": _ratio(h1, "personalized", "local"),
                "personalized_to_centralized": _ratio(h1, "personalized", "centralized"),
            },
        )
        if cfg.horizon > 1:
            hh = summary[f"h{cfg.horizon}"]
            summary["ratios"][f"h{cfg.horizon}_personalized_to_persistence"] = _ratio(
                hh, "personalized", "persistence")
            summary["ratios"][f"h{cfg.horizon}_personalized_to_seasonal_naive"] = _ratio(
                hh, "personalized", "seasonal_naive")
        result_sites[d.device] = summary
        say(f"{d.device}: h1 MAE " + ", ".join(
            f"{m} {v['mae']:.4f}" for m, v in h1.items() if v is not None))
    return {
        "horizon": cfg.horizon,
        "rounds": cfg.rounds,
        "epochs_per_round": cfg.epochs,
        "window": cfg.window,
        "channels": channels,
        "calendar": comp.calendar,
        "units": "standardized (per channel, the site's training spread), mean over channels",
        "sites": result_sites,
        "seconds": round(time.monotonic() - started, 1),
    }


def alarm_events(site: Site, d: DeviceWindows, spec: MLPSpec, comp: Computation,
                 weights: Weights, settings: TrainingSection) -> dict[str, Any] | None:
    """Event-level precision, recall and detection delay of the alarms on the test period.

    The threshold is set on the validation windows as the gateway sets it (a quantile of
    the scores, at least ``anomaly_min_threshold``); a labelled event is a run of
    consecutive labelled slots; it is detected when an alarm falls inside it.
    """
    if site.labels is None:
        return None
    from gateway.learning.dataset import resample

    c = comp.channels

    def scores(rows: slice) -> np.ndarray:
        pred = comp.predictions(d.ds.x[rows], predict(spec, weights, d.features[rows]))[:, :c]
        return np.abs(d.ds.y[rows, :c] - pred)

    val_res = scores(d.val)
    scale = np.maximum(np.sqrt(np.mean(val_res.astype(np.float64) ** 2, axis=0)), 1e-3)
    val_scores = (val_res / scale).max(axis=1)
    threshold = max(settings.anomaly_min_threshold,
                    float(np.quantile(val_scores, settings.anomaly_quantile)))
    flags = (scores(d.test) / scale).max(axis=1) > threshold
    grid_t, grid = resample(site.ts, site.labels[:, None], settings.period_s)
    t = d.ds.t[d.test]
    slot = np.clip(np.rint((t - grid_t[0]) / settings.period_s).astype(int), 0, len(grid) - 1)
    truth = np.nan_to_num(grid[slot, 0]) > 0

    def runs(mask: np.ndarray) -> list[tuple[int, int]]:
        out, start = [], None
        for i, m in enumerate(mask):
            if m and start is None:
                start = i
            if not m and start is not None:
                out.append((start, i - 1))
                start = None
        if start is not None:
            out.append((start, len(mask) - 1))
        return out

    events, alarms = runs(truth), runs(flags)
    detected = [e for e in events if flags[e[0]: e[1] + 1].any()]
    delays = [float(t[e[0] + int(np.argmax(flags[e[0]: e[1] + 1]))] - t[e[0]]) for e in detected]
    true_alarms = [a for a in alarms if truth[a[0]: a[1] + 1].any()]
    return {
        "events": len(events),
        "alarms": len(alarms),
        "threshold": round(threshold, 3),
        "precision": round(len(true_alarms) / len(alarms), 4) if alarms else None,
        "recall": round(len(detected) / len(events), 4) if events else None,
        "mean_delay_s": round(float(np.mean(delays)), 1) if delays else None,
    }


def _ratio(table: dict[str, Any], a: str, b: str) -> float | None:
    if table.get(a) is None or table.get(b) is None or not table[b]["mae"]:
        return None
    return round(table[a]["mae"] / table[b]["mae"], 4)


__all__ = ["METHODS", "FederationConfig", "run_federation", "site_windows"]
