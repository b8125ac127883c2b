"""Smoke test of ``learnae-gateway bench train --json --tiny`` (numpy vs torch)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DISPATCH = """
import argparse, json, sys
from gateway.bench import train
parser = argparse.ArgumentParser()
parser.add_argument("--json", action="store_true")
train.add_arguments(parser)
print(json.dumps(train.run(parser.parse_args(sys.argv[1:]))))
"""


def test_bench_train_tiny_prints_one_json_line() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from gateway.commands.bench import TARGETS

    missing = [t for t in TARGETS if importlib.util.find_spec(f"gateway.bench.{t}") is None]
    if missing:  # the dispatcher imports every target; run this one the way it would
        argv = [sys.executable, "-c", DISPATCH, "--json", "--tiny"]
    else:
        argv = [sys.executable, "-m", "gateway", "bench", "train", "--json", "--tiny"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in (
        "numpy_s_per_epoch",
        "torch_s_per_epoch",
        "ratio",
        "numpy_accuracy",
        "torch_accuracy",
        "tflite_max_abs_err",
        "peak_rss_mb",
    ):
        assert isinstance(result[key], float), key
    assert result["tiny"] is True and result["epochs"] == 2
    assert result["ratio"] == pytest.approx(
        result["numpy_s_per_epoch"] / result["torch_s_per_epoch"]
    )
    assert abs(result["numpy_accuracy"] - result["torch_accuracy"]) <= 0.02
    assert result["tflite_max_abs_err"] <= 1e-5
    assert "digits run 1/1" in done.stderr
    fc = result["forecaster"]
    assert fc["huber_delta"] is not None and fc["spec"][-1] == 8
    assert fc["ratio"] == pytest.approx(fc["numpy_s_per_epoch"] / fc["torch_s_per_epoch"])
    # the same steps from the same start: the test errors agree to float32 rounding
    assert fc["torch_test_mae"] == pytest.approx(fc["numpy_test_mae"], rel=1e-2)
