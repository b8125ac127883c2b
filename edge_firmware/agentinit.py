# One-shot construction of the Agent (agent.py): run once at boot, then this
# module is dropped, so its code is not resident while the agent runs.
# shape() is also used by a config change that alters batch_size (extras.py).
import gc
import os
import time

import buffer


def setup(agent, conf, board, channels, drivers, errors, st, count=None, rejected=None,
          rbuf=None, wdt=None, wdt_error=None):
    # st: [boot, seq, state error, drops] (state.load)
    a = agent
    a.conf = conf
    a.board = board
    a.count = count
    mq = conf["mqtt"]
    # <prefix>/<device>/<kind>; both parts were checked by shared.config
    base = "%s/%s/" % (mq["topic_prefix"], conf["device_id"])
    a.t_data = base + "data"
    a.t_status = base + "status"
    # subscriptions: config, model, cmd (inbox.py tells them apart by index)
    a.subs = ((base + "config").encode(), (base + "model").encode(), (base + "cmd").encode())
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
    a.connects = 0
    a.acked = 0  # readings acknowledged by the broker in this run
    a.made = 0  # readings sampled in this run
    a.anomalies = 0
    a.radio_ms = 0  # time spent connecting and publishing, summed
    a.radio_batches = 0
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
    shape(a, conf["batch_size"])
    b = conf["buffer"]
    gc.collect()  # the construction's garbage goes before the RAM slots are made
    a.buf = buffer.Buffer(len(a.enc), b["ram_batches"], b["spool_segments"], b["segment_bytes"])
    a.buf.drops = st[3]  # a deep-sleep run's drops so far (0 after a real boot)
    try:  # deep sleep: the readings of the unfinished batch (sleepmode.sleep)
        with open("pending.bin", "rb") as f:
            head = f.read(2)
            if len(head) == 2 and 0 < head[0] <= conf["batch_size"]:
                anoms = list(f.read(head[1]))
                k = head[0] * 2 * c
                h = len(a.vals) // 3 * 2
                if (f.readinto(a.codes) == 2 * c and f.readinto(memoryview(a.vals)[:2 * k]) == 2 * k
                        and f.readinto(memoryview(a.vals)[h:h + k]) == k):
                    a.n = head[0]
                    a.anoms = anoms
                    a.seq0 = a.seq - a.n
    except OSError:
        pass
    # the caller makes the client (after dropping this module) from these; the
    # connection settings then live in the client only (startup.boot() trimmed
    # the rest of the config to what the run reads)
    del conf["mqtt"]
    return (mq["client_id"] or conf["device_id"], mq["host"], mq["port"], mq["username"],
            mq["password"], mq["keepalive_s"], mq["tls"], mq["timeout_ms"], mq["max_incoming"],
            2, None, rbuf, wdt, min(conf["watchdog_ms"], board.get("wdt_max_ms", 1000000)),
            mq["backoff_max_ms"])


def shape(a, batch_size):
    """(Re)allocate the batch buffers for ``batch_size`` readings."""
    c = len(a.channels)
    a.n = 0
    a.anoms = []
    a.seq0 = 0
    a.t0 = 0
    a.vals = None
    a.enc = None
    # the open batch's readings: packed f32, then their int16 counts (wire.py)
    a.vals = bytearray(6 * c * batch_size)
    # the largest batch: period and anomaly bitmap present, every value float32
    a.enc = bytearray(20 + len(a.names) + (batch_size + 7) // 8 + 4 * c * batch_size)


def buffer_setup(self, slot_size, ram_batches=8, spool_segments=8, segment_bytes=4096):
    """Buffer.__init__ (buffer.py): run once per buffer, so not resident."""
    self.slot_size = slot_size
    self.ram = bytearray(slot_size * ram_batches)
    self.mv = memoryview(self.ram)
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
            self._spool()
            break
