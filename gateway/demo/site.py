"""A whole LEARNAE edge site on this machine (``learnae-gateway demo``).

A private Mosquitto; three gateways, each its own ``python -m gateway run``
process with its own data directory, taking part in LEARNAE as peers (UDP
gossip on loopback, one content-addressed local block store shared on this
machine); four sensors per gateway running the real firmware under the
MicroPython unix port (``python -m gateway sim``), each replaying a different
stretch of the AirQuality year plus a simulated channel pair with injected
anomalies. The first gateway's dashboard is on http://127.0.0.1:8000.

Progress goes to stderr every few seconds; at the end (``--duration S``, or
Ctrl-C with ``--duration 0``) a summary: readings stored, rounds, loss per peer,
peak resident memory per gateway. Every child is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPLAY_COLUMNS = ["T", "RH", "AH"]
YEAR_ROWS = 9357  # rows in the AirQuality recording
PROGRESS_S = 5.0
ANOMALY_RATE = 0.01  # of the simulated sensors' readings
ALARM_INTERVAL_S = 2.0  # the gateways' detector pass
DEMO_WINDOW = 8  # readings per forecaster window (the boards keep as many)


@dataclass(frozen=True)
class DemoSettings:
    """What ``learnae-gateway demo`` runs (its flags)."""

    duration: float = 60.0  # seconds after start-up; 0 runs until Ctrl-C
    gateways: int = 3
    sensors: int = 4  # per gateway
    port: int = 8000  # the first gateway's dashboard
    dir: Path | None = None  # working directory (None: a temporary one, removed at the end)
    period_ms: int = 100  # sensor reading period


def say(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


@dataclass
class Gateway:
    name: str
    directory: Path
    prefix: str
    api_port: int
    udp_port: int
    proc: subprocess.Popen[bytes] | None = None
    url: str | None = None
    rss_peak: int = 0
    rss_total_peak: int = 0
    sensors: list[subprocess.Popen[bytes]] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)  # simulated sensor seed per device

    @property
    def log(self) -> Path:
        return self.directory / "gateway.log"


class Demo:
    def __init__(self, args: DemoSettings) -> None:
        self.args = args
        self.own_dir = args.dir is None
        self.root = Path(args.dir or tempfile.mkdtemp(prefix="learnae-demo-")).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.broker: Any = None
        self.gateways: list[Gateway] = []
        self.started_at = 0.0
        self._reported: set[int] = set()

    # -- start ----------------------------------------------------------------
    def start(self) -> None:
        from gateway.rigs.broker import PrivateBroker
        from gateway.rigs.ports import free_port, port_free

        say(f"working directory {self.root}")
        self.broker = PrivateBroker(self.root / "broker").start()
        say(f"mosquitto on 127.0.0.1:{self.broker.port} (pid {self.broker.process.pid})")
        port = self.args.port
        if not port_free(port):
            fallback = free_port()
            say(f"port {port} is taken; the dashboard will be on port {fallback} instead")
            port = fallback
        n = self.args.gateways
        udp_ports = [free_port() for _ in range(n)]
        blocks = self.root / "blocks"  # one content-addressed block store on this machine
        blocks.mkdir(exist_ok=True)
        for i in range(n):
            gw = Gateway(name=f"site-{i + 1}", directory=self.root / f"site-{i + 1}",
                         prefix=f"site{i + 1}", api_port=port if i == 0 else 0,
                         udp_port=udp_ports[i])
            (gw.directory / "data").mkdir(parents=True, exist_ok=True)
            peers = ",".join(f"127.0.0.1:{p}" for j, p in enumerate(udp_ports) if j != i)
            self._write_config(gw, peers, blocks)
            self.gateways.append(gw)
        for gw in self.gateways:
            self._start_gateway(gw)
        for i, gw in enumerate(self.gateways):
            self._start_sensors(gw, i)
        self.started_at = time.monotonic()
        first = self.gateways[0]
        say(f"dashboard: {first.url}/  (API {first.url}/docs, metrics {first.url}/metrics)")

    def _write_config(self, gw: Gateway, peers: str, blocks: Path) -> None:
        from gateway.config import toml_text

        tables = {
            "gateway": {"id": gw.name, "data_dir": gw.directory / "data"},
            "mqtt": {"host": "127.0.0.1", "port": self.broker.port, "topic_prefix": gw.prefix},
            # min_windows: no model before 25 s of readings, one period of the simulated
            # sensors' triangle wave; younger models push boards to flag 3 to 4 x the
            # injected rate
            "training": {"enabled": True, "period_s": self.args.period_ms / 1000.0,
                         "window": DEMO_WINDOW, "hidden_units": 16, "epochs": 8,
                         "min_windows": 256, "max_readings": 3000,
                         "anomaly_interval_s": ALARM_INTERVAL_S},
            "peer": {"enabled": True, "session": "learnae-demo", "store": "local",
                     "blocks_dir": blocks, "transport": "udp", "udp_port": gw.udp_port,
                     "udp_peers": peers, "round_interval_s": 4.0, "announce_interval_s": 2.0,
                     "fetch_timeout_s": 2.0},
            "api": {"host": "127.0.0.1", "port": gw.api_port, "push_model": "opted_in"},
        }
        text = toml_text(tables, header="written by `learnae-gateway demo`")
        (gw.directory / "gateway.toml").write_text(text)

    def _start_gateway(self, gw: Gateway) -> None:
        handle = gw.log.open("ab")
        gw.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config",
             str(gw.directory / "gateway.toml")],
            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        handle.close()
        deadline = time.monotonic() + 60
        while gw.url is None:
            if gw.proc.poll() is not None:
                raise RuntimeError(f"{gw.name} exited with {gw.proc.returncode}; "
                                   f"see {gw.log}:\n{gw.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{gw.name} did not start in 60 s; see {gw.log}")
            for line in gw.log.read_text(errors="replace").splitlines():
                if "learnae-gateway: ready" in line and "; api " in line:
                    gw.url = line.rsplit("; api ", 1)[1].rstrip(")")
            time.sleep(0.1)
        say(f"{gw.name}: gateway pid {gw.proc.pid}, {gw.url}, log {gw.log}")

    def _start_sensors(self, gw: Gateway, index: int) -> None:
        from gateway.system.devices import make_device_config

        stretch = YEAR_ROWS // max(len(self.gateways), 1)
        for j in range(self.args.sensors):
            device = f"{gw.prefix}-s{j + 1}"
            conf = make_device_config(
                device, mqtt_host="127.0.0.1", mqtt_port=self.broker.port,
                topic_prefix=gw.prefix,
                sensors=[
                    {"type": "replay", "path": "replay.csv", "columns": REPLAY_COLUMNS},
                    {"type": "simulated", "seed": 100 * index + j + 1,
                     "anomaly_rate": ANOMALY_RATE,
                     "channels": ["temp", "level"]},
                ],
                period_ms=self.args.period_ms, batch_size=20,
                thresholds={"temp": [0.0, 40.0]}, status_every_s=10,
            )
            gw.seeds[device] = 100 * index + j + 1
            sensor_dir = gw.directory / "sensors" / device
            sensor_dir.mkdir(parents=True, exist_ok=True)
            config_path = sensor_dir / "device.json"
            config_path.write_text(json.dumps(conf, indent=1))
            offset = index * stretch + j * 24  # a different stretch of the year per gateway
            handle = (sensor_dir / "sim.log").open("ab")
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "sim", "--device-config", str(config_path),
                 "--state-dir", str(sensor_dir / "flash"), "--replay-offset", str(offset),
                 "--replay-rows", str(stretch - j * 24)],
                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
            )
            handle.close()
            gw.sensors.append(proc)
        pids = ", ".join(str(p.pid) for p in gw.sensors)
        say(f"{gw.name}: {len(gw.sensors)} sensors (firmware under MicroPython), pids {pids},"
            f" AirQuality rows from {index * stretch}")

    # -- watch ------------------------------------------------------------------
    def sample(self) -> None:
        """Poll each gateway's API and memory; remember peaks and the latest figures."""
        import httpx
        import psutil

        for gw in self.gateways:
            if gw.proc is None or gw.proc.poll() is not None:
                continue
            try:
                proc = psutil.Process(gw.proc.pid)
                rss = proc.memory_info().rss
                total = rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
                gw.rss_peak = max(gw.rss_peak, rss)
                gw.rss_total_peak = max(gw.rss_total_peak, total)
            except psutil.Error:
                pass
            try:
                with httpx.Client(base_url=gw.url or "", timeout=5) as api:
                    devices = api.get("/api/devices").json()["items"]
                    peers = api.get("/api/peers").json()
                    rounds = api.get("/api/rounds", params={"limit": 1000}).json()
            except (httpx.HTTPError, ValueError, KeyError):
                continue
            own: dict[str, Any] = next((p for p in peers["items"] if p.get("is_self")), {})
            others = [p for p in peers["items"] if not p.get("is_self")]
            own_rounds = [r for r in rounds if r["peer_id"] == peers.get("self_id")]
            flagged = sum(int(d["status"].get("anomalies") or 0) for d in devices)
            gw.last = {
                "readings": sum(d["stored"] for d in devices),
                "devices": len(devices),
                "online_max": max(gw.last.get("online_max", 0),
                                  sum(1 for d in devices if d["online"])),
                # boards count the readings they flagged (thresholds or edge model)
                "anomalies_flagged": max(gw.last.get("anomalies_flagged", 0), flagged),
                "peer_id": peers.get("self_id"),
                "rounds": len(own_rounds),
                "loss_first": own_rounds[0]["metrics"].get("val_loss") if own_rounds else None,
                "loss": own.get("metrics", {}).get("val_loss"),
                "peers_seen": len(others),
                "peers_verified": sum(1 for p in others if p.get("last_round") is not None),
                "rounds_of_others": len(rounds) - len(own_rounds),
            }

    def progress(self) -> None:
        elapsed = time.monotonic() - self.started_at
        parts = []
        for gw in self.gateways:
            s = gw.last
            loss = s.get("loss")
            parts.append(f"{gw.name}: {s.get('readings', 0)} readings, round {s.get('rounds', 0)}"
                         + (f", loss {loss:.3f}" if isinstance(loss, float) else "")
                         + f", peers {s.get('peers_verified', 0)}/{s.get('peers_seen', 0)}"
                         + f", {gw.rss_peak / 2**20:.0f} MB")
        say(f"t={elapsed:4.0f}s  " + " | ".join(parts))

    def run_for(self, duration: float) -> None:
        stop = threading.Event()

        def handler(*_: object) -> None:
            stop.set()

        previous = signal.signal(signal.SIGTERM, handler)
        try:
            while not stop.is_set():
                elapsed = time.monotonic() - self.started_at
                if duration and elapsed >= duration:
                    break
                wait = PROGRESS_S if not duration else min(PROGRESS_S, duration - elapsed)
                stop.wait(max(wait, 0.1))
                self.sample()
                self.progress()
                for gw in self.gateways:
                    if gw.proc is not None and gw.proc.poll() is not None:
                        say(f"{gw.name} exited with {gw.proc.returncode}; see {gw.log}")
                        stop.set()
                    for proc in gw.sensors:
                        if proc.poll() is not None and proc.pid not in self._reported:
                            self._reported.add(proc.pid)
                            say(f"{gw.name}: sensor pid {proc.pid} exited with"
                                f" {proc.returncode}; see {gw.directory / 'sensors'}/*/sim.log")
        except KeyboardInterrupt:
            say("interrupted")
        finally:
            signal.signal(signal.SIGTERM, previous)

    # -- stop -------------------------------------------------------------------
    def stop(self) -> None:
        for gw in self.gateways:
            for proc in gw.sensors:
                _terminate(proc, 5)
        self.sample()
        self.alarms()
        for gw in self.gateways:
            if gw.proc is not None:
                started = time.monotonic()
                code = _terminate(gw.proc, 10)
                gw.last["exit_code"] = code
                gw.last["stop_seconds"] = round(time.monotonic() - started, 2)
        if self.broker is not None:
            self.broker.stop()

    def alarms(self) -> None:
        """Board flags and the gateways' anomaly events against the injected anomalies."""
        from gateway.demo.alarms import measure

        time.sleep(ALARM_INTERVAL_S + 1.0)  # the detector's last pass over the last readings
        for gw in self.gateways:
            if gw.proc is None or gw.proc.poll() is not None or not gw.url:
                continue
            try:
                gw.last["alarms"] = measure(gw.directory / "data" / "gateway.sqlite3", gw.url,
                                            gw.seeds, ANOMALY_RATE, DEMO_WINDOW,
                                            self.args.period_ms / 1000.0)
            except Exception as exc:  # a report, never a reason to leave children running
                say(f"{gw.name}: alarm figures failed: {exc}")

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"duration_s": round(time.monotonic() - self.started_at, 1),
                               "gateways": {}}
        for gw in self.gateways:
            out["gateways"][gw.name] = {
                **gw.last,
                "rss_peak_mb": round(gw.rss_peak / 2**20, 1),
                "rss_peak_with_training_mb": round(gw.rss_total_peak / 2**20, 1),
            }
        return out

    def cleanup(self) -> None:
        if self.own_dir:
            shutil.rmtree(self.root, ignore_errors=True)


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """SIGTERM one child by PID; SIGKILL if it does not exit in ``timeout``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
    return proc.returncode


def print_summary(summary: dict[str, Any]) -> None:
    print(f"LEARNAE edge demo: {summary['duration_s']} s")
    header = (f"{'gateway':8} {'readings':>9} {'devices':>7} {'rounds':>6} {'loss first':>10}"
              f" {'loss last':>9} {'peers ok':>8} {'RSS MB':>7} {'+train MB':>9}")
    print(header)
    for name, s in summary["gateways"].items():
        def fmt(x: Any) -> str:
            return f"{x:.3f}" if isinstance(x, float) else "-"

        print(f"{name:8} {s.get('readings', 0):>9} {s.get('devices', 0):>7}"
              f" {s.get('rounds', 0):>6} {fmt(s.get('loss_first')):>10} {fmt(s.get('loss')):>9}"
              f" {s.get('peers_verified', 0):>8} {s['rss_peak_mb']:>7} "
              f"{s['rss_peak_with_training_mb']:>9}")
    for name, s in summary["gateways"].items():
        a = s.get("alarms", {}).get("total")
        if a:
            print(f"{name:8} alarms: boards flagged {a['board_flagged']} of {a['stored']} readings"
                  f" ({a['injected']} injected); {a['spikes_one_event']} of"
                  f" {a['spikes_scored']} injected readings after the first model are one"
                  f" anomaly event each, {a['events_without_spike']} other events")
    print(json.dumps(summary))


def run_demo(settings: DemoSettings) -> int:
    """Start the site, run it for ``settings.duration``, stop it and print the summary."""
    demo = Demo(settings)
    try:
        try:
            demo.start()
        except Exception as exc:
            say(f"cannot start: {exc}")
            return 1
        if settings.duration:
            say(f"running for {settings.duration:.0f} s")
        else:
            say("running until Ctrl-C")
        demo.run_for(settings.duration)
    except KeyboardInterrupt:
        say("interrupted")
    finally:
        say("stopping sensors, gateways and the broker")
        demo.stop()
        if demo.started_at:
            print_summary(demo.summary())
        demo.cleanup()
    return 0
