# Board profiles' ``machine`` (rp2, esp32): on the module path before
# ../machine.py (the plain host's) when LEARNAE_BOARD names a board
# (gateway/micropython_host.py; docs/firmware.md, Board profiles). It mirrors
# the port's surface as its stubs and sources define it:
#   "rp2": the names of ports/rp2/modmachine.c (PWRON_RESET, WDT_RESET, no
#     DEEPSLEEP_RESET), WDT timeouts capped at 8388 ms, machine.reset() and a
#     deep sleep both end in a watchdog reboot (reset cause WDT_RESET);
#   "esp32": the ESP32 port's names and reset causes, WDT timeouts of 1 s and
#     more, deep sleep a wake with DEEPSLEEP_RESET.
# The watchdog bites: a WDT not fed within its timeout prints "watchdog reset"
# and ends the process with SIGUSR1 (the runner's watchdog reset). Pin, I2C and
# ADC are absent, as on the plain host.
#
# Process exits stand for the board's resets; the runner (``learnae-gateway
# sim``) starts the firmware again in the same working directory (the flash)
# with LEARNAE_WAKE saying why: "deepsleep" (exit 3), "reset" (exit 4),
# "watchdog" (SIGUSR1).
import os
import sys

BOARD = os.getenv("LEARNAE_BOARD") or "rp2"
_WAKE = os.getenv("LEARNAE_WAKE")

PWRON_RESET = 1
WDT_RESET = 3
if BOARD != "rp2":
    DEEPSLEEP_RESET = 4
if BOARD == "esp32":
    HARD_RESET = 2
    SOFT_RESET = 5
    _WDT_MAX_MS = 0
else:
    _WDT_MAX_MS = 8388  # the RP2040's 24-bit microsecond counter


def reset_cause():
    if BOARD == "rp2":
        # watchdog_caused_reboot() is all the port reads: machine.reset() and
        # the reset that ends a deep sleep are watchdog reboots too
        return WDT_RESET if _WAKE in ("watchdog", "reset", "deepsleep") else PWRON_RESET
    if _WAKE == "deepsleep":
        return DEEPSLEEP_RESET
    if BOARD == "esp32":
        if _WAKE == "watchdog":
            return WDT_RESET
        if _WAKE == "reset":
            return SOFT_RESET
    return PWRON_RESET


def deepsleep(ms=0):
    sys.stdout.write("deepsleep %d\n" % ms)
    if BOARD == "rp2":
        # the rp2 port: a light sleep, then a reset (RAM lost, reset cause WDT_RESET)
        import time

        time.sleep_ms(ms)
        sys.exit(4)  # EXIT_RESET of gateway/commands/sim.py
    sys.exit(3)  # EXIT_DEEPSLEEP of gateway/commands/sim.py


def lightsleep(ms=0):
    import time

    time.sleep_ms(ms)


def reset():
    sys.exit(4)  # EXIT_RESET of gateway/commands/sim.py


def soft_reset():
    sys.exit(5)  # EXIT_REVALIDATED of gateway/commands/sim.py: start again


class RTC:
    """The real-time clock: ``datetime()`` reads it, ``datetime(tuple)`` sets it
    (the board profiles' ``time`` module counts from it)."""

    def datetime(self, dt=None):
        import time

        if dt is None:
            t = time.gmtime()
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        # (year, month, day, weekday, hours, minutes, seconds, subseconds)
        secs = time.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0))
        if hasattr(time, "set_clock"):
            time.set_clock(secs)
        return None


class WDT:
    """A watchdog that resets the process when it is not fed in time."""

    def __init__(self, id=0, timeout=5000):
        if _WDT_MAX_MS and timeout > _WDT_MAX_MS:
            raise ValueError("timeout exceeds %d" % _WDT_MAX_MS)
        if BOARD == "esp32" and timeout < 1000:  # "the minimum timeout is 1 second"
            raise ValueError("WDT timeout too short")
        import _thread
        import time

        self.timeout = timeout
        self._fed = time.ticks_ms()
        _thread.start_new_thread(self._watch, ())

    def feed(self):
        import time

        self._fed = time.ticks_ms()

    def _watch(self):
        import time

        while True:
            time.sleep_ms(20)
            late = time.ticks_diff(time.ticks_ms(), self._fed)
            if late > self.timeout:
                sys.stdout.write("watchdog reset: not fed for %d ms\n" % late)
                # no way to end the whole process from a thread but a signal:
                # the shell's parent is this interpreter
                os.system("kill -USR1 $PPID")
                time.sleep_ms(10000)
