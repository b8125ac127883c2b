"""LEARNAE edge gateway: ingest, store, learning, peer and API on one Raspberry Pi.

The packages and how they depend on each other: docs/architecture.md.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("learnae-edge")  # written in one place: pyproject.toml
except _metadata.PackageNotFoundError:  # a checkout run without installing it (pip install -e .)
    __version__ = "0+unknown"

__all__ = ["__version__"]
