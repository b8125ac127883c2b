"""A registered model version as the bytes others take: TFLite, or the boards' LEM1."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from gateway.learning.registry import ModelVersion

__all__ = ["FORMATS", "export_model"]

FORMATS = ("tflite", "edge")


def export_model(version: ModelVersion, fmt: str) -> bytes:
    """A registered forecaster as TFLite or as the boards' LEM1 bytes."""
    from gateway.learning.forecast import ForecastModel

    model = ForecastModel.from_metadata(version.metadata, version.weights)
    if fmt == "edge":
        from gateway.learning.edge_export import edge_model_bytes

        return edge_model_bytes(model)
    if fmt == "tflite":
        from gateway.learning.tflite_export import export_tflite

        return export_tflite(*model.export_network())
    raise ValueError(f"model format {fmt!r} is not one of tflite, edge")
