# BME280 driver (I2C); see sensors.py for the interface.
import struct


class BME280:
    """Bosch BME280 over I2C: temperature (C), humidity (%), pressure (hPa)."""

    def __init__(self, spec, board):
        from machine import I2C, Pin

        self.channels = spec["channels"]
        bus = board.get("i2c", {}).get(str(spec["i2c"]), {})
        if "sda" in bus:
            self.i2c = I2C(spec["i2c"], sda=Pin(bus["sda"]), scl=Pin(bus["scl"]),
                           freq=bus.get("freq", 100000))
        else:
            self.i2c = I2C(spec["i2c"])
        self.addr = spec["address"]
        self.buf = bytearray(8)
        chip = self.i2c.readfrom_mem(self.addr, 0xD0, 1)[0]
        if chip != 0x60:
            raise OSError("chip id 0x%02x at 0x%02x is not a BME280" % (chip, self.addr))
        c = self.i2c.readfrom_mem(self.addr, 0x88, 26)
        self.t = struct.unpack_from("<Hhh", c, 0)
        self.p = struct.unpack_from("<Hhhhhhhhh", c, 6)
        self.h1 = c[25]
        e = self.i2c.readfrom_mem(self.addr, 0xE1, 7)
        self.h2 = struct.unpack_from("<h", e, 0)[0]
        self.h3 = e[2]
        self.h4 = (e[3] << 4) | (e[4] & 0x0F)
        self.h5 = (e[5] << 4) | (e[4] >> 4)
        self.h6 = struct.unpack_from("<b", e, 6)[0]
        # humidity x1, then temperature and pressure x1 in forced mode
        self.i2c.writeto_mem(self.addr, 0xF2, b"\x01")

    def read(self, out, off):
        import time

        self.i2c.writeto_mem(self.addr, 0xF4, b"\x25")  # forced mode, osrs_t=1, osrs_p=1
        for _ in range(20):
            time.sleep_ms(2)
            if not self.i2c.readfrom_mem(self.addr, 0xF3, 1)[0] & 0x08:
                break
        self.i2c.readfrom_mem_into(self.addr, 0xF7, self.buf)
        b = self.buf
        adc_p = (b[0] << 12) | (b[1] << 4) | (b[2] >> 4)
        adc_t = (b[3] << 12) | (b[4] << 4) | (b[5] >> 4)
        adc_h = (b[6] << 8) | b[7]
        t1, t2, t3 = self.t
        v1 = (adc_t / 16384.0 - t1 / 1024.0) * t2
        v2 = (adc_t / 131072.0 - t1 / 8192.0) ** 2 * t3
        t_fine = v1 + v2
        temp = t_fine / 5120.0
        p1, p2, p3, p4, p5, p6, p7, p8, p9 = self.p
        v1 = t_fine / 2.0 - 64000.0
        v2 = v1 * v1 * p6 / 32768.0 + v1 * p5 * 2.0
        v2 = v2 / 4.0 + p4 * 65536.0
        v1 = (p3 * v1 * v1 / 524288.0 + p2 * v1) / 524288.0
        v1 = (1.0 + v1 / 32768.0) * p1
        press = None
        if v1:
            pr = 1048576.0 - adc_p
            pr = (pr - v2 / 4096.0) * 6250.0 / v1
            v1 = p9 * pr * pr / 2147483648.0
            v2 = pr * p8 / 32768.0
            press = (pr + (v1 + v2 + p7) / 16.0) / 100.0
        h = t_fine - 76800.0
        h = (adc_h - (self.h4 * 64.0 + self.h5 / 16384.0 * h)) * (
            self.h2 / 65536.0 * (1.0 + self.h6 / 67108864.0 * h * (1.0 + self.h3 / 67108864.0 * h)))
        h = h * (1.0 - self.h1 * h / 524288.0)
        hum = min(100.0, max(0.0, h))
        vals = (temp, hum, press)
        for i in range(len(self.channels)):
            out[off + i] = vals[i]


Driver = BME280
