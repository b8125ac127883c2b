# The hardware watchdog, started once: machine.WDT(timeout=watchdog_ms) where
# the board has one, clamped to the board file's wdt_max_ms; the agent feeds it
# every loop. Loaded for the start only: at boot in always_on mode (startup.py,
# while the heap is still empty), or when a config switches to always_on.
import sys

import machine


def start(conf, board):
    """(the WDT or None, an error message or None)."""
    wdt = err = None
    ms = conf["watchdog_ms"]
    if ms and hasattr(machine, "WDT"):
        ms = min(ms, board.get("wdt_max_ms", ms))
        try:
            wdt = machine.WDT(timeout=ms)
        except (ValueError, OSError) as exc:
            err = "watchdog: %s" % (exc,)
    sys.modules.pop("machine", None)  # the host's stand-in module (a board's is built in)
    return wdt, err
