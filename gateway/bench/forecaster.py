"""``bench forecaster``: what the forecaster costs (numpy only, no PyTorch needed).

1. Time per training epoch of the previous forecaster (window -> next reading, one
   hidden layer) and of the current one (change from the last reading, linear path,
   per-window normalisation, calendar inputs), same windows of the bundled AirQuality
   recording, same batch size and Adam settings; median of ``--repeats`` alternating runs.
2. One LEARNAE round of a gateway (``gateway.learning.pipeline.train_candidates``: shared
   training on every device's windows, personalisation, promotion guard) with
   ``--devices`` devices and ``--readings`` readings in all, on one BLAS thread.
3. With ``--options``: how the forecaster's options compare, each trained alone on the
   first 80 % of every seasonal AirQuality site (the federation experiment's test periods
   are never seen), scored on the gateway's own held-out split (docs/learning.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from typing import Any

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=10, help="epochs per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--readings", type=int, default=100_000, help="in all devices")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--options", action="store_true",
                        help="also compare the forecaster's options (docs/learning.md)")


OPTIONS: dict[str, dict[str, Any]] = {
    "previous": dict(normalize="standard", calendar="off", linear_path=False,
                     predict_change=False, init="persistence", loss="mse"),
    "defaults": {},
    "init=ridge": dict(init="ridge"),
    "normalize=standard": dict(normalize="standard"),
    "calendar=off": dict(calendar="off"),
    "predict_change=false": dict(predict_change=False),
    "window=24": dict(window=24),
    "linear_path=false": dict(linear_path=False),
    "loss=mse": dict(loss="mse"),
    "huber_delta=0.1": dict(huber_delta=0.1),
    "huber_delta=0.4": dict(huber_delta=0.4),
}


def option_table() -> dict[str, Any]:
    """MAE / persistence and MAE / ridge (step 1) per option: mean and worst of the sites."""
    from gateway.config import TrainingSection
    from gateway.data.sites import airquality_seasons
    from gateway.learning.forecast import train_forecast

    sites = airquality_seasons()
    out = {}
    for name, change in OPTIONS.items():
        settings = dataclasses.replace(TrainingSection(period_s=3600.0), **change)
        ratios, ridge = [], []
        for site in sites:
            n = int(0.8 * site.ts.shape[0])
            m = train_forecast(site.ts[:n], site.values[:n], site.channels, settings)
            ratios.append(m.metrics["test_mae_ratio"])
            ridge.append(m.metrics["test_mae"] / m.metrics["test_ridge_mae"])
        out[name] = {"to_persistence_mean": round(float(np.mean(ratios)), 3),
                     "to_persistence_worst": round(float(np.max(ratios)), 3),
                     "to_ridge_mean": round(float(np.mean(ridge)), 3)}
        _progress(f"{name}: {out[name]}")
    return out


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def synthetic_device(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A board sampling every minute: daily cycles, drift, noise, a few gaps."""
    rng = np.random.default_rng(seed)
    k = np.arange(n, dtype=np.float64)
    ts = 1.7e9 + 60.0 * k + rng.uniform(-3, 3, n)
    day = 2 * np.pi * k / 1440.0
    values = np.stack([
        21 + 3 * np.sin(day) + 0.002 * np.cumsum(rng.normal(0, 1, n)) + rng.normal(0, 0.1, n),
        45 + 8 * np.cos(day + seed) + rng.normal(0, 0.5, n),
        400 + 50 * np.sin(2 * day) + rng.normal(0, 5, n),
    ], axis=1)
    values[rng.random(n) < 0.002] = np.nan
    return ts, values, ["temp", "hum", "gas"]


