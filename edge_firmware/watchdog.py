# The hardware watchdog, started once: machine.WDT(timeout=watchdog_ms) where
# the board has one, clamped to the board file's wdt_max_ms; the agent feeds it
# every loop. Loaded for the start only: at boot in always_on mode (startup.py,
# while the heap is still empty), or when a config switches to always_on.
import sys

import machine


def timeout_ms(conf, board):
    """The timeout the watchdog runs with: watchdog_ms clamped to the board's maximum."""
    ms = conf["watchdog_ms"]
    return min(ms, board.get("wdt_max_ms", ms))


def start(conf, board):
    """(the WDT or None, an error message or None)."""
    wdt = err = None
    ms = timeout_ms(conf, board)
    if ms and hasattr(machine, "WDT"):
        try:
            wdt = machine.WDT(timeout=ms)
        except (ValueError, OSError) as exc:
            err = "watchdog: %s" % (exc,)
    sys.modules.pop("machine", None)  # the host's stand-in module (a board's is built in)
    return wdt, err


def arm(agent):
    """A config switched to always_on: start the watchdog now and have the MQTT
    client feed it in its waits (at boot, startup.py starts it)."""
    agent.wdt, err = start(agent.conf, agent.board)
    if err:
        agent.last_error = err
    c = agent.client  # (as mqttinit.setup does at boot)
    c.wdt = agent.wdt
    if c.wdt is not None:
        c.slice_ms = min(c.timeout_ms, max(timeout_ms(agent.conf, agent.board) // 4, 20))
