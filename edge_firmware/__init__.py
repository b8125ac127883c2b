"""The sensor agent (MicroPython). This file only lets the gateway locate the sources."""
