"""The locked-down broker from gateway/system/: a device speaks only for itself."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.rigs.broker import PrivateBroker, free_port, wait_for_port
from gateway.system import render_acl, render_broker_config, write_password_file
from shared.codec import Batch, encode_binary

from .helpers import publisher, status, wait_for, write_config

USERS = {"gateway": "gw-secret", "dev1": "pw-one", "dev2": "pw-two"}


class TemplateBroker:
    """Mosquitto running the rendered template (not PrivateBroker's own config)."""

    host = "127.0.0.1"

    def __init__(self, directory: Path, prefix: str) -> None:
        directory.mkdir(parents=True)
        self.port = free_port()
        write_password_file(directory / "passwd", USERS)
        (directory / "acl").write_text(render_acl(prefix, "gateway"))
        conf = directory / "mosquitto.conf"
        conf.write_text(render_broker_config(directory=directory, port=self.port,
                                             run_as=getpass.getuser()))
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def locked(tmp_path: Path, prefix: str) -> Iterator[TemplateBroker]:
    running = TemplateBroker(tmp_path / "broker", prefix)
    yield running
    running.close()


def connect_result(broker: TemplateBroker, username: str | None, password: str | None) -> bool:
    done = threading.Event()
    result: list[bool] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if username:
        client.username_pw_set(username, password)

    def on_connect(c, u, flags, reason, props) -> None:
        result.append(not reason.is_failure)
        done.set()

    client.on_connect = on_connect
    client.connect(broker.host, broker.port)
    client.loop_start()
    done.wait(10)
    client.loop_stop()
    client.disconnect()
    return result == [True]


def test_device_cannot_publish_for_another_device(tmp_path: Path, prefix: str,
                                                  locked: TemplateBroker,
                                                  gateway_process: type) -> None:
    assert connect_result(locked, None, None) is False
    assert connect_result(locked, "dev1", "wrong") is False
    config = write_config(tmp_path, locked, prefix,  # type: ignore[arg-type]
                          mqtt={"username": "gateway", "password": USERS["gateway"]})
    gateway_process(config).start()

    def batch(seq: int) -> bytes:
        return encode_binary(Batch(1, seq, 0, ["temp"], [[21.0]]))

    dev1 = publisher(locked, f"{prefix}-d1", username="dev1",  # type: ignore[arg-type]
                     password=USERS["dev1"])
    dev2 = publisher(locked, f"{prefix}-d2", username="dev2",  # type: ignore[arg-type]
                     password=USERS["dev2"])
    infos = []
    for seq in range(20):
        infos.append(dev1.publish(f"{prefix}/dev1/data", batch(seq), qos=1))
        infos.append(dev1.publish(f"{prefix}/dev2/data", batch(1000 + seq), qos=1))  # spoof
        infos.append(dev1.publish(f"{prefix}/dev2/status", b'{"state":"offline"}', qos=1))
    for seq in range(5):
        infos.append(dev2.publish(f"{prefix}/dev2/data", batch(seq), qos=1))
    infos.append(dev2.publish(f"{prefix}/dev2/status", b'{"state":"online"}', qos=1))
    for info in infos:
        info.wait_for_publish(10)  # denied publishes still look successful to the sender
    # a marker sent last by dev2 tells us the gateway has seen everything before it
    dev2.publish(f"{prefix}/dev2/data", batch(99), qos=1).wait_for_publish(10)

    def settled() -> dict | None:
        doc = status(config)
        dev = doc["devices"].get("dev2")
        return doc if dev and dev["stored"] >= 6 and "dev1" in doc["devices"] else None

    doc = wait_for(settled, 30, "readings of both devices")
    doc = wait_for(lambda: (d := status(config))["devices"]["dev1"]["stored"] == 20 and d, 30,
                   "dev1 readings")
    assert doc["devices"]["dev1"]["stored"] == 20
    assert doc["devices"]["dev2"]["stored"] == 6  # none of dev1's 20 spoofed batches
    assert doc["devices"]["dev2"]["online"] is True  # dev1's spoofed "offline" never arrived
    assert doc["rejected"] == 0
    for client in (dev1, dev2):
        client.loop_stop()
        client.disconnect()


def test_secure_broker_factory_fixture_agrees(tmp_path: Path, prefix: str,
                                              secure_broker_factory, gateway_process) -> None:
    """The same rule through the shared fixture, with the per-device lines `device add` writes."""
    acl = render_acl(prefix, "gateway")
    lines = [ln for ln in acl.splitlines() if ln.startswith("topic")]
    broker: PrivateBroker = secure_broker_factory(
        USERS, {"gateway": lines,
                "dev1": [f"topic write {prefix}/dev1/data"],
                "dev2": [f"topic write {prefix}/dev2/data"]})
    config = write_config(tmp_path, broker, prefix,
                          mqtt={"username": "gateway", "password": USERS["gateway"]})
    gateway_process(config).start()
    dev1 = publisher(broker, f"{prefix}-d1", username="dev1", password=USERS["dev1"])
    for seq in range(10):
        dev1.publish(f"{prefix}/dev2/data",
                     encode_binary(Batch(1, seq, 0, ["temp"], [[1.0]])), qos=1)
    dev1.publish(f"{prefix}/dev1/data",
                 encode_binary(Batch(1, 0, 0, ["temp"], [[1.0]])), qos=1).wait_for_publish(10)
    doc = wait_for(lambda: (d := status(config))["devices"].get("dev1") and d, 30, "dev1")
    assert doc["devices"]["dev1"]["stored"] == 1
    assert "dev2" not in doc["devices"]
    dev1.loop_stop()
    dev1.disconnect()
