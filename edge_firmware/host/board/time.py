# Board profiles' ``time`` (rp2, esp32; see ../machine.py): the RTC starts at
# the port's power-on date, not at the host's clock: 2021-01-01 on rp2 (the
# RP2040's RTC as the port sets it at boot), 2000-01-01 on the ESP32. Only
# NTP (not on a host) or machine.RTC().datetime(...) sets it (set_clock).
# Everything else is the unix port's own time module.
import os

import utime as _t
from utime import *  # noqa: F403

_BOARD = os.getenv("LEARNAE_BOARD") or "rp2"
_EPOCH = 1609459200 if _BOARD == "rp2" else 946684800
_base = [_EPOCH, _t.ticks_ms()]  # clock at ticks _base[1]


def set_clock(secs):
    _base[0] = int(secs)
    _base[1] = _t.ticks_ms()


def time():
    return _base[0] + _t.ticks_diff(_t.ticks_ms(), _base[1]) // 1000


def time_ns():
    return time() * 1000000000


def gmtime(secs=None):
    return _t.gmtime(time() if secs is None else secs)


def localtime(secs=None):
    return _t.gmtime(time() if secs is None else secs)
