"""MQTT ingest: validate readings, group-commit them to the store, ack after COMMIT."""

from gateway.ingest.ingestor import IngestError, Ingestor
from gateway.ingest.metrics import IngestMetrics, metrics_for
from gateway.ingest.validate import DEFAULT_RANGES, ReadingRejected, Validator, parse_ranges

__all__ = [
    "DEFAULT_RANGES",
    "IngestError",
    "IngestMetrics",
    "Ingestor",
    "ReadingRejected",
    "Validator",
    "metrics_for",
    "parse_ranges",
]
