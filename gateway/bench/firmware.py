"""``bench firmware``: the real firmware under the MicroPython unix port, through Mosquitto.

Streams N readings from precompiled (.mpy) modules with a capped heap to a
private broker; a paho subscriber counts and decodes what arrives. A second,
short run in deep_sleep mode measures the radio-on time per batch (connect,
subscribe, publish, status, disconnect) that docs/hardware power budgets use.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--readings", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--heap", default="56k")
    parser.add_argument("--source", action="store_true", help="run .py sources, not .mpy")
    parser.add_argument("--sleep-batches", type=int, default=5,
                        help="batches in the deep-sleep radio-time run (0 = skip)")


def _collect(port: int, prefix: str) -> tuple[Any, dict[str, Any]]:
    import paho.mqtt.client as mqtt

    from shared.codec import decode_payload

    seen: dict[str, Any] = {"keys": [], "bytes": 0, "status": [], "lock": threading.Lock()}

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        with seen["lock"]:
            if msg.topic.endswith("/data"):
                batch = decode_payload(msg.payload)
                seen["bytes"] += len(msg.payload)
                seen["keys"].extend((batch.boot, batch.seq + i) for i in range(len(batch.values)))
            elif msg.topic.endswith("/status") and msg.payload:
                seen["status"].append(json.loads(msg.payload))

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{prefix}",
                         clean_session=False)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(f"{prefix}/#", qos=1)
    client.loop_start()
    time.sleep(0.3)
    return client, seen


def _wait(seen: dict[str, Any], n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(set(seen["keys"])) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def run(args: argparse.Namespace) -> dict:
    from gateway.broker import PrivateBroker
    from gateway.commands.flash import build_firmware
    from gateway.commands.sim import run_firmware
    from gateway.devices import make_device_config

    work = Path(tempfile.mkdtemp(prefix="learnae-bench-fw-"))
    build = None if args.source else build_firmware(work / "build", host=True)
    with PrivateBroker(work / "broker") as broker:
        client, seen = _collect(broker.port, "bench")
        state = work / "dev"
        state.mkdir()
        doc = make_device_config("bench1", mqtt_host="127.0.0.1", mqtt_port=broker.port,
                                 topic_prefix="bench", period_ms=0, batch_size=args.batch_size,
                                 sensors=[{"type": "simulated", "seed": 1}])
        doc["mqtt"]["max_incoming"] = 1024
        doc["buffer"] = {"ram_batches": 4}
        (state / "config.json").write_text(json.dumps(doc))
        print(f"bench firmware: {args.readings} readings, heap {args.heap}", file=sys.stderr)
        start = time.perf_counter()
        log = state / "stdout.txt"
        with log.open("w") as handle:
            code = run_firmware(state, count=args.readings, heap=args.heap, build_dir=build,
                                stdout=handle, stderr=handle)
        elapsed = time.perf_counter() - start
        if code:
            raise RuntimeError(f"firmware exited with {code}: {log.read_text()[-2000:]}")
        summary = json.loads(log.read_text().strip().splitlines()[-1])
        _wait(seen, args.readings)
        keys = list(seen["keys"])
        result: dict[str, Any] = {
            "readings": args.readings,
            "received": len(set(keys)),
            "lost": args.readings - len(set(keys)),
            "duplicates": len(keys) - len(set(keys)),
            "heap_bytes": summary["heap_total"],
            "heap_peak_bytes": summary["heap_peak"],
            "bytes_per_reading": round(seen["bytes"] / max(1, len(keys)), 2),
            "publish_per_s": round(args.readings / elapsed, 1),
            "batches_per_s": round(args.readings / args.batch_size / elapsed, 1),
            "mpy": build is not None,
            "batch_size": args.batch_size,
        }
        if args.sleep_batches:
            result.update(_deep_sleep_radio(broker.port, work, build, args))
        client.loop_stop()
        client.disconnect()
    return result


def _deep_sleep_radio(port: int, work: Path, build: Path | None,
                      args: argparse.Namespace) -> dict[str, Any]:
    from gateway.commands.sim import run_firmware
    from gateway.devices import make_device_config

    client, seen = _collect(port, "sleep")
    state = work / "sleeper"
    state.mkdir()
    doc = make_device_config("sleep1", mqtt_host="127.0.0.1", mqtt_port=port,
                             topic_prefix="sleep", period_ms=1, batch_size=args.batch_size,
                             power_mode="deep_sleep", sensors=[{"type": "simulated"}])
    doc["mqtt"]["max_incoming"] = 1024
    doc["buffer"] = {"ram_batches": 4}
    (state / "config.json").write_text(json.dumps(doc))
    n = args.sleep_batches * args.batch_size
    with (state / "stdout.txt").open("w") as handle:
        run_firmware(state, count=n, heap=args.heap, build_dir=build, stdout=handle,
                     stderr=handle)
    _wait(seen, n)
    time.sleep(0.3)
    client.loop_stop()
    client.disconnect()
    radio = [s["radio_ms"] for s in seen["status"]
             if s.get("state") == "online" and s.get("radio_batches")]
    return {"deep_sleep_batches": len(radio),
            "radio_ms_per_batch": round(sum(radio) / len(radio), 2) if radio else None,
            "deep_sleep_lost": n - len(set(seen["keys"]))}
