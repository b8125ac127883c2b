"""What the ingest, service and firmware tests share: gateway configs, a real gateway
process, a paho publisher, and polling."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import toml_text
from gateway.rigs.broker import PrivateBroker
from gateway.store import read_health

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def write_config(directory: Path, broker: PrivateBroker, prefix: str,
                 **sections: dict[str, Any]) -> Path:
    """``directory/gateway.toml`` for a gateway on ``broker`` (training off, API on a free
    port); each keyword is a section whose keys override the defaults."""
    tables: dict[str, dict[str, Any]] = {
        "gateway": {"id": "gw-test", "data_dir": str(directory / "data")},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "topic_prefix": prefix,
                 "client_id": f"gw-{prefix}"},
        "training": {"enabled": False},
        "api": {"port": 0},
    }
    for name, values in sections.items():
        tables.setdefault(name, {}).update(values)
    path = directory / "gateway.toml"
    path.write_text(toml_text(tables))
    return path


def db_path(config_path: Path) -> Path:
    return config_path.parent / "data" / "gateway.sqlite3"


def status(config_path: Path) -> dict[str, Any]:
    """``python -m gateway status --config F --json``, last stdout line parsed."""
    out = subprocess.run([sys.executable, "-m", "gateway", "status", "--config",
                          str(config_path), "--json"], capture_output=True, text=True,
                         cwd=REPO, timeout=60, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


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


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll until ``predicate()`` is truthy; return its value or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class GatewayProcess:
    """``python -m gateway run --config F`` as a real process (to SIGTERM or SIGKILL).

    ``start`` returns once the service says it is ready and its ingest is subscribed;
    stderr is kept in ``lines`` and in ``gateway.log`` beside the config.
    """

    READY = re.compile(r"learnae-gateway: ready \((.*?)(?:; api (\S+))?\)")

    def __init__(self, config_path: Path, env: dict[str, str] | None = None) -> None:
        self.config_path = config_path
        self.env = env or {}
        self.log = config_path.parent / "gateway.log"
        self.proc: subprocess.Popen[str] | None = None
        self.url: str | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        self._ready.clear()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(self.config_path)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        if not self._ready.wait(timeout) or self.proc.poll() is not None:
            self.stop()
            raise AssertionError(f"gateway not ready: {''.join(self.lines)[-3000:]}")
        self.wait_subscribed(timeout)
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        with self.log.open("a") as log:
            for line in proc.stderr:
                self.lines.append(line)
                log.write(line)
                log.flush()
                match = self.READY.search(line)
                if match:
                    self.url = match.group(2)
                    self._ready.set()
        self._ready.set()

    def wait_subscribed(self, timeout: float = 30.0) -> None:
        """Wait until this process's ingest reports its subscriptions in the health file."""
        assert self.proc is not None
        proc, path = self.proc, db_path(self.config_path)

        def subscribed() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"gateway exited {proc.returncode}: "
                                     f"{''.join(self.lines)[-3000:]}")
            health = read_health(path)
            return health.get("pid") == proc.pid and health.get("mqtt") == "subscribed"

        wait_for(subscribed, timeout, "the gateway's ingest to subscribe")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds until exit)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(15)
        return code, time.monotonic() - started

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
