"""The Ingestor in this process against the session's real Mosquitto."""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gateway.config import GatewayConfig, config_from_dict
from gateway.ingest import IngestError, Ingestor
from gateway.rigs.broker import PrivateBroker
from gateway.store import Store, read_health
from shared.codec import Batch, decode_payload, encode_binary

from .helpers import publisher, wait_for


def make_config(tmp_path: Path, broker: PrivateBroker, prefix: str,
                **sections: dict[str, Any]) -> GatewayConfig:
    doc: dict[str, Any] = {
        "gateway": {"id": "gw", "data_dir": str(tmp_path / "data")},
        "mqtt": {"port": broker.port, "topic_prefix": prefix, "client_id": f"gw-{prefix}"},
    }
    for name, values in sections.items():
        doc.setdefault(name, {}).update(values)
    return config_from_dict(doc, env={})


def send(broker: PrivateBroker, prefix: str, device: str, first: int, count: int,
         client_id: str) -> None:
    client = publisher(broker, client_id)
    infos = [client.publish(f"{prefix}/{device}/data",
                            encode_binary(Batch(1, k, 0, ["temp"], [[20.0]])), qos=1)
             for k in range(first, first + count)]
    for info in infos:
        info.wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def stored(config: GatewayConfig, device: str) -> int:
    with Store.open(config.db_path, readonly=True) as store:
        info = store.device(device)
        return 0 if info is None else info.stored