def run(args: argparse.Namespace) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from gateway.config import TrainingSection
    from gateway.data.airquality import load_airquality
    from gateway.learning.federated import prepare_devices, spec_for
    from gateway.learning.forecast import (
        computation_for,
        forecaster_spec,
        init_forecaster,
        network_spec,
        prepare,
        train_config,
    )
    from gateway.learning.mlp import TrainConfig, init_weights, train
    from gateway.learning.pipeline import TrainingJob, train_candidates

    if args.epochs < 1 or args.devices < 1 or args.readings < args.devices:
        raise ValueError("--epochs, --devices must be >= 1 and --readings >= --devices")
    result: dict[str, Any] = {"threads": args.threads, "epochs": args.epochs}
    with threadpool_limits(limits=args.threads):
        rec = load_airquality()
        settings = TrainingSection(period_s=3600.0)
        comp = computation_for(settings, len(rec.channels), rec.ts)
        ds, comp = prepare(rec.ts, rec.values, rec.channels, settings, comp=comp)
        c = len(rec.channels)
        old_spec = network_spec(settings.window * c, c, settings, "linear")
        new_spec = forecaster_spec(settings, comp)
        x_old, y_old = ds.x, ds.y
        x_new, y_new = comp.inputs(ds.x, ds.t), comp.targets(ds.x, ds.y)
        cfg = TrainConfig(epochs=args.epochs, batch_size=settings.batch_size,
                          learning_rate=settings.learning_rate, l2=settings.l2, seed=args.seed)
        old_w, new_w = init_weights(old_spec, args.seed), init_forecaster(new_spec, args.seed)
        # the current forecaster trains with the configured loss (Huber by default)
        new_cfg = dataclasses.replace(cfg, huber_delta=train_config(settings).huber_delta)
        old_t, new_t = [], []
        for r in range(max(args.repeats, 1)):
            t0 = time.perf_counter()
            train(old_spec, old_w, x_old, y_old, cfg)
            old_t.append((time.perf_counter() - t0) / args.epochs)
            t0 = time.perf_counter()
            train(new_spec, new_w, x_new, y_new, new_cfg)
            new_t.append((time.perf_counter() - t0) / args.epochs)
            _progress(f"run {r + 1}: previous {old_t[-1] * 1e3:.1f} ms/epoch, "
                      f"current {new_t[-1] * 1e3:.1f} ms/epoch")
        a, b = statistics.median(old_t), statistics.median(new_t)
        result["per_epoch"] = {
            "windows": int(x_old.shape[0]),
            "previous_spec": list(old_spec.sizes),
            "current_spec": list(new_spec.sizes),
            "current_linear_path": new_spec.skip,
            "current_loss": "mse" if new_cfg.huber_delta is None
            else f"huber (delta {new_cfg.huber_delta})",
            "previous_s_per_epoch": round(a, 5),
            "current_s_per_epoch": round(b, 5),
            "ratio": round(b / a, 3),
        }

        per_device = args.readings // args.devices
        series = [(f"dev{i}", *synthetic_device(per_device, args.seed + i))
                  for i in range(args.devices)]
        gw_settings = TrainingSection()
        devices, _, gcomp = prepare_devices(series, gw_settings)
        assert gcomp is not None
        start = init_forecaster(spec_for(gw_settings, gcomp), args.seed)
        del devices
        t0 = time.perf_counter()
        out = train_candidates(TrainingJob(series, gw_settings, start=start))
        seconds = time.perf_counter() - t0
        promoted = sum(c.promoted for c in out.candidates)
        _progress(f"federation round: {args.devices} devices, {args.readings} readings, "
                  f"{seconds:.2f} s")
        result["federation_round"] = {
            "devices": args.devices,
            "readings": per_device * args.devices,
            "seconds": round(seconds, 3),
            "models": len(out.candidates),
            "promoted": promoted,
            "skipped": {device: skip.detail for device, skip in out.skipped.items()},
            "settings": {k: v for k, v in dataclasses.asdict(gw_settings).items()
                         if k in ("epochs", "patience", "window", "hidden_units",
                                  "personalise_epochs", "period_s")},
        }
        if args.options:
            result["options"] = option_table()
    return result
