# Offline buffer: encoded batches waiting for their PUBACK.
#
# RAM holds a fixed number of fixed-size slots (allocated once), each as large
# as the largest batch; a batch is encoded straight into its slot (slot(),
# commit()). When the RAM slots are full, the oldest batch spills to the flash
# spool (spool.py, loaded only while it is in use): segment files of
# [u16 length][payload] records, bounded too; what falls off its end is
# counted in ``drops`` (status).
# Batches leave in arrival order: spool first (it holds the oldest), then RAM.
#
# A batch is removed only after its PUBACK (pop() after peek()), so a crash or
# reset between publish and ack re-sends it; the gateway deduplicates on
# (device, boot, seq). Spooled batches survive a reboot; RAM batches are moved
# to the spool before a deep sleep (spill_one() until none is left).
import sys


class Buffer:
    def __init__(self, *args):
        # (slot_size, ram_batches=8, spool_segments=8, segment_bytes=4096): the
        # one-shot setup lives in agentinit.py (as the client's in mqttinit.py)
        __import__("agentinit").buffer_setup(self, *args)

    def __len__(self):
        return self.count + (self.spool.spooled if self.spool is not None else 0)

    def slot(self):
        """The RAM slot the next batch is written into, as a memoryview of
        ``slot_size`` bytes; commit(n) queues it. Room is made first: the oldest
        RAM batch spills to the flash spool, or without one it is dropped and
        counted. (The agent encodes each batch in place: no encode buffer.)"""
        if self.count == self.n_slots:
            self.spill_one()
        if self.count == self.n_slots:  # no spool: drop the oldest RAM batch
            off = self.head * self.slot_size
            if self.mv[off] == 1:  # binary batch: byte 3 counts its readings
                self.drops += self.mv[off + 3]
            self._pop_ram()
        off = (self.head + self.count) % self.n_slots * self.slot_size
        return self.mv[off:off + self.slot_size]

    def commit(self, n):
        """Queue the batch of ``n`` bytes just written into slot()."""
        self.lens[(self.head + self.count) % self.n_slots] = n
        self.count += 1

    def spill_one(self):
        if not self.max_segments or not self.count:
            return
        if self.spool is None:  # (spool.py loads only while it holds batches)
            self.spool = __import__("spool").Spool(self)
        off = self.head * self.slot_size
        self.spool.append(self.mv[off:off + self.lens[self.head]], self.lens[self.head])
        self._pop_ram()

    def peek(self):
        """The oldest batch as a memoryview (valid until the next call), or None."""
        sp = self.spool
        if sp is not None:
            data = sp.peek()
            if data is not None:
                self._peek_from = 1
                return data
            # spool drained: free its code and buffers until the next spill
            self.spool = None
            sys.modules.pop("spool", None)
        if self.count:
            off = self.head * self.slot_size
            self._peek_from = 2
            return self.mv[off:off + self.lens[self.head]]
        return None

    def pop(self):
        """Forget the batch returned by the last peek() (its PUBACK arrived)."""
        if self._peek_from == 1:
            self.spool.pop()
        elif self._peek_from == 2:
            self._pop_ram()
        self._peek_from = 0

    def _pop_ram(self):
        # a new batch (slot()) while a peeked RAM batch waits for its PUBACK ({"cmd": "flush"}
        # inside the read loop) may spill or drop it: pop() must not then
        # forget the next, unsent batch
        self._peek_from = 0
        if self.count:
            self.head = (self.head + 1) % self.n_slots
            self.count -= 1
