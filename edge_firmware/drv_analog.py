# Generic analog input (ADC); see sensors.py for the interface.
from sensors import pin_number


class Analog:
    """A generic ADC input, scaled: value = read_u16() / 65535 * scale + offset."""

    def __init__(self, spec, board):
        from machine import ADC, Pin

        self.channels = spec["channels"]
        self.adc = ADC(Pin(pin_number(board, spec["pin"])))
        self.scale = spec["scale"]
        self.offset = spec["offset"]

    def read(self, out, off):
        out[off] = self.adc.read_u16() / 65535.0 * self.scale + self.offset


Driver = Analog
