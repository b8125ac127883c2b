"""Helpers for the ingest tests: a gateway config, a real gateway process, publishers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import PrivateBroker
from gateway.store import read_health

REPO = Path(__file__).resolve().parents[2]


def write_config(directory: Path, broker: PrivateBroker, prefix: str, *,
                 mqtt_extra: dict[str, Any] | None = None,
                 ingest_extra: dict[str, Any] | None = None,
                 store_extra: dict[str, Any] | None = None,
                 gateway_id: str = "gw-test") -> Path:
    """A TOML config for a gateway on ``broker`` (API, training and peer off)."""
    def table(name: str, values: dict[str, Any]) -> str:
        lines = [f"[{name}]"]
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(value)}")
        return "\n".join(lines)

    mqtt_values = {"host": "127.0.0.1", "port": broker.port, "topic_prefix": prefix,
                   "client_id": f"gw-{prefix}", **(mqtt_extra or {})}
    text = "\n\n".join([
        table("gateway", {"id": gateway_id, "data_dir": str(directory / "data")}),
        table("mqtt", mqtt_values),
        table("ingest", ingest_extra or {}),
        table("store", store_extra or {}),
        table("training", {"enabled": False}),
        table("api", {"enabled": False}),
    ]) + "\n"
    path = directory / "gateway.toml"
    path.write_text(text)
    return path


def db_path(config_path: Path) -> Path:
    return config_path.parent / "data" / "gateway.sqlite3"


def status(config_path: Path) -> dict[str, Any]:
    """``python -m gateway status --config F --json``, last stdout line parsed."""
    out = subprocess.run([sys.executable, "-m", "gateway", "status", "--config",
                          str(config_path), "--json"], capture_output=True, text=True,
                         cwd=REPO, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class GatewayProcess:
    """``python -m gateway run --config F`` as a real process we can SIGKILL."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = config_path.parent / "gateway.log"

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(self.config_path)],
            cwd=REPO, stdout=handle, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        handle.close()
        self.wait_subscribed(timeout)
        return self

    def wait_subscribed(self, timeout: float = 30.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        path = db_path(self.config_path)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited {self.proc.returncode}: "
                                     f"{self.log.read_text()[-3000:]}")
            health = read_health(path)
            if health.get("pid") == self.proc.pid and health.get("mqtt") == "subscribed":
                return
            time.sleep(0.05)
        tail = self.log.read_text()[-3000:]
        raise AssertionError(f"gateway not subscribed in {timeout}s: {tail}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def publisher(broker: PrivateBroker, client_id: str, *, username: str | None = None,
              password: str | None = None) -> mqtt.Client:
    """A connected, looping paho publisher (MQTT v5)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    if username:
        client.username_pw_set(username, password)
    client.max_inflight_messages_set(100)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
