"""``<board>.json`` pin maps (see hardware/README.md); the directory is ``BOARDS_DIR``."""

from pathlib import Path

BOARDS_DIR = Path(__file__).resolve().parent

__all__ = ["BOARDS_DIR"]
