"""The sensor boards' firmware as the gateway handles it: compiled for a board, flashed.

``build_firmware`` compiles ``edge_firmware/`` and ``shared/`` into ``.mpy``
modules; ``mpremote_commands`` and ``run_mpremote`` put a build on a board over
USB. Over-the-air updates build on the same compiler (``gateway.ota``).
"""

from gateway.firmware.build import (
    BOARDS_DIR,
    FIRMWARE_DIR,
    PROTOCOL_DIR,
    board_arch,
    build_firmware,
    load_board,
    mpy_cross,
)
from gateway.firmware.flash import mpremote_commands, run_mpremote

__all__ = [
    "BOARDS_DIR",
    "FIRMWARE_DIR",
    "PROTOCOL_DIR",
    "board_arch",
    "build_firmware",
    "load_board",
    "mpremote_commands",
    "mpy_cross",
    "run_mpremote",
]
