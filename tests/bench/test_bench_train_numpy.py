"""``bench train`` without PyTorch (``make test`` does not install it) measures numpy alone
and says so, instead of failing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bench_train_without_torch_measures_numpy_alone() -> None:
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("PyTorch is installed (make bench): the comparison runs instead")
    pytest.importorskip("sklearn")
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "bench", "train", "--json", "--tiny"],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["torch"].startswith("not installed") and "numpy measured alone" in result["torch"]
    assert "PyTorch is not installed" in done.stderr
    assert isinstance(result["numpy_s_per_epoch"], float) and result["numpy_s_per_epoch"] > 0
    assert isinstance(result["numpy_accuracy"], float)
    for key in ("torch_version", "torch_s_per_epoch", "ratio", "torch_accuracy"):
        assert result[key] is None, key
    assert result["forecast"]["torch_test_mse"] is None
    assert isinstance(result["forecast"]["numpy_test_mse"], float)
    assert result["forecaster"]["torch_test_mae"] is None
    assert isinstance(result["forecaster"]["numpy_test_mae"], float)
