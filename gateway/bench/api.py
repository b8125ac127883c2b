"""``bench api``: latency of ``GET /api/devices`` under concurrent clients while ingesting.

A private Mosquitto, a real gateway process (``python -m gateway run``, API on a
free port, training off), a publisher process feeding it readings from many
devices at a steady rate, and ``--clients`` concurrent HTTP clients (asyncio,
one keep-alive connection each) requesting ``/api/devices`` back to back for
``--duration`` seconds. Reports latency percentiles, request rate, the ingest
rate achieved meanwhile and the gateway's resident memory. Goal: p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

GOAL_P99_MS = 50.0

PUBLISHER = r"""
import sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from shared.codec import Batch, encode_binary
port, prefix, devices, rate, duration = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), \
    float(sys.argv[4]), float(sys.argv[5])
client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-api-pub",
                     protocol=mqtt.MQTTv5)
client.max_inflight_messages_set(1000)
client.connect("127.0.0.1", port)
client.loop_start()
batch = 10
interval = batch * devices / rate
seq, start, sent = 0, time.time(), 0
while time.time() - start < duration:
    tick = time.time()
    for d in range(devices):
        rows = [[20.0 + (seq + i) % 10 * 0.1, 40.0 + d % 7, 1000.0 + i] for i in range(batch)]
        payload = encode_binary(Batch(1, seq, int(tick), ["temp", "hum", "pressure"], rows,
                                      period_ms=100))
        client.publish(f"{prefix}/dev{d:03d}/data", payload, qos=1)
        sent += batch
    seq += batch
    time.sleep(max(0.0, interval - (time.time() - tick)))
client.loop_stop()
print(sent)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=50, help="concurrent HTTP clients")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--devices", type=int, default=20, help="devices publishing")
    parser.add_argument("--rate", type=float, default=2000.0,
                        help="readings per second published meanwhile")
    parser.add_argument("--path", default="/api/devices", help="endpoint to request")
    parser.add_argument("--think-ms", type=float, default=0.0,
                        help="pause of each client between requests (0: back to back, so"
                        " latency includes queueing behind the other clients)")


def _say(message: str) -> None:
    print(f"bench api: {message}", file=sys.stderr, flush=True)


async def _client(host: str, port: int, path: str, deadline: float,
                  latencies: list[float], think: float = 0.0) -> int:
    """One keep-alive HTTP/1.1 connection issuing GETs back to back; returns errors.

    A minimal client (no HTTP library) so the load generator costs little CPU
    next to the gateway on the same machine.
    """
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n"
    data = request.encode()
    errors = 0
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(data)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if head[9:12] == b"200":
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
            if think:
                await asyncio.sleep(think)
    finally:
        writer.close()
    return errors


async def _load(url: str, clients: int, duration: float,
                think: float = 0.0) -> tuple[list[float], int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[float] = []
    deadline = time.perf_counter() + duration
    errors = await asyncio.gather(*(
        _client(parts.hostname or "127.0.0.1", parts.port or 80, path, deadline, latencies,
                think)
        for _ in range(clients)))
    return latencies, sum(errors)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx
    import psutil

    from gateway.rigs.broker import PrivateBroker

    root = Path(tempfile.mkdtemp(prefix="learnae-bench-api-"))
    prefix = "benchapi"
    with PrivateBroker(root / "broker") as broker:
        config = root / "gateway.toml"
        config.write_text(
            f'[gateway]\nid = "bench"\ndata_dir = "{root / "data"}"\n'
            f'[mqtt]\nport = {broker.port}\ntopic_prefix = "{prefix}"\n'
            '[training]\nenabled = false\n[api]\nport = 0\n'
        )
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(config),
             "--log-level", "WARNING"],
            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        url = None
        assert gateway.stderr is not None
        for line in gateway.stderr:
            match = re.search(r"ready \(.*; api (\S+)\)", line)
            if match:
                url = match.group(1)
                break
        if url is None:
            raise RuntimeError("the gateway did not start")
        threading.Thread(target=gateway.stderr.read, daemon=True).start()
        publisher: subprocess.Popen[str] | None = None
        try:
            warm = max(3.0, args.duration * 0.2)
            publisher = subprocess.Popen(
                [sys.executable, "-c", PUBLISHER, str(broker.port), prefix, str(args.devices),
                 str(args.rate), str(args.duration + warm + 2)],
                stdout=subprocess.PIPE, text=True)
            _say(f"gateway {url}, {args.devices} devices publishing {args.rate:.0f} readings/s;"
                 f" warming up {warm:.0f} s")
            time.sleep(warm)
            stored_before = _stored(httpx, url)
            _say(f"{args.clients} clients on {args.path} for {args.duration:.0f} s")
            proc = psutil.Process(gateway.pid)
            rss_peak = proc.memory_info().rss
            started = time.perf_counter()
            latencies, errors = asyncio.run(_load(url + args.path, args.clients, args.duration,
                                                  args.think_ms / 1000.0))
            elapsed = time.perf_counter() - started
            rss_peak = max(rss_peak, proc.memory_info().rss)
            stored_after = _stored(httpx, url)
            publisher.wait(args.duration + warm + 60)
        finally:
            if publisher is not None and publisher.poll() is None:
                publisher.kill()  # only after a failure: it ends by itself otherwise
                publisher.wait()
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(15)
    shutil.rmtree(root, ignore_errors=True)
    ms = [x * 1000 for x in latencies]
    p99 = _pct(ms, 0.99)
    return {
        "target": "api",
        "endpoint": args.path,
        "clients": args.clients,
        "think_ms": args.think_ms,
        "duration_s": round(elapsed, 2),
        "requests": len(ms),
        "errors": errors,
        "requests_per_s": round(len(ms) / elapsed, 1),
        "p50_ms": round(_pct(ms, 0.50), 2),
        "p90_ms": round(_pct(ms, 0.90), 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(max(ms), 2) if ms else None,
        "devices": args.devices,
        "ingest_offered_per_s": args.rate,
        "ingest_stored_per_s": round((stored_after - stored_before) / elapsed, 1),
        "gateway_rss_mb": round(rss_peak / 2**20, 1),
        "goal_p99_ms": GOAL_P99_MS,
        "goal_met": p99 < GOAL_P99_MS,
        # uvicorn's choice in the gateway process: httptools when installed, else h11
        "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _stored(httpx: Any, url: str) -> int:
    items = httpx.get(url + "/api/devices", params={"limit": 1000}, timeout=30).json()["items"]
    return sum(int(d["stored"]) for d in items)
