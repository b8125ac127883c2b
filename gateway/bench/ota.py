"""``bench ota``: ``--boards`` boards under the MicroPython unix port updated at once
through one private Mosquitto.

Each board runs the firmware (from ``.mpy`` modules, heap capped at
``--heap``) in a state directory of its own with its own key; one OtaPush
sends them the same bundle (each signed for its device) and follows each to
its confirmed new version. Reported: ``seconds`` from the first command to
the last confirmation, ``wire_bytes_per_firmware_byte`` (MQTT PUBLISH packets
on the boards' links, chunks and command in, acknowledgements out, with their
PUBACKs, over the firmware bytes delivered), and ``board_heap_peak_bytes``
(the largest live heap, after a collection at each acknowledgement, that a
receiving board reported). The boards run the device config's defaults
(4 KB receive buffer, 8 RAM batch slots), which need more than 48 KB once a
version is on trial: hence 64 KB by default (docs/firmware.md, OTA).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--boards", type=int, default=10)
    parser.add_argument("--heap", default="64k", help="each board's -X heapsize")
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=240.0)


def _wait_online(statuses: dict[str, Any], devices: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(statuses.get(d, {}).get("state") == "online" for d in devices):
            return
        time.sleep(0.1)
    missing = [d for d in devices if statuses.get(d, {}).get("state") != "online"]
    raise RuntimeError(f"boards never came online: {missing}")


def run(args: argparse.Namespace) -> dict:
    import paho.mqtt.client as mqtt

    from gateway.firmware.build import build_firmware
    from gateway.ota import KeyStore, OtaPush, build_bundle
    from gateway.rigs.board import Board
    from gateway.rigs.broker import PrivateBroker
    from gateway.system.devices import make_device_config

    if args.boards < 1:
        raise ValueError(f"--boards must be at least 1, got {args.boards}")
    work = Path(tempfile.mkdtemp(prefix="learnae-bench-ota-"))
    build = build_firmware(work / "build", host=True)
    bundle = build_bundle(work / "bundle")
    keys = KeyStore(work / "keys")
    devices = [f"b{i:02d}" for i in range(args.boards)]
    boards: list[Board] = []
    statuses: dict[str, Any] = {}
    with PrivateBroker(work / "broker") as broker:
        watch = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-ota-watch")

        def on_message(c: Any, u: Any, msg: Any) -> None:
            if msg.payload:
                statuses[msg.topic.split("/")[1]] = json.loads(msg.payload)

        watch.on_message = on_message
        watch.connect("127.0.0.1", broker.port)
        watch.subscribe("bench/+/status", qos=1)
        watch.loop_start()
        try:
            for d in devices:
                state = work / d
                state.mkdir()
                doc = make_device_config(d, mqtt_host="127.0.0.1", mqtt_port=broker.port,
                                         topic_prefix="bench", period_ms=100, batch_size=10,
                                         sensors=[{"type": "simulated"}])
                doc["mqtt"].update({"timeout_ms": 2000, "backoff_max_ms": 1000})
                (state / "config.json").write_text(json.dumps(doc))
                (state / "ota.key").write_text(keys.create(d).hex())
                boards.append(Board(state, heap=args.heap, build=build).start())
            _wait_online(statuses, devices, 60)
            print(f"bench ota: {args.boards} boards online; pushing {bundle.version} "
                  f"({bundle.firmware_bytes} bytes in {len(bundle.files)} files)",
                  file=sys.stderr)
            push = OtaPush(host="127.0.0.1", port=broker.port, prefix="bench", chunk=args.chunk,
                           window=args.window, confirm_s=60)
            start = time.perf_counter()
            out = push.push({d: (bundle, keys.get(d)) for d in devices}, timeout=args.timeout)
            seconds = time.perf_counter() - start
        finally:
            for b in boards:
                b.stop()
            watch.loop_stop()
            watch.disconnect()
    updated = [o for o in out.values() if o.state == "updated"]
    wire = sum(o.wire_bytes for o in updated)
    failed = {d: o.as_dict() for d, o in out.items() if o.state != "updated"}
    if failed:
        print(f"bench ota: not updated: {failed}", file=sys.stderr)
    return {"boards": args.boards, "updated": len(updated), "seconds": round(seconds, 2),
            "wire_bytes_per_firmware_byte": round(
                wire / max(1, bundle.firmware_bytes * len(updated)), 4),
            "board_heap_peak_bytes": max((o.board_heap_peak for o in out.values()), default=0),
            "firmware_bytes": bundle.firmware_bytes, "files": len(bundle.files),
            "chunk": args.chunk, "window": args.window, "heap": args.heap,
            "resends": sum(o.resends for o in out.values()),
            "per_board_seconds_max": max((o.as_dict()["seconds"] or 0) for o in out.values())}
