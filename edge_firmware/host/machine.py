# Host stand-in for the board's ``machine`` module (the unix port has no
# WDT/deepsleep/reset_cause). Only what the firmware uses is here; Pin, I2C
# and ADC are absent, so a hardware driver fails to start (ImportError) and is
# reported in status, exactly as an absent sensor is on a board.
#
# This is the plain host; the board profiles (rp2, esp32) are board/machine.py.
# Deep sleep on a host is a process exit with code 3; the runner
# (``learnae-gateway sim``) starts the firmware again with LEARNAE_WAKE=deepsleep
# and the same working directory, so the state file carries over, as flash does.
import os
import sys

PWRON_RESET = 1
DEEPSLEEP_RESET = 4


def reset_cause():
    return DEEPSLEEP_RESET if os.getenv("LEARNAE_WAKE") == "deepsleep" else PWRON_RESET


def deepsleep(ms=0):
    sys.stdout.write("deepsleep %d\n" % ms)
    sys.exit(3)  # EXIT_DEEPSLEEP of gateway/commands/sim.py


def reset():
    sys.exit(4)  # EXIT_RESET of gateway/commands/sim.py


# machine.WDT: in a module of its own (see there), loaded and dropped from
# sys.modules here, so that a running WDT keeps only that module alive
import hostwdt  # noqa: E402

WDT = hostwdt.WDT
sys.modules.pop("hostwdt", None)
