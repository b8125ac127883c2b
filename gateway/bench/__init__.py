"""Benchmarks behind ``learnae-gateway bench``; each prints one JSON object."""
