"""Every exception the gateway raises, in one tree: catch ``GatewayError`` for all of them.

Foreign exceptions (sqlite3, paho, httpx, web3, the IPFS RPC API) are translated where
they enter and raised ``from`` the original; messages name the offending value. Classes
that callers long caught as ``ValueError`` or ``RuntimeError`` still are those too.

    GatewayError
    ├── ConfigError              a config file or value that cannot be used (ValueError)
    ├── ServiceError             a part of the service cannot start
    │   └── WorkerLost           the training worker process ended before it answered
    ├── StoreError               the SQLite database cannot do what was asked
    │   ├── StoreUnavailable     a write failed for a reason that may pass (lock, I/O error)
    │   │   └── StoreFull        the disk or the database size cap is full
    │   ├── RegistryError        the model registry's tables cannot be used
    │   └── ModelsUnavailable    the API cannot read the model registry now (503)
    ├── IngestError              ingest cannot run (its MQTT client cannot be set up)
    │   ├── MqttError            the broker refused or dropped the ingest's client
    │   └── ReadingRejected      one MQTT payload failed validation (quarantined, counted)
    ├── LearningError            training or export cannot go on
    │   ├── MLPError             bad network shapes, weights or settings (ValueError)
    │   │   └── TrainingDiverged the loss became NaN or infinite
    │   ├── SkipTraining         too little data to train now (the reason is data)
    │   ├── NothingToTrain       no local device has enough readings for a round
    │   ├── ExportError          the network cannot be written as TFLite (ValueError)
    │   ├── EdgeExportError      the model does not fit the boards' format (ValueError)
    │   └── SchedulerError       the training scheduler was used out of order
    ├── DataError                an input file cannot be read (ValueError)
    │   ├── CsvError             a CSV history (``experiment replay``)
    │   └── SiteError            a site's CSV (``experiment federation``)
    ├── PeerError                the LEARNAE peer layer
    │   ├── ContentStoreError    the content store failed
    │   │   ├── BlockNotFound    no block with that CID is available
    │   │   ├── BlockTooLarge    a block over the configured size limit
    │   │   └── ContentStoreUnavailable  the store did not answer (timeout, refused)
    │   ├── TransportError       gossip could not be sent or received
    │   ├── PeerRejected         a peer's entry, weights or gossip failed validation
    │   ├── LedgerError          a ledger failed or refused an announcement
    │   │   ├── LedgerUnavailable     the ledger's node did not answer (retryable)
    │   │   └── LedgerNotInstalled    the ``ledger`` extra is not installed
    │   └── UnsafeConfig         a test node's config breaks the network-safety rules
    ├── FirmwareError            the firmware cannot be compiled or flashed
    ├── OtaError                 an over-the-air update cannot be prepared
    │   ├── BundleError          the bundle cannot be built (board, compiler, source)
    │   └── OtaBusy              a push to that device is still running
    ├── HostError                ``install``: a system tool failed
    └── RigError                 a test, demo or benchmark rig could not start
        ├── BrokerError          the private Mosquitto
        └── MicroPythonNotFound  the MicroPython unix port is not installed
"""

from __future__ import annotations

from enum import StrEnum as _StrEnum

__all__ = [
    "BlockNotFound",
    "BlockTooLarge",
    "BrokerError",
    "BundleError",
    "ConfigError",
    "ContentStoreError",
    "ContentStoreUnavailable",
    "CsvError",
    "DataError",
    "EdgeExportError",
    "ExportError",
    "FirmwareError",
    "GatewayError",
    "HostError",
    "IngestError",
    "LearningError",
    "LedgerError",
    "LedgerNotInstalled",
    "LedgerUnavailable",
    "MLPError",
    "MicroPythonNotFound",
    "ModelsUnavailable",
    "MqttError",
    "NothingToTrain",
    "OtaBusy",
    "OtaError",
    "PeerError",
    "PeerRejected",
    "ReadingRejected",
    "RegistryError",
    "RigError",
    "SchedulerError",
    "ServiceError",
    "SiteError",
    "SkipTraining",
    "StoreError",
    "StoreFull",
    "StoreUnavailable",
    "TrainingDiverged",
    "TransportError",
    "UnsafeConfig",
    "WorkerLost",
]


class GatewayError(Exception):
    """Base of every exception the gateway raises."""


class ConfigError(GatewayError, ValueError):
    """A config file that cannot be used; the message names key and value."""


