"""``bench train``: the numpy trainer against PyTorch (CPU), side by side in one run.

Both train the same architecture from the same initial weights on the same data, with the
same epochs, batch size, Adam settings and the same per-epoch shuffling order, so the
accuracy gap measures numerics only and the time ratio measures the implementation. Times
alternate numpy/torch over ``--repeats`` runs and the median of each is reported (the
machine is noisy). BLAS threads (numpy, via threadpoolctl) and torch threads are both set
to ``--threads``. Tasks: scikit-learn's digits (classification), a next-hour forecast on
the bundled AirQuality recording, and the gateway's current forecaster on it (linear path,
Huber loss, its default settings). The float32 TFLite export of both numpy models is run in
the LiteRT interpreter and compared with numpy. torch and scikit-learn are imported here
only (the ``bench`` extra). Without PyTorch (``make test`` does not install it; ``make bench``
does) numpy is measured alone: every torch figure is null and ``"torch"`` says why.
"""

from __future__ import annotations

import argparse
import importlib
import resource
import statistics
import sys
import time
from typing import Any

import numpy as np

from gateway.learning.mlp import MLPSpec, TrainConfig, Weights, init_weights, predict, train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=30, help="epochs per training run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=64, help="hidden units (one layer)")
    parser.add_argument("--window", type=int, default=12, help="forecast window (hours)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating timed runs")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tiny", action="store_true", help="small data and 2 epochs (smoke test, not a figure)"
    )


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _torch_train(
    torch: Any,
    spec: MLPSpec,
    weights: Weights,
    x: np.ndarray,
    y: np.ndarray,
    config: TrainConfig,
) -> tuple[Weights, float]:
    """Train a torch copy of the network exactly as ``mlp.train`` does; (weights, seconds)."""
    nn = torch.nn
    layers: list[Any] = []
    for i in range(spec.n_layers):
        lin = nn.Linear(spec.sizes[i], spec.sizes[i + 1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(weights[f"layers.{i}.weight"].T.copy()))
            lin.bias.copy_(torch.from_numpy(weights[f"layers.{i}.bias"].copy()))
        layers.append(lin)
        if i < spec.n_layers - 1:
            layers.append(nn.ReLU() if spec.activation == "relu" else nn.Tanh())
    hidden = nn.Sequential(*layers)
    skip = nn.Linear(spec.sizes[0], spec.sizes[-1], bias=False) if spec.skip else None
    if skip is not None:
        with torch.no_grad():
            skip.weight.copy_(torch.from_numpy(weights["skip.weight"].T.copy()))

    def model(xb: Any) -> Any:
        return hidden(xb) if skip is None else hidden(xb) + skip(xb)

    if spec.output == "softmax":
        loss_fn = nn.CrossEntropyLoss()
    elif config.huber_delta is None:
        loss_fn = nn.MSELoss()
    else:  # mlp's Huber is twice torch's (it equals the squared error below the delta)
        huber = nn.HuberLoss(delta=config.huber_delta)

        def loss_fn(out: Any, target: Any) -> Any:
            return 2.0 * huber(out, target)

    params = list(hidden.parameters()) + ([] if skip is None else list(skip.parameters()))
    opt = torch.optim.Adam(params, lr=config.learning_rate)
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    yt = torch.from_numpy(y.astype(np.int64) if spec.output == "softmax" else y.astype(np.float32))
    rng = np.random.default_rng(config.seed)  # the same shuffling order as mlp.train
    n = x.shape[0]
    started = time.perf_counter()
    for _ in range(config.epochs):
        perm = torch.from_numpy(rng.permutation(n))
        for start in range(0, n, config.batch_size):
            idx = perm[start : start + config.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - started
    out: Weights = {}
    linears = [m for m in hidden if isinstance(m, nn.Linear)]
    for i, lin in enumerate(linears):
        out[f"layers.{i}.weight"] = lin.weight.detach().numpy().T.copy()
        out[f"layers.{i}.bias"] = lin.bias.detach().numpy().copy()
    if skip is not None:
        out["skip.weight"] = skip.weight.detach().numpy().T.copy()
    return out, seconds


def _compare(
    torch: Any,
    name: str,
    spec: MLPSpec,
    x: np.ndarray,
    y: np.ndarray,
    config: TrainConfig,
    repeats: int,
    start: Weights | None = None,
) -> dict[str, Any]:
    start = init_weights(spec, config.seed) if start is None else start
    np_times, torch_times = [], []
    np_weights = torch_weights = start
    for r in range(repeats):
        t0 = time.perf_counter()
        np_weights = train(spec, start, x, y, config).weights
        np_times.append((time.perf_counter() - t0) / config.epochs)
        if torch is None:  # numpy alone
            _progress(f"{name} run {r + 1}/{repeats}: numpy {np_times[-1] * 1e3:.1f} ms/epoch")
            continue
        torch_weights, seconds = _torch_train(torch, spec, start, x, y, config)
        torch_times.append(seconds / config.epochs)
        _progress(
            f"{name} run {r + 1}/{repeats}: numpy {np_times[-1] * 1e3:.1f} ms/epoch, "
            f"torch {torch_times[-1] * 1e3:.1f} ms/epoch"
        )
    a = statistics.median(np_times)
    b = statistics.median(torch_times) if torch_times else None
    return {
        "numpy_s_per_epoch": a,
        "torch_s_per_epoch": b,
        "ratio": None if b is None else a / b,
        "weights": (np_weights, None if torch is None else torch_weights),
    }


def _digits(tiny: bool, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    if tiny:
        order = order[:300]
    n_test = len(order) // 5
    te, tr = order[:n_test], order[n_test:]
    return x[tr], y[tr], x[te], y[te]


def _airquality(window: int, tiny: bool) -> tuple[np.ndarray, ...]:
    from gateway.data.airquality import load_airquality
    from gateway.learning.dataset import build_forecast_dataset, chronological_split

    rec = load_airquality()
    if tiny:
        rec = rec.slice(0, 600)
    ds = build_forecast_dataset(
        rec.ts, rec.values, rec.channels, window=window, period_s=3600.0, min_windows=16
    )
    tr, te = chronological_split(ds.x.shape[0], 0.2)
    return ds.x[tr], ds.y[tr], ds.x[te], ds.y[te], ds.last_inputs[te]


def _current_forecaster(tiny: bool, seed: int, epochs: int
                        ) -> tuple[MLPSpec, TrainConfig, tuple[np.ndarray, ...]]:
    """The gateway's forecaster (defaults, hourly): spec, its training settings, and data.

    Data are the network's own inputs and targets (the change from the last reading,
    calendar inputs), chronologically split; the persistence baseline in target units is 0.
    """
    import dataclasses

    from gateway.config import TrainingSection
    from gateway.data.airquality import load_airquality
    from gateway.learning.dataset import chronological_split
    from gateway.learning.forecast import computation_for, forecaster_spec, prepare, train_config

    rec = load_airquality()
    if tiny:
        rec = rec.slice(0, 600)
    settings = TrainingSection(period_s=3600.0, min_windows=16)
    comp = computation_for(settings, len(rec.channels), rec.ts)
    ds, comp = prepare(rec.ts, rec.values, rec.channels, settings, comp=comp)
    f, t = comp.inputs(ds.x, ds.t), comp.targets(ds.x, ds.y)
    tr, te = chronological_split(f.shape[0], 0.2)
    cfg = dataclasses.replace(train_config(settings), epochs=epochs, patience=None,
                              validation_fraction=0.0, keep_start=False, seed=seed)
    return forecaster_spec(settings, comp), cfg, (f[tr], t[tr], f[te], t[te], np.zeros_like(t[te]))


def _forecaster_start(spec: MLPSpec, seed: int) -> Weights:
    from gateway.learning.forecast import init_forecaster

    return init_forecaster(spec, seed)


def _mae(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.abs(pred.astype(np.float64) - y)))


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.epochs < 1:  # times are per epoch
        raise ValueError(f"--epochs {args.epochs}: must be at least 1")
    torch: Any
    try:
        torch = importlib.import_module("torch")
    except ImportError:  # the bench extra is not installed: numpy alone, and the result says so
        torch = None
    from threadpoolctl import threadpool_limits

    from gateway.learning.metrics import accuracy, mse
    from gateway.learning.tflite_export import export_tflite, run_tflite

    if torch is not None:
        torch.manual_seed(args.seed)
        torch.set_num_threads(args.threads)
    else:
        _progress("bench train: PyTorch is not installed (make bench): measuring numpy alone")
    epochs = 2 if args.tiny else args.epochs
    repeats = 1 if args.tiny else max(args.repeats, 1)
    config = TrainConfig(
        epochs=epochs, batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed
    )
    result: dict[str, Any] = {
        "threads": args.threads,
        "epochs": epochs,
        "batch_size": args.batch_size,
        "repeats": repeats,
        "torch_version": None if torch is None else torch.__version__,
        "torch": "compared" if torch is not None
        else "not installed (make bench installs the bench extra): numpy measured alone",
        "tiny": bool(args.tiny),
    }
    with threadpool_limits(limits=args.threads):
        # digits: classification
        xtr, ytr, xte, yte = _digits(args.tiny, args.seed)
        spec_c = MLPSpec((64, args.hidden, 10), "relu", "softmax")
        _progress(f"digits: {len(ytr)} train, {len(yte)} test, spec {spec_c.sizes}")
        cmp_c = _compare(torch, "digits", spec_c, xtr, ytr, config, repeats)
        np_w, torch_w = cmp_c.pop("weights")
        probs = predict(spec_c, np_w, xte)
        result.update(cmp_c)
        result["numpy_accuracy"] = accuracy(probs.argmax(1), yte)
        result["torch_accuracy"] = (
            None if torch_w is None else accuracy(predict(spec_c, torch_w, xte).argmax(1), yte)
        )
        tfl_c = export_tflite(spec_c, np_w)
        err_c = float(np.abs(run_tflite(tfl_c, xte) - probs).max())
        q_c = run_tflite(export_tflite(spec_c, np_w, calibration=xtr[:500]), xte)
        result["tflite_int8_accuracy"] = accuracy(q_c.argmax(1), yte)

        # AirQuality: forecast the next hourly reading of 8 sensor channels
        xtr, ytr, xte, yte, last = _airquality(args.window, args.tiny)
        c = ytr.shape[1]
        spec_f = MLPSpec((xtr.shape[1], args.hidden, c), "relu", "linear")
        _progress(f"airquality: {len(ytr)} train, {len(yte)} test windows, spec {spec_f.sizes}")
        cmp_f = _compare(torch, "airquality", spec_f, xtr, ytr, config, repeats)
        np_wf, torch_wf = cmp_f.pop("weights")
        pred = predict(spec_f, np_wf, xte)
        result["forecast"] = {
            **cmp_f,
            "numpy_test_mse": mse(pred, yte),
            "torch_test_mse": (
                None if torch_wf is None else mse(predict(spec_f, torch_wf, xte), yte)
            ),
            "persistence_test_mse": mse(last, yte),
            "train_windows": len(ytr),
        }
        err_f = float(np.abs(run_tflite(export_tflite(spec_f, np_wf), xte) - pred).max())

        # the gateway's current forecaster on the same recording, with its training settings
        spec_g, cfg_g, (ftr, ttr, fte, tte, base_te) = _current_forecaster(
            args.tiny, args.seed, epochs)
        _progress(f"forecaster: {len(ttr)} train, {len(tte)} test windows, spec {spec_g.sizes}, "
                  f"linear path, loss {'huber' if cfg_g.huber_delta else 'mse'}")
        cmp_g = _compare(torch, "forecaster", spec_g, ftr, ttr, cfg_g, repeats,
                         start=_forecaster_start(spec_g, args.seed))
        np_wg, torch_wg = cmp_g.pop("weights")
        result["forecaster"] = {
            **cmp_g,
            "spec": list(spec_g.sizes),
            "huber_delta": cfg_g.huber_delta,
            "numpy_test_mae": _mae(predict(spec_g, np_wg, fte), tte),
            "torch_test_mae": (
                None if torch_wg is None else _mae(predict(spec_g, torch_wg, fte), tte)
            ),
            "persistence_test_mae": _mae(base_te, tte),
            "train_windows": len(ttr),
        }
    result["tflite_max_abs_err"] = max(err_c, err_f)
    result["tflite_bytes"] = len(tfl_c)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return result
