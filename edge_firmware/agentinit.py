# One-shot construction of the Agent (agent.py): run once at boot, then this
# module is dropped, so its code is not resident while the agent runs.
# shape() is also used by a config change that alters batch_size (extras.py).
import gc
import os
import time

import buffer


def setup(agent, conf, board, channels, drivers, errors, st, count=None, rejected=None,
          rbuf=None, wdt=None, wdt_error=None, bufs=None):
    # st: [boot, seq, state error, drops] (state.load)
    a = agent
    # Every attribute first, before anything else is allocated: the attribute
    # table grows by rehashing (2, 3, 5, ... 37, then 47 slots, 752 bytes), and
    # each outgrown table is left as a hole; made back to back, the holes are one
    # free run the buffers below fill, not gaps between them (measured: the
    # 47-slot table was the allocation that failed at the 32 KB cap). 37
    # attributes in all, a 37-slot table (592 bytes): one more grows it to 47
    # slots (the counters share ``stats``, the topics ``topics``).
    a.client = a.stats = a.topics = a.names = a.codes = None
    a.sensors = a.sensor_errors = a.model = a.model_error = a.config_rejected = None
    a.last_error = a.pending_conf = a.wdt = a.t_clock = a.t_drift = a.row = a.dup_key = None
    a.buf = a.vals = a.anoms = a.conf = a.board = a.count = a.channels = None
    a.boot = a.seq = a.n = a.seq0 = a.t0 = 0
    a.dup_pid = a.backoff = a.next_try = a.start = 0
    a.last_status = 0
    a.status_dirty = a.reboot = a.up = False
    a.conf = conf
    a.board = board
    a.count = count
    mq = conf["mqtt"]
    # <prefix>/<device>/<kind>; both parts were checked by shared.config
    base = "%s/%s/" % (mq["topic_prefix"], conf["device_id"])
    # published: data, status; subscribed: config, model, cmd (inbox.py tells
    # them apart by index)
    a.topics = (base + "data", base + "status", (base + "config").encode(),
                (base + "model").encode(), (base + "cmd").encode())
    a.boot = st[0]
    a.seq = st[1]
    a.channels = channels
    # the batch name block (each channel's descriptor byte with code 0, then its
    # name) and each channel's value code: 0 = float32, scale + 8 = int16 counts
    # of 10**scale units (the sensor's "resolution", filled in by shared.config)
    c = len(channels)
    k = 0
    for name in channels:
        k += 1 + len(name)
    a.names = bytearray(k)
    a.codes = bytearray(2 * c)  # this batch's codes, then each channel's own (wire.py)
    k = 0
    j = 0
    for s in conf["sensors"]:
        for r in s.pop("resolution", None) or [None] * len(s["channels"]):
            name = channels[j]
            a.names[k] = len(name) - 1
            a.names[k + 1:k + 1 + len(name)] = name.encode()
            k += 1 + len(name)
            a.codes[c + j] = 0 if r is None else r + 8
            j += 1
    a.sensors = drivers
    a.sensor_errors = errors
    a.model = None
    a.model_error = None
    a.config_rejected = rejected
    a.last_error = st[2] or wdt_error
    a.status_dirty = True
    a.pending_conf = None
    a.reboot = False
    a.up = False
    a.backoff = 250  # agent.BACKOFF_MIN_MS
    a.next_try = time.ticks_ms()
    # made, acked, anomalies, connects, radio_ms, radio_batches, heap_min_free
    # (the indexes: agent.py)
    a.stats = [0] * 7
    a.start = time.ticks_ms()
    a.last_status = a.start
    a.dup_pid = 0
    a.dup_key = bytearray(8)
    a.wdt = wdt  # started by startup.boot() (always_on with watchdog_ms)
    # the clock: None = not set (nor NTP tried yet), True = set by NTP or the
    # gateway's time, else why NTP failed; readings carry t = 0 until it is True
    a.t_clock = None
    a.t_drift = None  # gateway time - board time (s) when the gateway's time last came
    a.row = [None] * len(channels)  # the reading being taken
    # bufs: (vals, the RAM slots) made at boot by bootrun.run(); a batch is
    # encoded straight into its RAM slot, each as large as the largest batch
    size = shape(a, conf["batch_size"], bufs)
    b = conf.pop("buffer")  # (the Buffer keeps its settings; a config change reads them there)
    gc.collect()  # the construction's garbage goes before the rest is made
    a.buf = buffer.Buffer(size, b["ram_batches"], b["spool_segments"], b["segment_bytes"],
                          bufs and bufs[1])
    bufs = None
    a.buf.drops = st[3]  # a deep-sleep run's drops so far (0 after a real boot)
    # (a wake from deep sleep takes the unfinished batch from pending.bin in
    # sleepmode.wake: a real boot removed the file, state.new_boot)
    # the caller makes the client (after dropping this module) from these; the
    # connection settings then live in the client only (startup.boot() trimmed
    # the rest of the config to what the run reads)
    del conf["mqtt"]
    return (mq["client_id"] or conf["device_id"], mq["host"], mq["port"], mq["username"],
            mq["password"], mq["keepalive_s"], mq["tls"], mq["timeout_ms"], mq["max_incoming"],
            2, None, rbuf, wdt, min(conf["watchdog_ms"], board.get("wdt_max_ms", 1000000)),
            mq["backoff_max_ms"], (a.topics[1], b'{"state":"offline"}', True, 1))


def shape(a, batch_size, bufs=None):
    """(Re)allocate the open batch's buffer for ``batch_size`` readings (or take
    ``bufs[0]``, made earlier, when its size is right); return the size of the
    largest batch (a RAM slot of the buffer)."""
    c = len(a.channels)
    a.n = 0
    a.anoms = []
    a.seq0 = 0
    a.t0 = 0
    a.vals = None
    # the open batch's readings: packed f32, then their int16 counts (wire.py)
    n = 6 * c * batch_size
    a.vals = bufs[0] if bufs and len(bufs[0]) == n else bytearray(n)
    # the largest batch: period and anomaly bitmap present, every value float32
    return 20 + len(a.names) + (batch_size + 7) // 8 + 4 * c * batch_size


def buffer_setup(self, slot_size, ram_batches=8, spool_segments=8, segment_bytes=4096,
                 ram=None):
    """Buffer.__init__ (buffer.py): run once per buffer, so not resident."""
    # every attribute before the slots are allocated (as in setup above)
    # (11 attributes: an 11-slot table; the slots are read through ``mv`` only)
    self.mv = self.lens = self.spool = None
    self.n_slots = self.head = self.count = self.max_segments = self.segment_bytes = 0
    self.drops = self._peek_from = 0
    self.slot_size = slot_size
    # ram: the slots, made earlier (startup.boot), when its size is right
    n = slot_size * ram_batches
    self.mv = memoryview(ram if ram is not None and len(ram) == n else bytearray(n))
    self.lens = [0] * ram_batches
    self.n_slots = ram_batches
    self.head = 0  # oldest RAM slot
    self.count = 0  # RAM slots in use
    self.max_segments = spool_segments
    self.segment_bytes = segment_bytes
    self.drops = 0  # readings dropped because everything was full
    self.spool = None  # a spool.Spool while the flash spool holds batches
    self._peek_from = 0  # 0 nothing peeked, 1 spool, 2 RAM
    for name in os.listdir():  # segments left by an earlier boot or a deep sleep
        if name.startswith("spool_"):
            self.spool = __import__("spool").Spool(self)
            break
