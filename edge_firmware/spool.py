# The flash half of the offline buffer (buffer.py): segment files
# "spool_<n>.bin" of [u16 length][payload] records, oldest first. Bounded by
# max_segments x segment_bytes: when a new segment would exceed the count, the
# oldest segment is deleted and its readings are added to the buffer's
# ``drops``. Loaded when a batch first spills (or segments are found at boot)
# and unloaded when the spool drains, so a healthy link never pays for it.
#
# A record's length is trusted only within bounds (16 bytes, the smallest
# batch, up to the larger of a RAM slot and a segment): a corrupted length
# would otherwise ask for up to 64 KB, and the MemoryError would reset the
# board into the same read. A segment with a bad or truncated record is
# skipped from that record on and counted in the file "spoolbad" (status
# "spool_bad"): a file, not an attribute, because one more attribute on the
# resident Buffer costs the 32 KB run its connect (measured), and the count
# then survives the reset a corruption may come with.
#
# The read position (segment number, byte offset) is saved in "spoolpos" at
# each acknowledged batch, so a reboot or a wake from deep sleep resumes after
# the last acknowledged batch instead of resending the whole oldest segment.
import os

from micropython import const

_LEN = const(2)
_MIN = const(16)  # the smallest binary batch (wire.py header)
_POS = "spoolpos"
_BAD = "spoolbad"


def bad_segments():
    """Spool segments skipped at a corrupted record, over the board's life."""
    try:
        with open(_BAD) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def _name(n):
    return "spool_%d.bin" % n


def _forget_pos():
    try:  # noqa: SIM105
        os.remove(_POS)
    except OSError:
        pass


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
        self.max_size = max(buf.slot_size, buf.segment_bytes)
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
        if nums:
            try:  # where the last acknowledged batch of the oldest segment ended
                with open(_POS) as f:
                    seg, off = f.read().split()
                if int(seg) == nums[0]:
                    self.read_off = int(off)
            except (OSError, ValueError):
                pass
        else:
            _forget_pos()
        self.spooled = 0  # batches in the spool
        for n in nums:
            self.spooled += self._count(n, self.read_off if n == nums[0] else 0)[0]
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
                    if size < _MIN or size > self.max_size:
                        break  # a bad length: peek() skips from here
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
        _forget_pos()
        try:  # noqa: SIM105
            os.remove(_name(n))
        except OSError:
            pass

    def peek(self):
        """The oldest spooled batch as a memoryview, or None when the spool is empty."""
        while self.segments:
            n = self.segments[0]
            got = 0
            try:
                with open(_name(n), "rb") as f:
                    f.seek(self.read_off)
                    got = f.readinto(self.lenbuf)
                    if got == 2:
                        size = self.lenbuf[0] << 8 | self.lenbuf[1]
                        if _MIN <= size <= self.max_size:
                            if size > len(self.out):
                                self.out = bytearray(size)
                            if f.readinto(memoryview(self.out)[:size]) == size:
                                self.peek_size = size
                                return memoryview(self.out)[:size]
            except (OSError, MemoryError):
                pass
            if got:  # a bad length, a truncated record or no RAM for it
                bad = bad_segments() + 1
                with open(_BAD, "w") as f:
                    f.write(str(bad))
                print("spool: segment %d skipped at byte %d" % (n, self.read_off))
            # segment exhausted (or unreadable): remove it and move on
            self.segments.pop(0)
            self.read_off = 0
            _forget_pos()
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
        with open(_POS, "w") as f:
            f.write("%d %d" % (self.segments[0], self.read_off))
        self.spooled -= 1
        if self.spooled < 0:
            self.spooled = 0
