# RP2040 internal temperature sensor (ADC 4); see sensors.py for the interface.

class RP2040Temp:
    """The RP2040's internal temperature sensor on ADC input 4."""

    def __init__(self, spec, board):
        from machine import ADC

        self.channels = spec["channels"]
        self.adc = ADC(4)

    def read(self, out, off):
        volts = self.adc.read_u16() * 3.3 / 65535
        out[off] = 27.0 - (volts - 0.706) / 0.001721  # RP2040 datasheet, section 4.9.5


Driver = RP2040Temp
