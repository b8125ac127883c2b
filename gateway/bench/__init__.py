"""Benchmarks behind ``learnae-gateway bench``; each prints one JSON object."""

__all__: list[str] = []  # modules only: import what you need from each
