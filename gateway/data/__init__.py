"""Data bundled with the gateway (see README.md in this folder for sources and licences)."""