def test_unwritable_store_means_no_ack_then_resume(tmp_path: Path, broker: PrivateBroker,
                                                   prefix: str) -> None:
    config = make_config(tmp_path, broker, prefix, store={"busy_timeout_ms": 100})
    registry = CollectorRegistry()
    ingestor = Ingestor(config, config.db_path, registry=registry)
    ingestor.start()
    assert ingestor.subscribed
    send(broker, prefix, "dev1", 0, 10, f"{prefix}-p1")
    wait_for(lambda: ingestor.stats()["stored"] == 10, 20, "first readings")

    locker = sqlite3.connect(config.db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another writer holds the database: it cannot be written
    send(broker, prefix, "dev1", 10, 40, f"{prefix}-p2")
    wait_for(lambda: ingestor.stats()["store"] == "unavailable", 20, "fault reported")
    assert registry.get_sample_value("learnae_ingest_store_available") == 0
    assert read_health(config.db_path)["state"] == "store_unavailable"
    assert "locked" in read_health(config.db_path)["error"]
    # stop while the store is still unwritable: nothing of the 40 may have been acked
    ingestor.stop(timeout=1.0)
    locker.execute("ROLLBACK")
    locker.close()
    assert stored(config, "dev1") == 10

    again = Ingestor(config, config.db_path, registry=registry)
    again.start()
    wait_for(lambda: stored(config, "dev1") == 50, 30, "redelivered readings")
    again.stop()
    with Store.open(config.db_path, readonly=True) as store:
        summary = store.summary()
    assert summary["devices"]["dev1"]["stored"] == 50
    assert summary["ingest"]["state"] == "ok"
    assert registry.get_sample_value("learnae_ingest_store_available") == 1
    assert registry.get_sample_value("learnae_ingest_store_errors_total") >= 1


def test_resumes_by_itself_when_the_lock_goes(tmp_path: Path, broker: PrivateBroker,
                                              prefix: str) -> None:
    config = make_config(tmp_path, broker, prefix, store={"busy_timeout_ms": 50})
    with Ingestor(config, config.db_path, registry=CollectorRegistry()) as ingestor:
        send(broker, prefix, "dev1", 0, 1, f"{prefix}-p0")
        wait_for(lambda: ingestor.stats()["stored"] == 1, 20, "database created")
        locker = sqlite3.connect(config.db_path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        send(broker, prefix, "dev1", 1, 20, f"{prefix}-p1")
        wait_for(lambda: ingestor.stats()["store"] == "unavailable", 20, "fault reported")
        assert ingestor.stats()["stored"] == 1
        locker.execute("ROLLBACK")
        locker.close()
        wait_for(lambda: ingestor.stats()["stored"] == 21, 30, "resumed")
        assert ingestor.stats()["store"] == "ok"


def test_unknown_devices_rejected_by_policy(tmp_path: Path, broker: PrivateBroker,
                                            prefix: str) -> None:
    config = make_config(tmp_path, broker, prefix, ingest={"unknown_devices": "reject"})
    with Store.open(config.db_path) as store:
        store.register_device("known-1")
    registry = CollectorRegistry()
    with Ingestor(config, config.db_path, registry=registry) as ingestor:
        send(broker, prefix, "known-1", 0, 5, f"{prefix}-a")
        send(broker, prefix, "stranger", 0, 3, f"{prefix}-b")
        wait_for(lambda: ingestor.stats()["messages"] == 8, 20, "all handled")
        stats = ingestor.stats()
    assert (stats["stored"], stats["rejected"]) == (5, 3)
    assert stats["rejected_by_reason"] == {"unknown_device": 3}
    assert registry.get_sample_value("learnae_ingest_messages_rejected_total",
                                     {"reason": "unknown_device"}) == 3
    assert registry.get_sample_value("learnae_ingest_readings_stored_total") == 5
    with Store.open(config.db_path, readonly=True) as store:
        assert [d.id for d in store.devices()] == ["known-1"]
        assert {q["reason"] for q in store.quarantine()} == {"unknown_device"}


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_session_keeps_messages_while_the_gateway_is_away(
        tmp_path: Path, broker: PrivateBroker, prefix: str, protocol: str) -> None:
    config = make_config(tmp_path, broker, prefix, mqtt={"protocol": protocol})
    with Ingestor(config, config.db_path, registry=CollectorRegistry()):
        pass  # creates the persistent session and subscription
    send(broker, prefix, "dev1", 0, 30, f"{prefix}-p")
    with Ingestor(config, config.db_path, registry=CollectorRegistry()) as ingestor:
        wait_for(lambda: ingestor.stats()["stored"] == 30, 20, "queued readings")
    assert stored(config, "dev1") == 30


def test_lifecycle_misuse_is_an_error(tmp_path: Path, broker: PrivateBroker,
                                      prefix: str) -> None:
    config = make_config(tmp_path, broker, prefix)
    ingestor = Ingestor(config, config.db_path, registry=CollectorRegistry())
    with pytest.raises(IngestError, match="needs a started"):
        ingestor.publish_retained(f"{prefix}/dev1/config", b"{}")
    ingestor.start()
    with pytest.raises(IngestError, match="'started'"):
        ingestor.start()
    ingestor.stop()
    bad = make_config(tmp_path, broker, prefix, ingest={"plausible_ranges": "temp=9..1"})
    with pytest.raises(IngestError, match=r"temp=9\.\.1"):
        Ingestor(bad, bad.db_path, registry=CollectorRegistry())


def test_retention_runs_in_the_writer(tmp_path: Path, broker: PrivateBroker,
                                      prefix: str) -> None:
    config = make_config(tmp_path, broker, prefix, store={"max_rows_per_device": 5},
                         ingest={"retention_interval_s": 0.1})
    with Ingestor(config, config.db_path, registry=CollectorRegistry()) as ingestor:
        send(broker, prefix, "dev1", 0, 20, f"{prefix}-p")
        wait_for(lambda: ingestor.stats()["stored"] == 20, 20, "readings")
        wait_for(lambda: stored(config, "dev1") == 5, 20, "retention")
    with Store.open(config.db_path, readonly=True) as store:
        assert [s.seq for s in store.samples("dev1")] == [19, 18, 17, 16, 15]


def test_metrics_are_exported(tmp_path: Path, broker: PrivateBroker, prefix: str) -> None:
    config = make_config(tmp_path, broker, prefix)
    registry = CollectorRegistry()
    with Ingestor(config, config.db_path, registry=registry) as ingestor:
        send(broker, prefix, "dev1", 0, 7, f"{prefix}-p")
        client = publisher(broker, f"{prefix}-s")
        client.publish(f"{prefix}/dev1/status", b'{"state":"online"}', qos=1).wait_for_publish(5)
        client.publish(f"{prefix}/dev1/data", b"\x09junk", qos=1).wait_for_publish(5)
        client.loop_stop()
        client.disconnect()
        wait_for(lambda: ingestor.stats()["messages"] == 9, 20, "all handled")
        value = registry.get_sample_value
        assert value("learnae_ingest_messages_received_total", {"kind": "data"}) == 7
        assert value("learnae_ingest_messages_received_total", {"kind": "status"}) == 1
        assert value("learnae_ingest_messages_rejected_total", {"reason": "decode"}) == 1
        assert value("learnae_ingest_readings_stored_total") == 7
        assert value("learnae_ingest_readings_duplicate_total") == 0
        assert value("learnae_ingest_commit_batch_messages_sum") == 9
        assert value("learnae_ingest_commit_latency_seconds_count") == 9
        assert value("learnae_ingest_queue_depth") == 0
        assert value("learnae_ingest_mqtt_connected") == 1
        assert value("learnae_ingest_store_available") == 1


def test_implausible_values_are_stored_as_missing_counted_and_quarantined(
        tmp_path: Path, broker: PrivateBroker, prefix: str) -> None:
    config = make_config(tmp_path, broker, prefix)
    registry = CollectorRegistry()
    client = publisher(broker, f"{prefix}-p")
    with Ingestor(config, config.db_path, registry=registry) as ingestor:
        batch = Batch(1, 0, 1_700_000_000, ["temp", "hum"],
                      [[20.0, 50.0], [150.0, 51.0], [21.0, 52.0]])
        client.publish(f"{prefix}/dev1/data", encode_binary(batch), qos=1).wait_for_publish(5)
        good = Batch(1, 3, 1_700_000_003, ["temp", "hum"], [[22.0, 53.0]])
        client.publish(f"{prefix}/dev1/data", encode_binary(good), qos=1).wait_for_publish(5)
        wait_for(lambda: ingestor.stats()["messages"] == 2, 20, "both handled")
        stats = ingestor.stats()
    client.loop_stop()
    client.disconnect()
    assert (stats["stored"], stats["rejected"], stats["implausible"]) == (4, 0, 1)
    assert stats["implausible_by_channel"] == {"temp": 1}
    assert registry.get_sample_value("learnae_ingest_values_implausible_total",
                                     {"channel": "temp"}) == 1
    assert registry.get_sample_value("learnae_ingest_readings_stored_total") == 4
    with Store.open(config.db_path, readonly=True) as store:
        samples = store.samples("dev1")
        summary = store.summary()
        (held,) = store.quarantine()
    assert [(s.seq, s.values) for s in samples] == [
        (3, {"temp": 22.0, "hum": 53.0}), (2, {"temp": 21.0, "hum": 52.0}),
        (1, {"temp": None, "hum": 51.0}), (0, {"temp": 20.0, "hum": 50.0})]
    assert (summary["stored"], summary["rejected"], summary["rejected_by_reason"]) == (4, 0, {})
    assert (summary["implausible"], summary["implausible_by_channel"]) == (1, {"temp": 1})
    assert summary["devices"]["dev1"]["rejected"] == 0
    assert (held["reason"], held["device"], held["topic"]) == ("range", "dev1",
                                                               f"{prefix}/dev1/data")
    assert held["detail"].startswith("device 'dev1': temp = 150.0 at record 1 outside -60..100")


def test_scaled_readings_come_back_from_the_store_as_decoded(
        tmp_path: Path, broker: PrivateBroker, prefix: str) -> None:
    """int16 channels on the wire are stored as float32 like any other reading."""
    config = make_config(tmp_path, broker, prefix)
    batch = Batch(1, 0, 1_700_000_000, ["temp", "hum", "pressure"],
                  [[21.53, 40.5, 1013.25], [-3.07, None, 1000.0], [None, 99.9, 1013.0]],
                  period_ms=1000)
    payload = encode_binary(batch, [-2, -1, None])
    assert payload != encode_binary(batch)  # temp and hum travel as int16
    decoded = decode_payload(payload).values
    client = publisher(broker, f"{prefix}-p")
    with Ingestor(config, config.db_path, registry=CollectorRegistry()) as ingestor:
        client.publish(f"{prefix}/dev1/data", payload, qos=1).wait_for_publish(5)
        later = Batch(1, 3, 1_700_000_003, batch.channels, [[22.01, 41.0, 1012.5]])
        client.publish(f"{prefix}/dev1/data", encode_binary(later, [-2, -1, None]),
                       qos=1).wait_for_publish(5)  # the same layout: the fast reader
        wait_for(lambda: ingestor.stats()["stored"] == 4, 20, "scaled readings")
        assert ingestor.stats()["rejected"] == 0
    client.loop_stop()
    client.disconnect()

    def f32(v: float | None) -> float | None:
        return None if v is None else struct.unpack(">f", struct.pack(">f", v))[0]

    expected = [[f32(v) for v in row] for row in [*decoded, [22.01, 41.0, 1012.5]]]
    assert decoded[0][:2] == [21.53, 40.5] and decoded[1][1] is None
    with Store.open(config.db_path, readonly=True) as store:
        samples = store.samples("dev1")
        series = store.read_series("dev1")
    assert [(s.seq, list(s.values.values())) for s in samples] == [
        (3 - i, row) for i, row in enumerate(reversed(expected))]
    assert series.channels == ["temp", "hum", "pressure"]
    assert series.ts.tolist() == [1_700_000_000.0 + i for i in range(4)]
    assert [[None if v != v else v for v in row] for row in series.values.tolist()] == expected
