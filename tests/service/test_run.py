"""The real ``run`` process: config errors, API over a live gateway, SIGTERM."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from support import (
    REPO,
    GatewayProcess,
    publish_readings,
    publisher,
    retained,
    wait_for,
    write_config,
)

from gateway.rigs.broker import PrivateBroker
from gateway.store import Store


def run_gateway(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "run", "--config", str(config)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[api]\nprot = 1\n', "unknown key api.prot (known: cache_ms, enabled, host"),
        ('[api]\nport = "eighty"\n', "api.port = 'eighty' must be an integer"),
        ('[api]\nport = 70000\n', "api.port = 70000 is outside 0..65535"),
        ('[homeassistant]\nenabled = "yes"\n',
         "homeassistant.enabled = 'yes' must be true or false"),
        ('[api]\npush_model = "some"\n', "api.push_model = 'some' is not one of 'opted_in'"),
        ('[gateway]\nid = "a b"\n', "gateway.id = 'a b' must be letters, digits, - or _"),
        ('[mqttt]\nhost = "x"\n', "unknown section [mqttt]"),
        ('[api\n', "is not valid TOML"),
    ],
)
def test_config_errors_name_key_and_value(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = run_gateway(config)
    assert result.returncode == 2
    assert result.stderr.startswith("learnae-gateway: config error: ")
    assert message in result.stderr
    assert result.stdout == ""


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_gateway(tmp_path / "nowhere.toml")
    assert result.returncode == 2
    assert f"cannot read config file {str(tmp_path / 'nowhere.toml')!r}" in result.stderr


def test_busy_api_port_is_named(tmp_path: Path, broker: PrivateBroker, prefix: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        config = write_config(tmp_path, broker, prefix, api={"port": port})
        result = run_gateway(config)
    assert result.returncode == 1
    assert f"api.host = '127.0.0.1', api.port = {port}: cannot listen" in result.stderr


def test_live_gateway_serves_what_it_ingests(tmp_path: Path, broker: PrivateBroker, prefix: str,
                                             gateway_process: type[GatewayProcess]) -> None:
    config = write_config(tmp_path, broker, prefix)
    gw = gateway_process(config).start()
    token_file = tmp_path / "data" / "api-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    client = publisher(broker, f"pub-{prefix}")
    publish_readings(client, prefix, "kitchen", 60, anomalies_every=25)
    api = httpx.Client(base_url=gw.url, timeout=10)

    def stored() -> int:
        items = api.get("/api/devices").json()["items"]
        return items[0]["stored"] if items else 0

    wait_for(lambda: stored() == 60, what="60 readings stored")
    samples = api.get("/api/devices/kitchen/samples", params={"limit": 60}).json()["items"]
    assert sorted(s["seq"] for s in samples if s["anomaly"]) == [0, 25, 50]
    health = api.get("/healthz").json()
    assert health["parts"] == ["ingest", "clock", "api"]
    assert health["ingest"]["stored"] == 60
    assert api.put("/api/devices/kitchen/config", json={"batch_size": 10}).status_code == 401
    accepted = api.put("/api/devices/kitchen/config", json={"batch_size": 10},
                       headers={"Authorization": f"Bearer {token}"})
    assert accepted.status_code == 202
    assert json.loads(retained(broker, f"{prefix}/kitchen/config") or b"null") == {
        "batch_size": 10}
    metrics = api.get("/metrics").text
    assert 'learnae_device_readings_stored{device="kitchen"} 60.0' in metrics
    assert "process_resident_memory_bytes" in metrics
    state = json.loads((tmp_path / "data" / "service.json").read_text())
    assert (state["pid"], state["api"]) == (gw.proc.pid, gw.url)
    api.close()
    client.disconnect()
    code, _ = gw.terminate()
    assert code == 0
    assert not (tmp_path / "data" / "service.json").exists()


def test_sigterm_exits_promptly_and_loses_nothing_acked(
    tmp_path: Path, broker: PrivateBroker, prefix: str, gateway_process: type[GatewayProcess]
) -> None:
    """SIGTERM mid-stream: the process exits (within 5 s); after a restart every
    published reading is stored exactly once, so nothing acked was dropped."""
    config = write_config(tmp_path, broker, prefix)
    db = tmp_path / "data" / "gateway.sqlite3"
    gw = gateway_process(config).start()
    client = publisher(broker, f"pub-{prefix}")
    total = 4000
    sender = threading.Thread(target=publish_readings,
                              args=(client, prefix, "meter", total), kwargs={"batch": 10})
    sender.start()

    def stored() -> int:
        with Store.open(db, readonly=True) as store:
            info = store.device("meter")
            return info.stored if info else 0

    wait_for(lambda: stored() >= 200, what="readings arriving")
    gw.proc.send_signal(15)
    gw.proc.wait(timeout=5)  # raises if the process takes longer than 5 s
    assert gw.proc.returncode == 0
    assert "learnae-gateway: stopped" in "".join(gw.lines)
    at_stop = stored()
    print(f'stored at SIGTERM: {at_stop} of {total}')
    assert 200 <= at_stop <= total
    sender.join(60)
    client.disconnect()
    gateway_process(config).start()  # same client id: the broker redelivers the rest
    wait_for(lambda: stored() == total, timeout=60, what=f"all {total} readings")
    with Store.open(db, readonly=True) as store:
        seqs = [s.seq for s in store.samples("meter", limit=total + 10)]
    assert sorted(seqs) == list(range(total))
