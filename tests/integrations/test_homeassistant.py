"""Home Assistant MQTT discovery: exact discovery documents, and a live gateway publishing them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support import GatewayProcess, publish_readings, publisher, retained, wait_for, write_config

from gateway.config import config_from_dict
from gateway.integrations.homeassistant import discovery_messages, state_topic
from gateway.rigs.broker import PrivateBroker


def test_discovery_documents_are_exact() -> None:
    config = config_from_dict({"gateway": {"id": "gh-1"}, "mqtt": {"topic_prefix": "farm"}},
                              env={})
    docs = discovery_messages(config, "bed-2", ["temp", "co2x"], firmware="0.1.0")
    assert sorted(docs) == [
        "homeassistant/binary_sensor/learnae_gh-1_bed-2/anomaly/config",
        "homeassistant/binary_sensor/learnae_gh-1_bed-2/anomaly_event/config",
        "homeassistant/sensor/learnae_gh-1_bed-2/anomaly_score/config",
        "homeassistant/sensor/learnae_gh-1_bed-2/co2x/config",
        "homeassistant/sensor/learnae_gh-1_bed-2/temp/config",
    ]
    temp = docs["homeassistant/sensor/learnae_gh-1_bed-2/temp/config"]
    assert temp == {
        "name": "temp",
        "unique_id": "learnae_gh-1_bed-2_temp",
        "object_id": "learnae_gh-1_bed-2_temp",
        "state_topic": "learnae-gateway/gh-1/bed-2/state",
        "value_template": "{{ value_json['values']['temp'] }}",
        "state_class": "measurement",
        "device_class": "temperature",
        "unit_of_measurement": "°C",
        "availability_topic": "farm/bed-2/status",
        "availability_template": "{{ 'online' if value_json.state == 'online' else 'offline' }}",
        "device": {"identifiers": ["learnae_gh-1_bed-2"], "name": "bed-2 (gh-1)",
                   "manufacturer": "LEARNAE edge", "model": "sensor board",
                   "sw_version": "0.1.0"},
        "origin": {"name": "learnae-gateway"},
    }
    assert "device_class" not in docs["homeassistant/sensor/learnae_gh-1_bed-2/co2x/config"]
    anomaly = docs["homeassistant/binary_sensor/learnae_gh-1_bed-2/anomaly/config"]
    assert anomaly["value_template"] == "{{ 'ON' if value_json.anomaly else 'OFF' }}"
    event = docs["homeassistant/binary_sensor/learnae_gh-1_bed-2/anomaly_event/config"]
    assert event["value_template"] == "{{ 'ON' if value_json.anomaly_event else 'OFF' }}"
    assert event["device_class"] == "problem"
    assert state_topic(config, "bed-2") == "learnae-gateway/gh-1/bed-2/state"


def test_live_gateway_announces_devices_to_home_assistant(
    tmp_path: Path, broker: PrivateBroker, prefix: str, gateway_process: type[GatewayProcess]
) -> None:
    config = write_config(tmp_path, broker, prefix,
                          homeassistant={"enabled": True, "discovery_prefix": f"ha{prefix}",
                                         "state_interval_s": 0.3})
    gw = gateway_process(config).start()
    assert "homeassistant" in "".join(gw.lines)
    client = publisher(broker, f"pub-{prefix}")
    t0 = int(time.time()) - 100
    publish_readings(client, prefix, "porch", 40, t0=t0)
    node = "learnae_gw-test_porch"
    doc = wait_for(lambda: retained(broker, f"ha{prefix}/sensor/{node}/hum/config", 1.0),
                   what="discovery config")
    assert json.loads(doc)["state_topic"] == "learnae-gateway/gw-test/porch/state"
    state = json.loads(wait_for(
        lambda: retained(broker, "learnae-gateway/gw-test/porch/state", 1.0), what="state"))
    assert state["values"] == {"temp": pytest.approx(20.0 + 39 % 7 * 0.3, rel=1e-6),
                               "hum": pytest.approx(45.0 + 39 % 5 * 0.5, rel=1e-6)}
    assert state["ts"] == t0 + 39
    assert (state["anomaly"], state["anomaly_score"], state["model_version"]) == (
        False, None, None)
    client.disconnect()


def test_state_carries_the_forecaster_score(tmp_path: Path, broker: PrivateBroker,
                                            prefix: str) -> None:
    """With a trained model the state document scores the latest reading with it."""
    from support import BrokerPublisher, fill_store, register_model

    from gateway.integrations.homeassistant import HomeAssistantBridge

    config = config_from_dict({
        "gateway": {"id": "gw-ha", "data_dir": str(tmp_path)},
        "mqtt": {"port": broker.port, "topic_prefix": prefix},
        "homeassistant": {"enabled": True, "discovery_prefix": f"ha{prefix}",
                          "state_prefix": f"st{prefix}"},
    }, env={})
    fill_store(config.db_path, {"cellar": 200})  # one a minute, like the model
    version = register_model(config.db_path, "cellar")
    publisher_port = BrokerPublisher(broker)
    from prometheus_client import CollectorRegistry

    bridge = HomeAssistantBridge(config, publisher_port.publish_retained,
                                 registry=CollectorRegistry())
    assert bridge.publish_once() == 5 + 1  # 2 channels + score + flag + event, then the state
    assert bridge.publish_once() == 1  # announced once; the state every time
    publisher_port.close()
    state = json.loads(retained(broker, f"st{prefix}/gw-ha/cellar/state") or b"{}")
    assert state["model_version"] == version
    assert isinstance(state["anomaly_score"], float) and state["anomaly_score"] >= 0.0
    assert state["ts"] == 1_700_000_000.0 + 199 * 60
    assert state["anomaly_event"] is False  # no detector pass has flagged anything
