"""Real programs run privately on this machine for tests, the demo and benchmarks.

A Mosquitto on a free loopback port (``broker``), kubo daemons configured for loopback
and checked before they start (``kubo``), the MicroPython unix port (``micropython``)
running the real firmware as a board would (``board``), and free ports (``ports``).
Nothing in the service imports them.
"""

__all__: list[str] = []  # modules only: import what you need from each
