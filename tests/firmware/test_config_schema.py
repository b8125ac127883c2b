"""Device config schema (shared.config) and remote config merging."""

from __future__ import annotations

import pytest
from gateway.devices import make_device_config

from shared.config import merge_remote_config, validate_device_config
from shared.errors import ProtocolError


def base(**kw):
    return make_device_config("dev1", mqtt_host="127.0.0.1", mqtt_port=1883, **kw)


def test_defaults_are_filled_in() -> None:
    conf = validate_device_config(base())
    assert conf["mqtt"]["keepalive_s"] == 30 and conf["buffer"]["ram_batches"] == 8
    assert conf["sensors"][0]["channels"] == ["temp", "hum"]
    assert conf["power_mode"] == "always_on" and conf["thresholds"] == {}
    assert conf["sensors"][0]["resolution"] == [-2, -2]


def test_resolution_defaults_by_channel_name_and_overrides() -> None:
    conf = validate_device_config(base(sensors=[
        {"type": "replay", "columns": ["T", "RH", "AH", "NOx(GT)", "Date"]},
        {"type": "bme280", "channels": ["t2", "h2", "press"], "resolution": [None, -1, 0]},
        {"type": "analog"}, {"type": "rp2040_temp"}]))
    assert [s["resolution"] for s in conf["sensors"]] == [
        [-2, -2, -4, 0, None], [None, -1, 0], [-3], [-2]]


@pytest.mark.parametrize(("change", "message"), [
    ({"device_id": "Dev/1"}, "device id 'Dev/1' has character 'D'"),
    ({"batch_size": 0}, "batch_size 0 is outside 1..255"),
    ({"power_mode": "nap"}, "power_mode 'nap' is not one of always_on, deep_sleep"),
    ({"sensors": [{"type": "laser"}]}, "sensors\\[0\\].type 'laser' is not one of"),
    ({"sensors": [{"type": "simulated", "colour": 1}]}, "sensors\\[0\\] has unknown key 'colour'"),
    ({"sensors": [{"type": "simulated"}, {"type": "dht22"}]}, "channel name 'temp' is repeated"),
    ({"thresholds": {"co2": [0, 1]}}, "thresholds channel 'co2' is not one of temp, hum"),
    ({"extra": 1}, "device config has unknown key 'extra'"),
    ({"sensors": [{"type": "simulated", "resolution": [-8, 0]}]},
     "sensors\\[0\\].resolution\\[\\] -8 is outside -7..7"),
    ({"sensors": [{"type": "simulated", "resolution": [-2]}]},
     "sensors\\[0\\].resolution \\[-2\\] must list 2 scales"),
    ({"sensors": [{"type": "simulated", "resolution": [1.5, None]}]},
     "sensors\\[0\\].resolution\\[\\] 1.5 is not an integer"),
])
def test_rejections_name_the_field(change, message: str) -> None:
    doc = base()
    doc.update(change)
    with pytest.raises(ProtocolError, match=message):
        validate_device_config(doc)


def test_remote_config_merges_only_runtime_keys() -> None:
    conf = validate_device_config(base())
    new = merge_remote_config(conf, {"period_ms": 50, "thresholds": {"temp": [None, 30]}})
    assert new["period_ms"] == 50 and new["thresholds"] == {"temp": [None, 30.0]}
    assert conf["period_ms"] == 1000  # the old config is untouched
    with pytest.raises(ProtocolError, match="remote config has unknown key 'mqtt'"):
        merge_remote_config(conf, {"mqtt": {}})
