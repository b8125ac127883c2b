"""``bench firmware``: the real firmware under the MicroPython unix port, through Mosquitto.

Streams N readings from precompiled (.mpy) modules with a capped heap to a
private broker; a paho subscriber counts and decodes what arrives. The device
replays ``--channels`` columns of the bundled AirQuality year (temperature,
relative and absolute humidity, ...) in batches of ``--batch-size``; the
result states both, with the wire cost as ``payload_bytes_per_reading`` (the
binary batch payload over the readings, a reading being one record of all
channels), ``payload_bytes_per_value`` (per channel value) and, with MQTT's
PUBLISH framing (fixed header, topic, packet id) added,
``mqtt_bytes_per_reading``. Channels carry the default resolution of their names
(shared.sensor_config.DEFAULT_RESOLUTION: T -2, RH -2, AH -4, ...), so their values
go out as int16 counts; ``float32_channel_batches`` counts the channel-batches that
fell back to float32 because a value did not fit int16. The protocol goal is at most
``GOAL_BYTES_PER_READING`` payload bytes per reading for 20 records x 3 channels.
A second, short run in deep_sleep mode measures the
radio-on time per batch (connect, subscribe, publish, status, disconnect) that
docs/hardware power budgets use.
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

COLUMNS = ("T", "RH", "AH", "CO(GT)", "NOx(GT)", "NO2(GT)")
GOAL_BYTES_PER_READING = 8.0


def _float32_channels(payload: bytes) -> int:
    """Channels of a binary v1 batch sent as float32 (value code 0 in the descriptor byte)."""
    if not payload or payload[0] != 1:
        return 0
    off = 20 if payload[1] & 1 else 16
    n = 0
    for _ in range(payload[2]):
        n += payload[off] >> 4 == 0
        off += 2 + (payload[off] & 0x0F)
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--readings", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--channels", type=int, default=3, choices=range(1, len(COLUMNS) + 1),
                        help="AirQuality columns replayed: T, RH, AH, CO(GT), NOx(GT), NO2(GT)")
    parser.add_argument("--heap", default="32k")
    parser.add_argument("--ram-batches", type=int, default=2,
                        help="RAM batch slots (the flash spool holds the rest)")
    parser.add_argument("--source", action="store_true", help="run .py sources, not .mpy")
    parser.add_argument("--sleep-batches", type=int, default=5,
                        help="batches in the deep-sleep radio-time run (0 = skip)")
    parser.add_argument("--margin-readings", type=int, default=400,
                        help="readings per run of the heap-margin search (0 = skip)")


def _collect(port: int, prefix: str) -> tuple[Any, dict[str, Any]]:
    import paho.mqtt.client as mqtt

    from shared.codec import decode_payload

    seen: dict[str, Any] = {"keys": [], "bytes": 0, "framed": 0, "values": 0, "status": [],
                            "float32": 0, "lock": threading.Lock()}

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        with seen["lock"]:
            if msg.topic.endswith("/data"):
                batch = decode_payload(msg.payload)
                seen["bytes"] += len(msg.payload)
                seen["framed"] += _publish_size(msg.topic, len(msg.payload))
                seen["values"] += len(batch.values) * len(batch.channels)
                seen["float32"] += _float32_channels(msg.payload)
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


def _publish_size(topic: str, payload: int) -> int:
    """Bytes of a QoS 1 PUBLISH packet on the wire: fixed header, topic, packet id, payload."""
    remaining = 2 + len(topic.encode()) + 2 + payload
    length_bytes = 1 if remaining < 128 else 2 if remaining < 16384 else 3
    return 1 + length_bytes + remaining


def _wait(seen: dict[str, Any], n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(set(seen["keys"])) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def run(args: argparse.Namespace) -> dict:
    from gateway.firmware.build import build_firmware
    from gateway.rigs.board import extract_airquality, run_firmware
    from gateway.rigs.broker import PrivateBroker
    from gateway.system.devices import make_device_config

    work = Path(tempfile.mkdtemp(prefix="learnae-bench-fw-"))
    build = None if args.source else build_firmware(work / "build", host=True)
    with PrivateBroker(work / "broker") as broker:
        client, seen = _collect(broker.port, "bench")
        state = work / "dev"
        state.mkdir()
        columns = list(COLUMNS[:args.channels])
        from shared.sensor_config import column_channel, default_resolution

        resolution = default_resolution([column_channel(c) for c in columns])
        extract_airquality(state / "replay.csv", columns)
        doc = make_device_config("bench1", mqtt_host="127.0.0.1", mqtt_port=broker.port,
                                 topic_prefix="bench", period_ms=0, batch_size=args.batch_size,
                                 sensors=[{"type": "replay", "columns": columns}])
        doc["mqtt"]["max_incoming"] = 1024
        doc["buffer"] = {"ram_batches": args.ram_batches}
        (state / "config.json").write_text(json.dumps(doc))
        print(f"bench firmware: {args.readings} readings of {args.channels} channels in "
              f"batches of {args.batch_size}, heap {args.heap}", file=sys.stderr)
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
        n = max(1, len(keys))
        result: dict[str, Any] = {
            "readings": args.readings,
            "received": len(set(keys)),
            "lost": args.readings - len(set(keys)),
            "duplicates": len(keys) - len(set(keys)),
            "heap_bytes": summary["heap_total"],
            "heap_peak_bytes": summary["heap_peak"],
            "batch_size": args.batch_size,
            "channels": args.channels,
            "payload_bytes_per_reading": round(seen["bytes"] / n, 2),
            "payload_bytes_per_value": round(seen["bytes"] / max(1, seen["values"]), 2),
            "mqtt_bytes_per_reading": round(seen["framed"] / n, 2),
            "goal_bytes_per_reading": GOAL_BYTES_PER_READING,
            "resolution": resolution,
            "float32_channel_batches": seen["float32"],
            "publish_per_s": round(args.readings / elapsed, 1),
            "batches_per_s": round(args.readings / args.batch_size / elapsed, 1),
            "mpy": build is not None,
            "ram_batches": args.ram_batches,
        }
        if args.sleep_batches:
            result.update(_deep_sleep_radio(broker.port, work, build, args))
        if args.margin_readings:
            result.update(_heap_margin(broker.port, work, build, args, doc))
        client.loop_stop()
        client.disconnect()
    return result


def _deep_sleep_radio(port: int, work: Path, build: Path | None,
                      args: argparse.Namespace) -> dict[str, Any]:
    from gateway.rigs.board import run_firmware
    from gateway.system.devices import make_device_config

    client, seen = _collect(port, "sleep")
    state = work / "sleeper"
    state.mkdir()
    doc = make_device_config("sleep1", mqtt_host="127.0.0.1", mqtt_port=port,
                             topic_prefix="sleep", period_ms=1, batch_size=args.batch_size,
                             power_mode="deep_sleep", sensors=[{"type": "simulated"}])
    doc["mqtt"]["max_incoming"] = 1024
    doc["buffer"] = {"ram_batches": args.ram_batches}
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


def _kib(heap: str) -> int:
    if not heap.endswith("k") or not heap[:-1].isdigit():
        raise ValueError(f"--heap must be a whole number of KB such as 32k, got {heap!r}")
    return int(heap[:-1])


def _heap_margin(port: int, work: Path, build: Path | None, args: argparse.Namespace,
                 doc: dict[str, Any]) -> dict[str, Any]:
    """The heap margin: how far below ``--heap`` the same config still runs.

    Short runs (both boot stages, ``--margin-readings`` readings) at the cap
    minus 1, 2, ... KB until one fails; the margin is the cap minus the
    smallest heap that completed. This is the figure that matters on a board:
    the failures are fragmentation at the moments a rare module loads, which
    the lowest free heap (``heap_peak_bytes``) does not show.
    """
    from gateway.rigs.board import run_firmware

    cap = _kib(args.heap)
    smallest = None
    for kib in range(cap, max(cap - 16, 8) - 1, -1):
        state = work / f"margin{kib}"
        state.mkdir()
        (state / "config.json").write_text(json.dumps(doc))
        if (work / "dev" / "replay.csv").exists():
            (state / "replay.csv").write_bytes((work / "dev" / "replay.csv").read_bytes())
        with (state / "stdout.txt").open("w") as handle:
            code = run_firmware(state, count=args.margin_readings, heap=f"{kib}k",
                                build_dir=build, stdout=handle, stderr=handle)
        print(f"bench firmware: margin search {kib}k -> exit {code}", file=sys.stderr)
        if code:
            break
        smallest = kib
    return {"heap_smallest_working_bytes": None if smallest is None else smallest * 1024,
            "heap_margin_bytes": None if smallest is None else (cap - smallest) * 1024}
