"""How the service runs as a process: its parts' lifecycle, periodic threads, the training
worker process, memory and systemd's notifications."""

from gateway.runtime.parts import Part, PeriodicPart

__all__ = ["Part", "PeriodicPart"]
