"""``bench soak --minutes M``: one gateway left running under load, with faults.

Set-up: a private Mosquitto (persistent); the gateway under test and two peer
gateways, each its own ``run`` process, doing LEARNAE rounds over UDP on
loopback; 50 boards at 1 Hz from a publisher process speaking the binary
protocol (one reading per message, QoS 1) plus 4 firmware processes under the
MicroPython unix port; a few API clients polling the dashboard's lists. At 15 %
of the run the broker is restarted, at 25 % the gateway is SIGKILLed and started
again on the same data.

Reported (last stdout line, JSON): ``sent`` = the publisher's readings the broker
acknowledged; ``stored`` = of those, the ones in the gateway's store afterwards;
``lost`` = sent - stored; ``duplicated`` = rows stored more than once for one
(device, boot, seq) (the store's key makes it 0 unless that breaks) while
``redeliveries_dropped`` counts the copies the broker sent again and the store
refused; RSS (MB) and open file descriptors of the gateway sampled every 10 s,
growth measured on the process running after the restart, from the end of its
warm-up (a fifth of its run, at least 20 s) to the end, and once a minute from then
(``rss_mb_per_minute``, ``fds_per_minute``); ``p99_publish_to_commit_ms``
from the publish time to the first poll of the store (every 100 ms) that sees the
reading, so its resolution is 0.1 s and it includes the outages; ``rounds`` of the
gateway's own LEARNAE log; ``api_p99_ms`` over successful API requests
(``api_errors`` counts the refused ones while the gateway was down).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BOARDS = 50
FIRMWARE = 4
API_CLIENTS = 3
SAMPLE_S = 10.0
POLL_S = 0.1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the run")
    parser.add_argument("--boards", type=int, default=BOARDS, help="publisher boards at 1 Hz")
    parser.add_argument("--firmware", type=int, default=FIRMWARE,
                        help="firmware processes under the MicroPython unix port")
    parser.add_argument("--dir", type=Path, default=None, help="keep the run's files here")


def say(message: str) -> None:
    print(f"soak: {message}", file=sys.stderr, flush=True)


def _publisher(port: int, prefix: str, boards: int, seconds: float, out: str) -> None:
    """Publisher process: every board one reading a second, QoS 1; writes the publish
    time of every reading the broker acknowledged (PUBACK) to ``out``."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from shared.codec import Batch, encode_binary

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{prefix}-publisher",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.reconnect_delay_set(0.1, 1.0)  # type: ignore[arg-type]
    sent: dict[int, tuple[str, int, float]] = {}
    early: set[int] = set()  # PUBACKs that came before publish() returned their mid
    acked: dict[str, dict[int, float]] = {f"b{i:02d}": {} for i in range(boards)}
    lock = threading.Lock()

    def on_publish(_c: Any, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        with lock:
            item = sent.pop(mid, None)
            if item is None:
                early.add(mid)
                return
        acked[item[0]][item[1]] = item[2]

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.monotonic()
    tick = 0
    while time.monotonic() - start < seconds:
        now = time.time()
        for name in acked:
            row = [20.0 + tick % 50 * 0.1, 45.0 + tick % 7 * 0.5]
            payload = encode_binary(Batch(1, tick, int(now), ["temp", "hum"], [row],
                                          period_ms=1000))
            # never publish() under the lock: paho's network thread holds its own
            # while it calls on_publish
            info = client.publish(f"{prefix}/{name}/data", payload, qos=1)
            with lock:
                if info.mid in early:
                    early.discard(info.mid)
                    acked[name][tick] = now
                else:
                    sent[info.mid] = (name, tick, now)
        tick += 1
        time.sleep(max(0.0, start + tick - time.monotonic()))
    deadline = time.monotonic() + 120
    while sent and time.monotonic() < deadline:
        time.sleep(0.1)
    client.disconnect()
    client.loop_stop()
    Path(out).write_text(json.dumps({"acked": acked, "unacked": len(sent)}))


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        from gateway.rigs.broker import free_port

        self.args = args
        self.seconds = args.minutes * 60.0
        self.root = Path(args.dir or tempfile.mkdtemp(prefix="learnae-soak-")).resolve()
        self.own_dir = args.dir is None
        self.api_port = free_port()
        self.udp_ports = [free_port() for _ in range(3)]
        self.broker: Any = None
        self.gateways: list[subprocess.Popen[bytes] | None] = [None, None, None]
        self.children: list[subprocess.Popen[bytes]] = []
        self.stop = threading.Event()
        self.samples: list[tuple[float, int, int, int]] = []  # (t, pid, rss, fds)
        self.api_ms: list[float] = []
        self.api_errors = 0
        self.seen: dict[str, list[tuple[float, int]]] = {}  # board -> (time, max seq)

    # -- parts ------------------------------------------------------------------
    def config(self, i: int) -> Path:
        from gateway.config import toml_text

        directory = self.root / f"gw{i}"
        (directory / "data").mkdir(parents=True, exist_ok=True)
        peers = ",".join(f"127.0.0.1:{p}" for j, p in enumerate(self.udp_ports) if j != i)
        path = directory / "gateway.toml"
        path.write_text(toml_text({
            "gateway": {"id": f"soak-{i}", "data_dir": directory / "data"},
            "mqtt": {"host": "127.0.0.1", "port": self.broker.port, "topic_prefix": f"soak{i}",
                     "client_id": f"soak-gw{i}"},
            "training": {"period_s": 1.0, "max_readings": 2000, "window": 8, "hidden_units": 8,
                         "epochs": 4, "min_windows": 32},
            "peer": {"enabled": True, "session": "learnae-soak", "store": "local",
                     "blocks_dir": self.root / "blocks", "transport": "udp",
                     "udp_port": self.udp_ports[i], "udp_peers": peers,
                     "round_interval_s": 10.0, "announce_interval_s": 2.0,
                     "fetch_timeout_s": 2.0},
            "api": {"host": "127.0.0.1", "port": self.api_port if i == 0 else 0,
                    "cache_ms": 250},
        }))
        return path

    def start_gateway(self, i: int) -> None:
        path = self.config(i)
        log_path = path.parent / "gateway.log"
        ready = "learnae-gateway: ready"
        before = log_path.read_text(errors="replace").count(ready) if log_path.exists() else 0
        log = log_path.open("ab")
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(path)],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        self.gateways[i] = proc
        deadline = time.monotonic() + 90
        while log_path.read_text(errors="replace").count(ready) <= before:
            if proc.poll() is not None or time.monotonic() > deadline:
                text = log_path.read_text(errors="replace")
                raise RuntimeError(f"gateway {i} did not start: {text[-2000:]}")
            time.sleep(0.1)
        say(f"gateway {i}: pid {proc.pid}")

    def start_firmware(self) -> None:
        from gateway.system.devices import make_device_config

        for j in range(self.args.firmware):
            device = f"fw{j}"
            conf = make_device_config(device, mqtt_host="127.0.0.1", mqtt_port=self.broker.port,
                                      topic_prefix="soak0",
                                      sensors=[{"type": "simulated", "seed": j + 1}],
                                      period_ms=1000, batch_size=5, status_every_s=10)
            directory = self.root / "firmware" / device
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "device.json").write_text(json.dumps(conf))
            log = (directory / "sim.log").open("ab")
            self.children.append(subprocess.Popen(
                [sys.executable, "-m", "gateway", "sim", "--device-config",
                 str(directory / "device.json"), "--state-dir", str(directory / "flash")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            log.close()

    # -- watchers ---------------------------------------------------------------
    def sampler(self) -> None:
        import psutil

        while not self.stop.wait(SAMPLE_S):
            proc = self.gateways[0]
            if proc is None or proc.poll() is not None:
                continue
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(proc.pid)
                self.samples.append((time.monotonic(), proc.pid, p.memory_info().rss,
                                     p.num_fds()))

    def api_client(self) -> None:
        import httpx

        paths = ("/api/devices", "/api/overview", "/healthz", "/api/rounds")
        with httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}", timeout=10) as api:
            n = 0
            while not self.stop.wait(0.5):
                path = paths[n % len(paths)]
                n += 1
                started = time.perf_counter()
                try:
                    api.get(path)
                except httpx.HTTPError:
                    self.api_errors += 1
                    continue
                self.api_ms.append((time.perf_counter() - started) * 1000)

    def commit_poller(self) -> None:
        from gateway.errors import StoreError
        from gateway.store.db import connect

        db = self.root / "gw0" / "data" / "gateway.sqlite3"
        while not self.stop.wait(POLL_S):
            try:
                with contextlib.closing(connect(db, readonly=True, busy_timeout_ms=1000,
                                                min_version=1)) as conn:
                    rows = conn.execute(
                        "SELECT d.name, (SELECT MAX(seq) FROM readings r WHERE r.device = d.id)"
                        " FROM devices d WHERE d.name LIKE 'b%'").fetchall()
            except (StoreError, sqlite3.Error):  # not written yet, or busy: the next poll
                continue
            now = time.time()
            for name, seq in rows:
                if seq is not None:
                    series = self.seen.setdefault(name, [])
                    if not series or series[-1][1] != seq:
                        series.append((now, seq))

    # -- run --------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from gateway.rigs.broker import PrivateBroker

        self.broker = PrivateBroker(self.root / "broker").start()
        (self.root / "blocks").mkdir(exist_ok=True)
        for i in range(3):
            self.start_gateway(i)
        self.start_firmware()
        out = self.root / "published.json"
        publisher = subprocess.Popen(
            [sys.executable, "-c", f"from gateway.bench.soak import _publisher; _publisher("
             f"{self.broker.port}, 'soak0', {self.args.boards}, {self.seconds}, {str(out)!r})"],
            start_new_session=True)
        self.children.append(publisher)
        threads = [threading.Thread(target=t, daemon=True) for t in
                   (self.sampler, self.commit_poller, *[self.api_client] * API_CLIENTS)]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        say(f"running {self.seconds:.0f} s: {self.args.boards} boards at 1 Hz, "
            f"{self.args.firmware} firmware processes, 3 gateways")
        self._at(started + 0.15 * self.seconds)
        say("restarting the broker")
        self.broker.stop()
        self.broker.start()
        self._at(started + 0.25 * self.seconds)
        gateway = self.gateways[0]
        assert gateway is not None
        say(f"SIGKILL gateway 0 (pid {gateway.pid})")
        restarted_at = time.monotonic()
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(30)
        self.start_gateway(0)
        publisher.wait(self.seconds + 300)
        published = json.loads(out.read_text())
        acked = published["acked"]
        total = sum(len(v) for v in acked.values())
        say(f"publisher done: {total} readings acknowledged by the broker, "
            f"{published['unacked']} not")
        db = self.root / "gw0" / "data" / "gateway.sqlite3"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self._stored(db, acked)[0] < total:
            time.sleep(0.5)
        rounds = self._rounds()
        self.stop.set()
        for thread in threads:
            thread.join(15)
        stored, duplicated, dropped = self._stored(db, acked)
        return self._report(acked, total, stored, duplicated, dropped, rounds, restarted_at)

    def _at(self, when: float) -> None:
        while time.monotonic() < when:
            time.sleep(min(1.0, when - time.monotonic()))
            for proc in self.gateways:
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"a gateway exited with {proc.returncode}; "
                                       f"see {self.root}/gw*/gateway.log")

    def _stored(self, db: Path, acked: dict[str, dict[str, float]]) -> tuple[int, int, int]:
        from gateway.store.db import connect

        # the raw rows: duplicates are counted by key, apart from the store's own counters
        with contextlib.closing(connect(db, readonly=True)) as conn:
            have = {(name, seq) for name, seq in conn.execute(
                "SELECT d.name, r.seq FROM readings r JOIN devices d ON d.id = r.device"
                " WHERE d.name LIKE 'b%'")}
            rows, distinct = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT device || ':' || boot || ':' || seq)"
                " FROM readings").fetchone()
            dropped = conn.execute("SELECT COALESCE(SUM(duplicates), 0) FROM devices").fetchone()
        stored = sum(1 for name, seqs in acked.items() for seq in seqs
                     if (name, int(seq)) in have)
        return stored, int(rows) - int(distinct), int(dropped[0])

    def _rounds(self) -> int:
        import httpx

        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            base = f"http://127.0.0.1:{self.api_port}"
            peers = httpx.get(f"{base}/api/peers", timeout=10).json()
            rounds = httpx.get(f"{base}/api/rounds", params={"limit": 1000}, timeout=10).json()
            return sum(1 for r in rounds if r["peer_id"] == peers["self_id"])
        return 0

    def _report(self, acked: dict[str, dict[str, float]], total: int, stored: int,
                duplicated: int, dropped: int, rounds: int, restarted_at: float) -> dict[str, Any]:
        latencies = []
        for name, seqs in acked.items():
            series = self.seen.get(name, [])
            k = 0
            for seq, published_at in sorted((int(s), t) for s, t in seqs.items()):
                while k < len(series) and series[k][1] < seq:
                    k += 1
                if k < len(series):
                    latencies.append(max(0.0, series[k][0] - published_at) * 1000)
        (self.root / "commits.json").write_text(json.dumps(self.seen))
        pid = self.gateways[0].pid if self.gateways[0] else None
        last = [s for s in self.samples if s[1] == pid]
        warm = max(20.0, 0.2 * (time.monotonic() - restarted_at))
        after = [s for s in last if s[0] >= restarted_at + warm] or last[-1:]
        return {
            "minutes": self.args.minutes,
            "sent": total,
            "stored": stored,
            "lost": total - stored,
            "duplicated": duplicated,
            "redeliveries_dropped": dropped,
            "rss_growth_mb": round((after[-1][2] - after[0][2]) / 2**20, 2) if after else None,
            "rss_end_mb": round(after[-1][2] / 2**20, 1) if after else None,
            "fds_start": after[0][3] if after else None,
            "fds_end": after[-1][3] if after else None,
            "samples": len(after),
            # the shape of the growth: a plateau (caches filling) or a line (a leak)
            "rss_mb_per_minute": [round(x[2] / 2**20, 1) for x in after[::6]],
            "fds_per_minute": [x[3] for x in after[::6]],
            "p50_publish_to_commit_ms": round(_pct(latencies, 0.50), 1),
            "p99_publish_to_commit_ms": round(_pct(latencies, 0.99), 1),
            "max_publish_to_commit_ms": round(max(latencies, default=0.0), 1),
            "rounds": rounds,
            "api_p99_ms": round(_pct(self.api_ms, 0.99), 1),
            "api_requests": len(self.api_ms),
            "api_errors": self.api_errors,
            "faults": ["broker restart at 15 %", "gateway SIGKILL at 25 %"],
        }

    def close(self) -> None:
        for proc in [*self.children, *(g for g in self.gateways if g is not None)]:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.broker is not None:
            self.broker.stop()
        if self.own_dir:
            import shutil

            shutil.rmtree(self.root, ignore_errors=True)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    soak = Soak(args)
    try:
        return soak.run()
    finally:
        soak.close()
