"""``learnae-gateway device add ID``: credentials, broker ACL and the config to flash.

Writes ``<ID>.json`` (or ``--out``) with fresh MQTT credentials and adds the
user to Mosquitto's password and ACL files (default under
``<data_dir>/mosquitto/``), so the device can write only its data/status
topics and read only its config/model/cmd topics. Reload Mosquitto
(SIGHUP) for the change to apply. The device is also registered in the
gateway's store (created if needed), so ``ingest.unknown_devices = "reject"``
accepts its readings; a running gateway sees it at its next message.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gateway.config import GatewayConfig, load_config
from gateway.store import Store, StoreError
from gateway.system.devices import add_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="create a device: credentials, ACL, config file")
    add.add_argument("device_id", metavar="ID")
    add.add_argument("--config", type=Path, default=None, help="gateway TOML config")
    add.add_argument("--out", type=Path, default=None, help="device config file to write")
    add.add_argument("--password-file", type=Path, default=None)
    add.add_argument("--acl-file", type=Path, default=None)
    add.add_argument("--board", default=None, help="board file name, e.g. esp32-devkitc")
    add.add_argument("--sensors", default=None, help="JSON list of sensor specs")
    add.add_argument("--period-ms", type=int, default=1000)
    add.add_argument("--batch-size", type=int, default=20)
    add.add_argument("--power-mode", default="always_on", choices=["always_on", "deep_sleep"])
    add.add_argument("--wifi-ssid", default=None)
    add.add_argument("--wifi-password", default=os.environ.get("LEARNAE_WIFI_PASSWORD"))


def register(config: GatewayConfig, device_id: str) -> None:
    """Add the device to the gateway's registry (creating the data dir and store if needed)."""
    # the default busy timeout (5 s): a running gateway holds the write lock only per commit
    with Store.open(config.db_path, synchronous=config.store.synchronous) as store:
        store.register_device(device_id)


def run(args: argparse.Namespace) -> int:
    try:
        gw = load_config(args.config) if args.config else GatewayConfig()
        mosq = gw.gateway.data_dir / "mosquitto"
        extra: dict = {}
        if args.board:
            extra["board"] = args.board
        if args.wifi_ssid:
            extra["wifi"] = {"ssid": args.wifi_ssid, "password": args.wifi_password}
        doc = add_device(
            args.device_id, mqtt_host=gw.mqtt.host, mqtt_port=gw.mqtt.port,
            topic_prefix=gw.mqtt.topic_prefix,
            password_file=args.password_file or mosq / "passwd",
            acl_file=args.acl_file or mosq / "acl",
            sensors=json.loads(args.sensors) if args.sensors else None,
            period_ms=args.period_ms, batch_size=args.batch_size,
            power_mode=args.power_mode, **extra)
        register(gw, args.device_id)
        from gateway.ota import KeyStore, keys_dir

        ota_key = KeyStore(keys_dir(gw)).create(args.device_id)
    except (OSError, ValueError, StoreError) as exc:
        print(f"device add: {exc}", file=sys.stderr)
        return 2
    out = args.out or Path(f"{args.device_id}.json")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds a password
    with os.fdopen(fd, "w") as handle:
        json.dump(doc, handle, indent=2)
    # the board's copy of its OTA key (`flash` installs it as /ota.key)
    key_out = out.with_name(out.stem + ".ota.key")
    fd = os.open(key_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(ota_key.hex())
    print(f"device {args.device_id}: config written to {out}, OTA key to {key_out}",
          file=sys.stderr)
    print(str(out))
    return 0
