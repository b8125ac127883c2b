# Sensor drivers behind one small interface.
#
#   driver.channels        list of channel names (from the config)
#   driver.read(out, off)  write len(channels) floats (None = missing) into
#                          the list ``out`` from index ``off``; raise OSError
#                          (or any Exception) when the sensor fails
#
# The agent catches a failing read, sends that sensor's channels as missing
# and reports the error in status; one broken sensor never stops the others.
# The driver for sensor type T is the module drv_T, imported only when a
# config names it (the schema allows only known types); hardware drivers
# import their MicroPython modules lazily, so a host (or a board without that
# sensor) never pays for them.


def pin_number(board, pin):
    # A config pin is a GPIO number or a name from the board file ("dht", "adc0").
    if isinstance(pin, int):
        return pin
    pins = board.get("pins", {})
    if pin not in pins:
        raise OSError("pin %r is not in the board file" % (pin,))
    return pins[pin]


class Failed:
    """Stands in for a sensor whose driver could not start; every read fails."""

    def __init__(self, spec, reason):
        self.channels = spec["channels"]
        self.reason = reason

    def read(self, out, off):
        raise OSError(self.reason)


def open_sensor(spec, board):
    """Start the driver for ``spec``; a failure yields a Failed stand-in, not an error."""
    try:
        return __import__("drv_" + spec["type"]).Driver(spec, board)
    except Exception as exc:  # ImportError, OSError, ValueError from a driver
        return Failed(spec, "%s: %s" % (spec["type"], exc))
