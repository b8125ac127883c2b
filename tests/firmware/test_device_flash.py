"""``device add`` (credentials + ACL in a real Mosquitto) and ``flash --dry-run``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from gateway.broker import PrivateBroker, free_port
from gateway.devices import device_acl, upsert_acl, upsert_password

from shared.codec import Batch, encode_binary
from tests.firmware.conftest import Collector, run_sim

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def test_device_add_gives_working_credentials_limited_to_own_topics(tmp_path: Path) -> None:
    port = free_port()
    toml = tmp_path / "gw.toml"
    toml.write_text(f'[gateway]\nid = "gw"\ndata_dir = "{tmp_path / "data"}"\n'
                    f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\ntopic_prefix = "lx"\n')
    for dev in ("dev1", "dev2"):
        done = cli("device", "add", dev, "--config", str(toml), "--out",
                   str(tmp_path / f"{dev}.json"))
        assert done.returncode == 0, done.stderr
    mosq = tmp_path / "data" / "mosquitto"
    upsert_password(mosq / "passwd", "admin", "adminpw")
    upsert_acl(mosq / "acl", "admin", ["topic readwrite #"])
    acl = (mosq / "acl").read_text()
    assert "user dev1\n" + "\n".join(device_acl("lx", "dev1")) in acl
    conf = json.loads((tmp_path / "dev1.json").read_text())
    assert conf["mqtt"]["username"] == "dev1" and len(conf["mqtt"]["password"]) >= 20
    with PrivateBroker(tmp_path / "broker", port=port, password_file=mosq / "passwd",
                       acl_file=mosq / "acl"):
        admin = Collector(port, "lx", "admin", "adminpw")
        state = tmp_path / "state"
        state.mkdir()
        doc = dict(conf, period_ms=0)
        doc["mqtt"] = dict(conf["mqtt"], timeout_ms=1000)
        (state / "config.json").write_text(json.dumps(doc))
        code, out = run_sim(state, 100)
        assert code == 0, out
        # the device's credentials cannot publish under another device's topics
        intruder = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        intruder.username_pw_set("dev1", conf["mqtt"]["password"])
        intruder.connect("127.0.0.1", port)
        intruder.loop_start()
        # a well-formed batch, so the collector would record it if the ACL let it through
        forged = encode_binary(Batch(1, 0, 0, ["temp"], [[20.0]]))
        intruder.publish("lx/dev2/data", forged, qos=1).wait_for_publish(5)
        time.sleep(0.5)
        intruder.loop_stop()
        admin.wait_for(100)
        admin.close()
        assert {k[0] for k in admin.keys} == {"dev1"}
        assert len(set(admin.keys)) == 100


def test_flash_dry_run_prints_mpremote_commands(tmp_path: Path) -> None:
    conf = tmp_path / "dev.json"
    conf.write_text(json.dumps({"device_id": "dev1", "board": "pico-w",
                                "mqtt": {"host": "192.0.2.1"},
                                "wifi": {"ssid": "lab", "password": "pw"},
                                "sensors": [{"type": "rp2040_temp"}]}))
    build = tmp_path / "build"
    done = cli("flash", "--port", "/dev/ttyACM0", "--device-config", str(conf), "--build-dir",
               str(build), "--dry-run")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "mpremote connect /dev/ttyACM0 mkdir :shared"
    assert lines[1].startswith("mpremote connect /dev/ttyACM0 cp ")
    assert f"{build}/agent.mpy" in lines[1] and f"{build}/main.py" in lines[1]
    assert lines[2].endswith(f"{build}/shared/topics.mpy :shared/")
    assert lines[3].endswith("hardware/boards/pico-w.json :board.json")
    assert lines[4] == f"mpremote connect /dev/ttyACM0 cp {conf} :config.json"
    assert lines[5] == "mpremote connect /dev/ttyACM0 reset"
    assert (build / "mqtt.mpy").read_bytes()[:2] == b"M\x06"
