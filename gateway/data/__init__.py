"""Data bundled with the gateway (see README.md in this folder for sources and licences)."""

__all__: list[str] = []  # modules only: import what you need from each
