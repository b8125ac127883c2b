"""Each package's public face: ``__all__`` lists exactly what its ``__init__`` exports, and
importing a package loads no heavy dependency it does not need (TFLite's flatbuffers, the
ledgers' web3 and iota_sdk load only where they are used)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "gateway"
PACKAGES = sorted(
    ".".join(p.parent.relative_to(PACKAGE.parent).parts) for p in PACKAGE.rglob("__init__.py"))
HEAVY = ("flatbuffers", "tflite", "web3", "iota_sdk", "torch", "sklearn")


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_honest(name: str) -> None:
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list)
    assert len(module.__all__) == len(set(module.__all__))
    for item in module.__all__:
        assert hasattr(module, item), f"{name}.{item} is in __all__ but missing"
    public = {k for k, v in vars(module).items()
              if not k.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public - {"annotations"} <= set(module.__all__)


def test_the_faces_stay_small() -> None:
    sizes = {n: len(importlib.import_module(n).__all__) for n in PACKAGES}
    assert {n: k for n, k in sizes.items() if k > 45} == {}


@pytest.mark.parametrize("name", ["gateway", "gateway.learning", "gateway.peer",
                                  "gateway.peer.ledgers", "gateway.service", "gateway.api.app",
                                  "gateway.federation", "gateway.cli"])
def test_importing_loads_no_heavy_dependency(name: str) -> None:
    code = (f"import sys, json; import {name}; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PACKAGE.parent)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_tflite_export_does_load_its_dependency() -> None:
    # the check above can fail: the module that needs flatbuffers does load it
    code = ("import sys; import gateway.learning.tflite_export; "
            "print('flatbuffers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PACKAGE.parent)
    assert out.stdout.strip() == "True"
