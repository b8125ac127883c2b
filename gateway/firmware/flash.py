"""Copying a firmware build, its board file and a device config to a board with mpremote."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from gateway.errors import FirmwareError


def mpremote_commands(port: str, build_dir: Path, board_file: Path, config_file: Path
                      ) -> list[list[str]]:
    """The mpremote invocations that install one board, in order.

    The device's OTA key (``<config>.ota.key``, from ``device add``) and the
    broker's CA (``<config>.ca.der``, for ``mqtt.tls``) go along when they sit
    beside the config.
    """
    base = ["mpremote", "connect", port]
    cmds = [[*base, "mkdir", ":shared"]]
    files = sorted(p for p in build_dir.iterdir() if p.is_file())
    cmds.append([*base, "cp", *map(str, files), ":"])
    shared = sorted((build_dir / "shared").iterdir())
    cmds.append([*base, "cp", *map(str, shared), ":shared/"])
    cmds.append([*base, "cp", str(board_file), ":board.json"])
    cmds.append([*base, "cp", str(config_file), ":config.json"])
    ota_key = config_file.with_name(config_file.stem + ".ota.key")
    if ota_key.exists():
        cmds.append([*base, "cp", str(ota_key), ":ota.key"])
    ca = config_file.with_name(config_file.stem + ".ca.der")
    if ca.exists():
        cmds.append([*base, "cp", str(ca), ":ca.der"])
    cmds.append([*base, "reset"])
    return cmds


def run_mpremote(commands: list[list[str]], *, dry_run: bool = False,
                 echo: Callable[[str], None] = print) -> None:
    """Run each command (echoed first); a failure other than an existing folder raises."""
    tool = shutil.which("mpremote") or str(Path(sys.executable).parent / "mpremote")
    for cmd in commands:
        echo(shlex.join(cmd))
        if dry_run:
            continue
        done = subprocess.run([tool, *cmd[1:]])
        if done.returncode and cmd[3] != "mkdir":  # the folder may exist already
            raise FirmwareError(f"{shlex.join(cmd)} failed with code {done.returncode}")
