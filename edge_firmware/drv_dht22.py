# DHT22 driver (one GPIO, MicroPython's dht module); see sensors.py for the interface.
from sensors import pin_number


class DHT22:
    """AM2302/DHT22 on one GPIO with MicroPython's ``dht`` module."""

    def __init__(self, spec, board):
        import dht
        from machine import Pin

        self.channels = spec["channels"]
        self.dev = dht.DHT22(Pin(pin_number(board, spec["pin"])))

    def read(self, out, off):
        self.dev.measure()  # raises OSError on a checksum or timeout fault
        out[off] = self.dev.temperature()
        out[off + 1] = self.dev.humidity()


Driver = DHT22
