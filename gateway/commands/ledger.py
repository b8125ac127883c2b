"""``ledger deploy|address``: set up the iota-evm ledger.

``deploy --rpc-url URL --key-file F`` deploys the Announcements contract with a
funded EVM key and prints its address (put it in ``[ledger] contract``).
``address --config FILE`` prints the gateway's own account (EVM, or IOTA layer 1
with ``kind = "iota"``; created in data_dir on first use), the one to fund so it
can pay for announcements.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.commands.output import print_result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    deploy = sub.add_parser("deploy", help="deploy the Announcements contract")
    deploy.add_argument("--rpc-url", required=True, help="EVM JSON-RPC endpoint")
    deploy.add_argument("--chain-id", type=int, default=8822, help="expected chain id (8822)")
    deploy.add_argument(
        "--key-file", required=True, type=Path, help="0600 file with the funded 0x private key"
    )
    deploy.add_argument("--max-fee", type=float, default=100.0, help="fee ceiling, gwei per gas")
    deploy.add_argument("--json", action="store_true", help="print one JSON object")
    address = sub.add_parser("address", help="the gateway's EVM account (to fund)")
    address.add_argument("--config", required=True, help="gateway TOML config file")
    address.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, load_config
    from gateway.errors import LedgerError
    from gateway.peer.ledgers import require_ledger_extra

    try:
        require_ledger_extra(f"ledger {args.action}")
        from gateway.peer.ledgers import evmkey

        if args.action == "deploy":
            from gateway.peer.ledgers.evm import deploy

            if not args.max_fee > 0:
                print(f"--max-fee {args.max_fee}: must be > 0", file=sys.stderr)
                return 2
            account = evmkey.load_key(args.key_file)
            contract, receipt = deploy(
                args.rpc_url,
                account,
                chain_id=args.chain_id,
                max_fee_wei=int(args.max_fee * 10**9),
            )
            result: dict[str, object] = {
                "contract": contract,
                "chain_id": args.chain_id,
                "tx": receipt.tx,
                "block": receipt.position[0] if receipt.position else None,
                "gas_used": receipt.gas_used,
                "fee_wei": receipt.fee_wei,
            }
        else:
            config = load_config(args.config)
            if config.ledger.kind == "iota":  # a layer-1 (ed25519) account
                from gateway.peer.ledgers import iota

                seed = evmkey.load_or_create(
                    config.gateway.data_dir, config.ledger.key_file, name=iota.KEY_FILE
                ).key
                result = {"address": iota.sender_of(bytes(seed)), "kind": "iota"}
            else:
                account = evmkey.load_or_create(config.gateway.data_dir, config.ledger.key_file)
                result = {"address": account.address, "kind": "iota-evm"}
    except (ConfigError, LedgerError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_result(result, args.json)
    return 0
