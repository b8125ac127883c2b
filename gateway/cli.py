"""``learnae-gateway``: one subcommand per module, imported only when used.

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``.
Commands that take ``--json`` print one JSON object as the last line of stdout;
progress goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
# one entry a command, in the order --help lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("gateway.commands.run", "run the gateway service"),
    "status": ("gateway.commands.status", "summarise what the store holds"),
    "demo": ("gateway.commands.demo", "broker, simulated sensors and gateways on this machine"),
    "sim": ("gateway.commands.sim", "run the firmware under the MicroPython unix port"),
    "device": ("gateway.commands.device", "manage device credentials and configs"),
    "flash": ("gateway.commands.flash", "copy the firmware to a board with mpremote"),
    "bench": ("gateway.commands.bench", "measure firmware, ingest, training or API"),
    "experiment": ("gateway.commands.experiment", "run the LEARNAE resilience study"),
    "ledger": ("gateway.commands.ledger", "deploy the iota-evm contract, show the EVM account"),
    "install": ("gateway.commands.install", "set this machine up to run the gateway service"),
    "uninstall": ("gateway.commands.uninstall", "undo install (data kept unless --purge)"),
    "ota": ("gateway.commands.ota", "update boards over the air"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="learnae-gateway", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text)
        if name == wanted:  # import only the command being run
            importlib.import_module(module).add_arguments(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
