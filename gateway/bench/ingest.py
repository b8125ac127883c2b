"""``bench ingest``: the gateway's durable ingest against a subscriber that stores nothing.

One private Mosquitto; a publisher in its own process (so it does not share
the GIL with the subscriber being measured) sends N binary batches at QoS 1
(every channel float32, or with ``--scaled`` int16 counts at ``SCALES``).
Rounds alternate a raw paho subscriber (manual ack, acks each message at once,
stores nothing) and the real Ingestor (validate, group commit to SQLite in WAL
mode, ack after commit). Rate = messages / (time the last one was acked or
committed - time the publisher started sending); medians over the rounds. CPU time of this
process per message (the subscriber's cost; the publisher runs elsewhere) is reported too.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CHANNELS = ["temp", "hum", "pressure"]
SCALES = (-2, -2, -1)  # --scaled: hundredths of a degree and a percent, tenths of a hPa (int16)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batches", type=int, default=20000, help="messages per round")
    parser.add_argument("--batch-size", type=int, default=1, help="records per message")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each subscriber")
    parser.add_argument("--synchronous", choices=["NORMAL", "FULL"], default="NORMAL")
    parser.add_argument("--protocol", choices=["5", "3.1.1"], default="5")
    parser.add_argument("--mode", choices=["drain", "live"], default="drain",
                        help="drain: messages queued at the broker first (subscriber capacity);"
                        " live: publisher and subscriber at once (bounded by the publisher)")
    parser.add_argument("--scaled", action="store_true",
                        help=f"send temp/hum/pressure as int16 at scales {SCALES}"
                        " instead of float32")


def _payloads(n: int, size: int, scaled: bool = False) -> list[bytes]:
    from shared.codec import Batch, encode_binary

    out = []
    for k in range(n):
        values = [[20.0 + (i % 10) * 0.1, 40.0 + (k % 7), 1013.0] for i in range(size)]
        out.append(encode_binary(Batch(1, k * size, 1_700_000_000 + k * size, CHANNELS, values,
                                       period_ms=1000), SCALES if scaled else None))
    return out


def _publish(port: int, topic: str, n: int, size: int, scaled: bool = False) -> None:
    """Publisher process: connect, report the start time, send everything at QoS 1."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    payloads = _payloads(n, size, scaled)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{secrets.token_hex(3)}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    print(f"start {time.time()!r}", flush=True)
    infos = [client.publish(topic, p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(120)
    print(f"done {time.time()!r}", flush=True)
    client.loop_stop()
    client.disconnect()


class _RawSubscriber:
    """Stores nothing; acks every QoS 1 message as soon as it arrives (manual_ack)."""

    def __init__(self, port: int, prefix: str, protocol: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.count = 0
        self.last = 0.0
        self.ready = threading.Event()
        v5 = protocol == "5"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{prefix}",
                                  protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                                  clean_session=None if v5 else False, manual_ack=True)
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(f"{prefix}/+/data", qos=1)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = self._message
        props = None
        if v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            props.ReceiveMaximum = 1000
        clean = False if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY
        self.client.connect("127.0.0.1", port, clean_start=clean, properties=props)
        self.client.loop_start()
        self.ready.wait(10)

    def _message(self, client: Any, userdata: Any, msg: Any) -> None:
        client.ack(msg.mid, msg.qos)
        self.count += 1
        self.last = time.time()

    def done(self, n: int) -> float | None:
        return self.last if self.count >= n else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class _GatewaySubscriber:
    def __init__(self, port: int, prefix: str, protocol: str, synchronous: str,
                 directory: Path) -> None:
        from prometheus_client import CollectorRegistry

        from gateway.config import config_from_dict
        from gateway.ingest import Ingestor

        config = config_from_dict({
            "gateway": {"id": "bench", "data_dir": str(directory)},
            "mqtt": {"port": port, "topic_prefix": prefix, "protocol": protocol,
                     "client_id": f"gw-{prefix}"},
            "store": {"synchronous": synchronous},
        }, env={})
        self.ingestor = Ingestor(config, config.db_path, registry=CollectorRegistry())
        self.ingestor.start()

    def done(self, n: int) -> float | None:
        writer = self.ingestor._writer
        assert writer is not None
        return writer.last_commit_at if writer.totals.get("messages", 0) >= n else None

    def close(self) -> None:
        self.ingestor.stop()


def _subscriber(kind: str, port: int, prefix: str, args: argparse.Namespace,
                directory: Path) -> Any:
    if kind == "raw":
        return _RawSubscriber(port, prefix, args.protocol)
    return _GatewaySubscriber(port, prefix, args.protocol, args.synchronous, directory / prefix)


def _round(kind: str, port: int, args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    """One measurement. ``drain``: the subscriber's session exists but it is offline while
    the publisher sends everything; the clock starts when it connects and stops when the
    last message is acked (raw) or committed (gateway): subscriber capacity, not
    publisher speed. ``live``: both run at once; the clock starts with the publisher."""
    prefix = "b" + secrets.token_hex(4)
    sub: Any = None
    if args.mode == "drain":
        _subscriber(kind, port, prefix, args, directory).close()  # creates the session
    else:
        sub = _subscriber(kind, port, prefix, args, directory)
    # a plain subprocess, not multiprocessing: spawn would re-run the CLI's __main__
    code = (f"from gateway.bench.ingest import _publish; _publish({port}, "
            f"{prefix + '/dev1/data'!r}, {args.batches}, {args.batch_size}, {args.scaled})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("start "):
            raise RuntimeError(f"the publisher process did not start: {line!r}")
        t0 = float(line.split()[1])
        if args.mode == "drain":
            line = proc.stdout.readline()
            if not line.startswith("done "):
                raise RuntimeError(f"the publisher process failed: {line!r}")
            t0 = time.time()
            sub = _subscriber(kind, port, prefix, args, directory)
        cpu0 = time.process_time()
        deadline = time.monotonic() + 300
        while (end := sub.done(args.batches)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} subscriber got only part of {args.batches} messages")
            time.sleep(0.002)
        cpu = time.process_time() - cpu0
        proc.wait(60)
        result: dict[str, Any] = {"kind": kind, "seconds": end - t0,
                                  "msgs_per_s": args.batches / (end - t0),
                                  "cpu_us_per_msg": cpu / args.batches * 1e6}
        if kind == "gateway":
            stats = sub.ingestor.stats()
            result.update(p99_commit_latency_ms=stats["p99_commit_latency_ms"],
                          p50_commit_latency_ms=stats["p50_commit_latency_ms"],
                          stored=stats["stored"], commits=stats["commits"])
            if stats["stored"] != args.batches * args.batch_size:
                raise RuntimeError(f"gateway stored {stats['stored']} of "
                                   f"{args.batches * args.batch_size} readings")
        return result
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if sub is not None:
            sub.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    from gateway.rigs.broker import PrivateBroker

    directory = Path(tempfile.mkdtemp(prefix="learnae-bench-ingest-"))
    rounds: list[dict[str, Any]] = []
    try:
        with PrivateBroker(directory / "broker") as broker:
            for r in range(args.rounds):
                for kind in ("raw", "gateway"):
                    res = _round(kind, broker.port, args, directory)
                    print(f"round {r + 1} {kind}: {res['msgs_per_s']:.0f} msg/s",
                          file=sys.stderr)
                    rounds.append(res)
    finally:
        shutil.rmtree(directory, ignore_errors=True)  # one database per gateway round
    raw = statistics.median(x["msgs_per_s"] for x in rounds if x["kind"] == "raw")
    gw_rounds = [x for x in rounds if x["kind"] == "gateway"]
    gw = statistics.median(x["msgs_per_s"] for x in gw_rounds)
    return {
        "batch_size": args.batch_size,
        "batches": args.batches,
        "rounds": args.rounds,
        "synchronous": args.synchronous,
        "mode": args.mode,
        "scaled": args.scaled,
        "payload_bytes": len(_payloads(1, args.batch_size, args.scaled)[0]),
        "raw_msgs_per_s": round(raw, 1),
        "gateway_msgs_per_s": round(gw, 1),
        "ratio": round(gw / raw, 3),
        "durable_readings_per_s": round(gw * args.batch_size, 1),
        "p99_commit_latency_ms": round(statistics.median(
            x["p99_commit_latency_ms"] for x in gw_rounds), 2),
        "raw_cpu_us_per_msg": round(statistics.median(
            x["cpu_us_per_msg"] for x in rounds if x["kind"] == "raw"), 1),
        "gateway_cpu_us_per_msg": round(statistics.median(
            x["cpu_us_per_msg"] for x in gw_rounds), 1),
        "p50_commit_latency_ms": round(statistics.median(
            x["p50_commit_latency_ms"] for x in gw_rounds), 2),
        "per_round": [{k: (round(v, 1) if isinstance(v, float) else v) for k, v in x.items()}
                      for x in rounds],
    }
