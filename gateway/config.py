"""Gateway configuration: TOML file -> frozen dataclasses, strictly validated.

Each section is a dataclass whose fields carry the defaults; the loader is
generic, so adding a setting means adding one field. Unknown keys and values of
the wrong type or range raise ConfigError naming the key and the value.
Secrets may come from the environment: ``LEARNAE_<SECTION>_<KEY>`` overrides
the file (e.g. ``LEARNAE_MQTT_PASSWORD``). ``toml_text`` writes a config file for the
tools that start gateways (the demo, benchmarks, tests).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.errors import ConfigError


@dataclass(frozen=True)
class GatewaySection:
    id: str = "gateway"
    data_dir: Path = Path("/var/lib/learnae")


@dataclass(frozen=True)
class MqttSection:
    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "learnae"
    username: str | None = None
    password: str | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    client_id: str | None = None
    session_expiry_s: int = 86400
    keepalive_s: int = 30
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None


@dataclass(frozen=True)
class StoreSection:
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    retention_days: float = 0.0
    max_rows_per_device: int = 0
    quarantine_rows: int = 1000
    max_size_mb: float = 0.0  # 0 = no cap; past the cap ingest stops acking (like a full disk)
    busy_timeout_ms: int = 1000  # wait for another writer's lock before reporting unavailable


@dataclass(frozen=True)
class IngestSection:
    commit_max_messages: int = 1000
    commit_max_ms: float = 5.0
    unknown_devices: Literal["register", "reject"] = "register"
    plausible_ranges: str = ""  # overrides, e.g. "temp=-40..85, hum=0..100, co2="
    receive_maximum: int = 1000  # unacked QoS 1 messages the broker may have in flight to us
    retention_interval_s: float = 60.0


@dataclass(frozen=True)
class TrainingSection:
    enabled: bool = True
    task: Literal["forecast", "classify"] = "forecast"
    period_s: float = 60.0  # readings are resampled to this grid; gaps drop windows
    window: int = 8  # readings the forecaster sees (the boards keep as many)
    hidden_units: int = 32
    hidden_layers: int = 1
    activation: Literal["relu", "tanh"] = "relu"
    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 0.002
    l2: float = 0.0001
    patience: int = 5  # epochs without a better validation loss before stopping
    validation_fraction: float = 0.2
    test_fraction: float = 0.2  # most recent windows, held out for metrics
    seed: int = 0
    min_windows: int = 64  # fewer gap-free windows: skip with reason too_few_windows
    min_new_readings: int = 500  # new readings per device before retraining
    max_readings: int = 100000  # most recent readings used per training run
    # model versions kept per device (its current one always): a version is registered
    # every training run, tens of kB each; 0 keeps them all
    keep_versions: int = 100
    check_interval_s: float = 60.0
    nice: int = 10  # niceness increment of the training process
    anomaly_quantile: float = 0.999  # of held-out scores, sets the threshold
    anomaly_min_threshold: float = 4.0  # in residual standard deviations
    # the forecaster (docs/learning.md): readings predicted ahead; the anomaly score uses step 1
    horizon: int = 1
    normalize: Literal["standard", "window"] = "window"  # window: relative to the last reading
    calendar: Literal["auto", "on", "off"] = "auto"  # time of day / week inputs; auto: real clocks
    linear_path: bool = True  # a linear path from the window to the output beside the hidden layer
    predict_change: bool = True  # predict the change from the last reading (starts as persistence)
    init: Literal["persistence", "ridge"] = "persistence"  # ridge: linear path starts at ridge
    personalise_epochs: int = 3  # LEARNAE: local fine-tune of the fused model, kept if better
    # the forecaster's training loss: huber (squared error up to huber_delta standardized
    # units, linear beyond: spikes pull the fit less, nearer what MAE rewards) or mse
    loss: Literal["huber", "mse"] = "huber"
    huber_delta: float = 0.2
    # the detector's threshold: the lowest (>= anomaly_min_threshold) at which the held-out
    # part of the training data raises at most this many events per day
    anomaly_false_alarms_per_day: float = 1.0
    anomaly_shift_after: int = 6  # flagged readings in a row accepted as a new level
    anomaly_event_gap: int = 2  # unflagged readings that do not yet end an event
    anomaly_max_fill: int = 2  # empty grid slots interpolated between readings
    anomaly_interval_s: float = 10.0  # how often the gateway scores new readings


@dataclass(frozen=True)
class PeerSection:
    enabled: bool = False
    session: str = "learnae"  # training session id: peers fuse only within one session
    store: Literal["local", "ipfs"] = "local"  # local: data_dir/blocks; ipfs: kubo RPC API
    # udp: loopback peers listed in udp_peers; ledger: heads only from [ledger] announcements
    transport: Literal["udp", "ipfs", "ledger"] = "udp"
    ipfs_api: str = "http://127.0.0.1:5001"
    blocks_dir: Path | None = None  # local store; default data_dir/blocks; gateways on one
    # machine may share one directory (blocks are content-addressed and written atomically)
    udp_port: int = 7400
    udp_peers: str = ""  # "127.0.0.1:7401,127.0.0.1:7402" (loopback only)
    fusion: Literal["mean", "median", "trimmed_mean", "krum"] = "mean"
    fuse_peers: int = 4  # other peers fused per round, chosen by freshness with randomness
    wire_dtype: Literal["float16", "float32"] = "float16"
    compress: bool = True
    staleness_half_life: float = 2.0  # rounds; a model this much older counts half
    max_staleness: int = 20  # rounds; older models are not fused
    max_norm: float = 1000.0  # absolute bound on a received model's L2 norm
    norm_ratio: float = 10.0  # bound relative to the local model's norm
    max_block_bytes: int = 1048576
    fetch_timeout_s: float = 5.0
    retries: int = 2
    walk_budget: int = 4  # log entries behind heads fetched per round (all peers) to catch up
    gossip_shards: int = 1  # topics a session's gossip is spread over (about peers / 8)
    shard_epoch_s: float = 60.0  # peers are regrouped into shards this often
    announce_interval_s: float = 10.0
    round_interval_s: float = 30.0  # pause between rounds
    keep_rounds: int = 50  # own entries + weights kept pinned (how far back peers can catch up)
    gc_interval_s: float = 600.0  # the content store's garbage collection runs this often
    max_store_bytes: int = 1073741824  # disk the content store may use; /healthz degraded above
    ipfs_repo: Path | None = None  # kubo's repository directory: disk use measured from its files


@dataclass(frozen=True)
class ApiSection:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    token_file: Path | None = None
    token: str | None = None  # usually from LEARNAE_API_TOKEN; else token_file
    max_page: int = 1000  # largest `limit` a list endpoint accepts
    max_body_bytes: int = 65536  # larger request bodies are refused with 413
    cache_ms: float = 250.0  # the device list is rebuilt at most this often (0: every request)
    # after each training round, publish the edge model (retained) to devices whose status
    # reports a "model" field ("opted_in"), to every device ("all"), or not at all ("off")
    push_model: Literal["opted_in", "all", "off"] = "opted_in"


@dataclass(frozen=True)
class HomeAssistantSection:
    enabled: bool = False
    discovery_prefix: str = "homeassistant"
    state_interval_s: float = 10.0  # how often per-device state JSON is published
    state_prefix: str = "learnae-gateway"  # state on <state_prefix>/<gateway id>/<device>/state


@dataclass(frozen=True)
class LedgerSection:
    # none: heads by gossip only; iota-evm: the Announcements contract on IOTA EVM;
    # iota: the learnae Move package on IOTA layer 1 (through its GraphQL endpoint)
    kind: Literal["none", "iota-evm", "iota"] = "none"
    rpc_url: str = "http://127.0.0.1:8545"  # EVM JSON-RPC endpoint, or layer 1's GraphQL URL
    chain_id: int = 8822  # IOTA EVM mainnet (checked against the node before first use);
    # for iota: the network's chain identifier read as a hex integer (bound into announcements)
    contract: str = ""  # EVM: 0x + 40 hex (`ledger deploy`); iota: package id, 0x + 64 hex
    key_file: Path | None = None  # key to import (0600); default data_dir/ledger_evm.key
    # (iota: data_dir/ledger_iota.key)
    anchor_every: int = 10  # with another transport: announce every Nth round
    max_fee: float = 100.0  # EVM: gwei per gas; iota: NANOS per gas unit; above it, wait
    priority_fee: float = 1.0  # gwei per gas tip
    confirmations: int = 2  # blocks below the head before an announcement is read
    receipt_timeout_s: float = 60.0


@dataclass(frozen=True)
class OtaSection:
    confirm_s: int = 120  # a new version not confirmed by then is rolled back (ota_confirm_s)
    chunk: int = 1024  # bytes of firmware per MQTT message
    window: int = 4  # chunks in flight ahead of the board's last acknowledgement
    ack_timeout_s: float = 5.0  # no progress for this long: resend from the last acknowledged
    timeout_s: float = 300.0  # per push, for every board of it


@dataclass(frozen=True)
class GatewayConfig:
    gateway: GatewaySection = field(default_factory=GatewaySection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    store: StoreSection = field(default_factory=StoreSection)
    ingest: IngestSection = field(default_factory=IngestSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    peer: PeerSection = field(default_factory=PeerSection)
    api: ApiSection = field(default_factory=ApiSection)
    homeassistant: HomeAssistantSection = field(default_factory=HomeAssistantSection)
    ledger: LedgerSection = field(default_factory=LedgerSection)
    ota: OtaSection = field(default_factory=OtaSection)

    @property
    def db_path(self) -> Path:
        return self.gateway.data_dir / "gateway.sqlite3"


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a field's type hint; return it in that type."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{key} = {value!r} is not one of {', '.join(map(repr, allowed))}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} = {value!r} must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} = {value!r} must be an integer")
        if value < 0:
            raise ConfigError(f"{key} = {value!r} must not be negative")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} = {value!r} must be a number")
        if value < 0:
            raise ConfigError(f"{key} = {value!r} must not be negative")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} = {value!r} must be a string")
        return value
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key} = {value!r} must be a path string")
        return Path(value)
    raise ConfigError(f"{key}: unsupported setting type {hint!r}")  # pragma: no cover


def _env_value(raw: str, hint: Any) -> Any:
    """Environment values are strings; turn them into what the field expects."""
    base = {a for a in typing.get_args(hint) if a is not type(None)} or {hint}
    if int in base:
        return int(raw) if raw.isdigit() else raw
    if float in base:
        try:
            return float(raw)
        except ValueError:
            return raw
    if bool in base:
        return {"true": True, "false": False}.get(raw.lower(), raw)
    return raw


def _section(name: str, cls: type, table: Any, env: dict[str, str]) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] must be a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in table:
        if key not in known:
            raise ConfigError(f"unknown key {name}.{key} (known: {', '.join(sorted(known))})")
    values = {}
    for key in known:
        env_key = f"LEARNAE_{name}_{key}".upper()
        if env_key in env:
            raw: Any = _env_value(env[env_key], hints[key])
        elif key in table:
            raw = table[key]
        else:
            continue
        values[key] = _coerce(f"{name}.{key}", raw, hints[key])
    return cls(**values)


def config_from_dict(doc: dict[str, Any], env: dict[str, str] | None = None) -> GatewayConfig:
    """Build a validated config from parsed TOML (``env`` defaults to os.environ)."""
    env = dict(os.environ) if env is None else env
    sections = {f.name: f for f in dataclasses.fields(GatewayConfig)}
    for name in doc:
        if name not in sections:
            raise ConfigError(f"unknown section [{name}] (known: {', '.join(sections)})")
    hints = typing.get_type_hints(GatewayConfig)
    built = {name: _section(name, hints[name], doc.get(name, {}), env) for name in sections}
    config = GatewayConfig(**built)
    if not config.gateway.id or not config.gateway.id.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"gateway.id = {config.gateway.id!r} must be letters, digits, - or _")
    if not 1 <= config.mqtt.port <= 65535:
        raise ConfigError(f"mqtt.port = {config.mqtt.port!r} is outside 1..65535")
    if not 0 <= config.api.port <= 65535:
        raise ConfigError(f"api.port = {config.api.port!r} is outside 0..65535")
    if config.peer.keep_rounds < 1:
        raise ConfigError(f"peer.keep_rounds = {config.peer.keep_rounds!r} must be at least 1")
    if config.peer.gc_interval_s <= 0:
        raise ConfigError(f"peer.gc_interval_s = {config.peer.gc_interval_s!r} must be > 0")
    if config.peer.max_store_bytes < 1:
        raise ConfigError(f"peer.max_store_bytes = {config.peer.max_store_bytes!r} must be > 0")
    _check_ledger(config)
    if not 1 <= config.training.horizon <= 255:
        raise ConfigError(f"training.horizon = {config.training.horizon!r} is outside 1..255")
    if not (config.training.huber_delta > 0 and math.isfinite(config.training.huber_delta)):
        raise ConfigError(f"training.huber_delta = {config.training.huber_delta!r} must be > 0")
    if not config.training.anomaly_false_alarms_per_day > 0:
        raise ConfigError("training.anomaly_false_alarms_per_day = "
                          f"{config.training.anomaly_false_alarms_per_day!r} must be > 0")
    if config.training.anomaly_shift_after < 2:
        raise ConfigError(f"training.anomaly_shift_after = "
                          f"{config.training.anomaly_shift_after!r} must be at least 2")
    if not config.training.anomaly_interval_s > 0:
        raise ConfigError(f"training.anomaly_interval_s = "
                          f"{config.training.anomaly_interval_s!r} must be > 0")
    return config


def _check_ledger(config: GatewayConfig) -> None:
    """The [ledger] values that the generic loader cannot judge alone."""
    ledger = config.ledger
    scheme, sep, rest = ledger.rpc_url.partition("://")
    if scheme not in ("http", "https") or not sep or not rest.split("/")[0]:
        raise ConfigError(f"ledger.rpc_url = {ledger.rpc_url!r} is not an http(s) URL")
    if not 1 <= ledger.chain_id < 2**63:
        raise ConfigError(f"ledger.chain_id = {ledger.chain_id!r} must be a positive integer")
    if ledger.anchor_every < 1:
        raise ConfigError(f"ledger.anchor_every = {ledger.anchor_every!r} must be at least 1")
    if not 0 < ledger.max_fee <= 1_000_000:
        raise ConfigError(f"ledger.max_fee = {ledger.max_fee!r} gwei must be in (0, 1000000]")
    if ledger.priority_fee > ledger.max_fee:
        raise ConfigError(
            f"ledger.priority_fee = {ledger.priority_fee!r} exceeds ledger.max_fee = "
            f"{ledger.max_fee!r}"
        )
    if ledger.confirmations > 1000:
        raise ConfigError(f"ledger.confirmations = {ledger.confirmations!r} exceeds 1000")
    if not ledger.receipt_timeout_s > 0:
        raise ConfigError(f"ledger.receipt_timeout_s = {ledger.receipt_timeout_s!r} must be > 0")
    contract = ledger.contract
    digits = 64 if ledger.kind == "iota" else 40
    well_formed = len(contract) == 2 + digits and contract[:2] == "0x"
    if contract and not (well_formed and all(c in "0123456789abcdefABCDEF" for c in contract[2:])):
        raise ConfigError(f"ledger.contract = {contract!r} is not a 0x + {digits} hex address")
    if ledger.kind != "none" and not contract:
        raise ConfigError(f"ledger.contract = '' must be set when ledger.kind = {ledger.kind!r}")
    if config.peer.transport == "ledger" and ledger.kind == "none":
        raise ConfigError("peer.transport = 'ledger' needs a ledger: ledger.kind = 'none'")


def load_config(path: str | Path, env: dict[str, str] | None = None) -> GatewayConfig:
    """Read and validate a TOML config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from exc
    return config_from_dict(doc, env)


def toml_text(tables: dict[str, dict[str, Any]], header: str = "") -> str:
    """A config file's text from ``{section: {key: value}}`` (strings, numbers, booleans,
    lists and paths), what ``load_config`` reads back; ``header`` goes first as comments."""
    parts = [f"# {line}" for line in header.splitlines()] if header else []
    for name, values in tables.items():
        lines = [f"[{name}]"] + [
            f"{key} = {json.dumps(str(value) if isinstance(value, Path) else value)}"
            for key, value in values.items()]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)
