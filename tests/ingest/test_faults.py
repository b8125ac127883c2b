"""Zero loss and no double storage through gateway SIGKILLs and a broker restart."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.rigs.broker import PrivateBroker
from shared.codec import Batch, encode_binary

from .helpers import GatewayProcess, db_path, status, wait_for, write_config

DEVICES = [f"dev{i}" for i in range(5)]
READINGS_PER_DEVICE = 4000
RECORDS_PER_BATCH = 10
BATCHES = READINGS_PER_DEVICE // RECORDS_PER_BATCH  # 400 per device, 2,000 in all
INTERVAL_S = 0.035  # per device: the stream lasts about 14 s


def device_client(broker: PrivateBroker, device: str, prefix: str) -> mqtt.Client:
    """A board-like publisher: persistent session, resends what was not acked."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{prefix}-{device}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(50)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(0.05, 0.5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect(broker.host, broker.port, clean_start=False, properties=props)
    client.loop_start()
    return client


@pytest.mark.slow
def test_kill_gateway_three_times_and_restart_broker(tmp_path: Path, prefix: str) -> None:
    broker = PrivateBroker(tmp_path / "broker").start()
    try:
        config = write_config(tmp_path, broker, prefix)
        gateway = GatewayProcess(config).start()
        clients = {d: device_client(broker, d, prefix) for d in DEVICES}
        infos: list[mqtt.MQTTMessageInfo] = []
        lock = threading.Lock()

        def stream(device: str) -> None:
            client = clients[device]
            for k in range(BATCHES):
                seq = k * RECORDS_PER_BATCH
                values = [[20.0 + (seq + i) % 50 / 10, 40.0] for i in range(RECORDS_PER_BATCH)]
                payload = encode_binary(Batch(7, seq, 0, ["temp", "hum"], values))
                info = client.publish(f"{prefix}/{device}/data", payload, qos=1)
                with lock:
                    infos.append(info)
                time.sleep(INTERVAL_S)

        threads = [threading.Thread(target=stream, args=(d,), daemon=True) for d in DEVICES]
        for t in threads:
            t.start()
        for step in ("kill", "kill", "broker", "kill"):
            time.sleep(2.5)
            if step == "kill":
                gateway.kill()
                time.sleep(0.3)
                gateway = GatewayProcess(config).start()
            else:
                broker.restart()
                gateway.wait_subscribed(30)
        for t in threads:
            t.join(60)
        # (a publish made while the broker was down reports "not connected" but stays
        # queued in the client and is sent on reconnect, so we wait on the store instead)
        assert len(infos) == len(DEVICES) * BATCHES
        total = len(DEVICES) * READINGS_PER_DEVICE
        doc = wait_for(lambda: (d := status(config))["stored"] >= total and d, 60,
                       f"{total} readings stored")
        assert doc["stored"] == total == 20000
        for device in DEVICES:
            assert doc["devices"][device]["stored"] == READINGS_PER_DEVICE
            assert doc["devices"][device]["boots"] == 1
        assert doc["rejected"] == 0
        assert gateway.stop() == 0
        # none twice: the primary key holds each (device, boot, seq) once, and every seq is there
        conn = sqlite3.connect(f"file:{db_path(config)}?mode=ro", uri=True)
        rows = conn.execute("SELECT d.name, COUNT(*), COUNT(DISTINCT r.seq), MIN(r.seq),"
                            " MAX(r.seq) FROM readings r JOIN devices d ON d.id = r.device"
                            " GROUP BY d.name ORDER BY d.name").fetchall()
        conn.close()
        assert rows == [(d, 4000, 4000, 0, 3999) for d in DEVICES]
        for client in clients.values():
            client.loop_stop()
            client.disconnect()
    finally:
        broker.close()
