"""The packages' public faces: ``__all__`` lists exactly what they export."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("name", ["gateway.store", "gateway.ingest", "gateway.system"])
def test_all_is_honest(name: str) -> None:
    module = importlib.import_module(name)
    assert sorted(module.__all__) == sorted(set(module.__all__))
    for item in module.__all__:
        assert hasattr(module, item), f"{name}.{item} is in __all__ but missing"
    public = {k for k, v in vars(module).items()
              if not k.startswith("_") and not isinstance(v, type(importlib))}
    assert public <= set(module.__all__) | {"annotations"}
