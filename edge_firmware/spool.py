# The flash half of the offline buffer (buffer.py): segment files
# "spool_<n>.bin" of [u16 length][payload] records, oldest first. Bounded by
# max_segments x segment_bytes: when a new segment would exceed the count, the
# oldest segment is deleted and its readings are added to the buffer's
# ``drops``. Loaded when a batch first spills (or segments are found at boot)
# and unloaded when the spool drains, so a healthy link never pays for it.
import os

from micropython import const

_LEN = const(2)


def _name(n):
    return "spool_%d.bin" % n


def _records(payload):
    # readings in one encoded binary batch (byte 3 of its header)
    return payload[3] if payload[0] == 1 else 0


class Spool:
    def __init__(self, buf):
        self.buf = buf
        self.read_off = 0  # bytes of the oldest segment already acknowledged
        self.write_size = 0  # size of the newest segment
        self.out = bytearray(buf.slot_size)  # spool reads land here
        self.lenbuf = bytearray(2)
        self.peek_size = 0
        # pick up segments left by an earlier boot or a deep sleep
        nums = []
        for name in os.listdir():
            if name.startswith("spool_") and name.endswith(".bin"):
                try:  # noqa: SIM105
                    nums.append(int(name[6:-4]))
                except ValueError:
                    pass
        nums.sort()
        self.segments = nums  # segment numbers, oldest first
        self.spooled = 0  # batches in the spool
        for n in nums:
            self.spooled += self._count(n)[0]
        if nums:
            try:
                self.write_size = os.stat(_name(nums[-1]))[6]
            except OSError:
                self.write_size = 0

    def _count(self, n, start=0):
        # (batches, readings) stored in segment n from byte ``start``.
        batches = readings = 0
        hdr = bytearray(6)
        try:
            with open(_name(n), "rb") as f:
                f.seek(start)
                while f.readinto(hdr) == 6:
                    size = hdr[0] << 8 | hdr[1]
                    batches += 1
                    readings += _records(hdr[2:])
                    f.seek(size - 4, 1)
        except OSError:
            pass
        return batches, readings

    def append(self, payload, n):
        buf = self.buf
        if not buf.max_segments:
            buf.drops += _records(payload)
            return
        if not self.segments or self.write_size + n + _LEN > buf.segment_bytes:
            self.segments.append(self.segments[-1] + 1 if self.segments else 0)
            self.write_size = 0
            while len(self.segments) > buf.max_segments:
                self._drop_oldest()
        self.lenbuf[0] = n >> 8
        self.lenbuf[1] = n & 0xFF
        with open(_name(self.segments[-1]), "ab") as f:
            f.write(self.lenbuf)
            f.write(payload[:n])
        self.write_size += n + _LEN
        self.spooled += 1

    def _drop_oldest(self):
        if self.buf._peek_from == 1:  # the peeked batch goes with it (see buffer._pop_ram)
            self.buf._peek_from = 0
        n = self.segments.pop(0)
        batches, readings = self._count(n, self.read_off)
        self.spooled -= batches
        self.buf.drops += readings
        self.read_off = 0
        try:  # noqa: SIM105
            os.remove(_name(n))
        except OSError:
            pass

    def peek(self):
        """The oldest spooled batch as a memoryview, or None when the spool is empty."""
        while self.segments:
            n = self.segments[0]
            try:
                with open(_name(n), "rb") as f:
                    f.seek(self.read_off)
                    if f.readinto(self.lenbuf) == 2:
                        size = self.lenbuf[0] << 8 | self.lenbuf[1]
                        if size > len(self.out):
                            self.out = bytearray(size)
                        if f.readinto(memoryview(self.out)[:size]) == size:
                            self.peek_size = size
                            return memoryview(self.out)[:size]
            except OSError:
                pass
            # segment exhausted (or unreadable): remove it and move on
            self.segments.pop(0)
            self.read_off = 0
            if not self.segments:
                self.write_size = 0
            try:  # noqa: SIM105
                os.remove(_name(n))
            except OSError:
                pass
        self.spooled = 0
        return None

    def pop(self):
        self.read_off += self.peek_size + _LEN
        self.spooled -= 1
        if self.spooled < 0:
            self.spooled = 0