class ServiceError(GatewayError, RuntimeError):
    """The service cannot start; the message says what to fix."""


class WorkerLost(ServiceError):
    """The worker process ended (stopped, killed or crashed) before it answered a call."""


# -- the database ---------------------------------------------------------------------
class StoreError(GatewayError, RuntimeError):
    """The store cannot do what was asked; the message names the file or value."""


class StoreUnavailable(StoreError):
    """A write failed for a reason that may pass (lock, read-only file, I/O error)."""


class StoreFull(StoreUnavailable):
    """The disk or the database size cap is full."""


class RegistryError(StoreError):
    """The model registry cannot be used; wraps the sqlite3 error and names the path."""


class ModelsUnavailable(StoreError):
    """The model registry cannot be read now (e.g. a full disk before its first model);
    the API answers 503 with this message."""


# -- ingest -------------------------------------------------------------------------------
class IngestError(GatewayError, RuntimeError):
    """Ingest cannot run; the message names the setting."""


class MqttError(IngestError):
    """The broker refused the connection or the session could not be set up."""


class ReadingRejected(IngestError):
    """One MQTT payload failed validation; ``reason`` is the label counted in metrics."""

    def __init__(self, reason: str, detail: str, device: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.device = device


# -- learning -----------------------------------------------------------------------------
class LearningError(GatewayError):
    """Training, judging or exporting a model cannot go on."""


class MLPError(LearningError, ValueError):
    """Bad network shapes, weights or training settings."""


class TrainingDiverged(MLPError):
    """The loss became NaN or infinite."""


class NothingToTrain(LearningError, RuntimeError):
    """No local device has enough readings for a round yet."""


class ExportError(LearningError, ValueError):
    """The network cannot be written as a TFLite model."""


class EdgeExportError(LearningError, ValueError):
    """The model does not fit the boards' LEM1 format."""


class SchedulerError(LearningError, RuntimeError):
    """The scheduler was used out of order (e.g. started twice)."""


class SkipTraining(LearningError):
    """Too little (usable) data to train now; ``reason`` (a ``SkipReason``) says which rule."""

    def __init__(self, reason: _StrEnum, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


# -- input files --------------------------------------------------------------------------
class DataError(GatewayError, ValueError):
    """An input file cannot be read; the message names file, line and value."""


class CsvError(DataError):
    """A CSV history cannot be read."""


class SiteError(DataError):
    """A site's CSV or ``--site`` argument cannot be used."""


# -- the peer layer -----------------------------------------------------------------------
class PeerError(GatewayError):
    """Base of every error raised by gateway.peer."""


class ContentStoreError(PeerError):
    """The content store failed."""


class BlockNotFound(ContentStoreError):
    """No block with that CID is available."""


class BlockTooLarge(ContentStoreError):
    """A block exceeds the size limit."""


class ContentStoreUnavailable(ContentStoreError):
    """The content store could not be reached in time."""


class TransportError(PeerError):
    """Gossip could not be published or received."""


class PeerRejected(PeerError):
    """A peer's input failed validation; ``reason`` is a short label used in metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class UnsafeConfig(PeerError):
    """A node configuration that could reach beyond loopback."""


class LedgerError(PeerError):
    """A ledger (IOTA EVM, IOTA, in-process) failed or refused an announcement."""


class LedgerUnavailable(LedgerError):
    """The ledger's node could not be reached in time; the announcement may be retried."""


class LedgerNotInstalled(LedgerError):
    """The ledger adapters' packages (the ``ledger`` extra) are not installed."""


# -- firmware and updates -----------------------------------------------------------------
class FirmwareError(GatewayError, RuntimeError):
    """A board file, the compiler or mpremote failed; the message names what."""


class OtaError(GatewayError):
    """An over-the-air update cannot be prepared or sent."""


class BundleError(OtaError, ValueError):
    """The bundle cannot be built (unknown board, compiler failure, bad source)."""


class OtaBusy(OtaError):
    """A push to the device is still running; one at a time per device."""


# -- the host -----------------------------------------------------------------------------
class HostError(GatewayError, RuntimeError):
    """A system tool (useradd, systemctl, ...) failed; the message names the command."""


class RigError(GatewayError, RuntimeError):
    """A rig for tests, the demo or benchmarks could not start."""


class BrokerError(RigError):
    """Mosquitto could not be found or started."""


class MicroPythonNotFound(RigError):
    """The ``micropython`` unix port is not installed."""
