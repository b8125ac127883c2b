# One-shot construction of the Agent (agent.py): run once at boot, then this
# module is dropped, so its code is not resident while the agent runs.
# shape() is also used by a config change that alters batch_size (extras.py).
import time

import buffer
import wire


def setup(agent, conf, board, channels, drivers, errors, st, count=None, rejected=None,
          rbuf=None, wdt=None, wdt_error=None):
    # st: [boot, seq, state error] (state.load)
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
    a.names = wire.names_block(channels)
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
    a.t_clock = None  # ntp: None = not tried yet, else the outcome
    a.row = [None] * len(channels)  # the reading being taken
    shape(a, conf["batch_size"])
    b = conf["buffer"]
    a.buf = buffer.Buffer(len(a.enc), b["ram_batches"], b["spool_segments"], b["segment_bytes"])
    try:  # deep sleep: the readings of the unfinished batch (sleepmode.sleep)
        with open("pending.bin", "rb") as f:
            head = f.read(2)
            if len(head) == 2 and 0 < head[0] <= a.size:
                anoms = list(f.read(head[1]))
                k = head[0] * 4 * len(channels)
                if f.readinto(memoryview(a.vals)[:k]) == k:
                    a.n = head[0]
                    a.anoms = anoms
                    a.seq0 = a.seq - a.n
    except OSError:
        pass
    a.backoff_max = mq["backoff_max_ms"]
    # the caller makes the client (after dropping this module) from these; the
    # connection settings then live in the client only (startup.boot() trimmed
    # the rest of the config to what the run reads)
    del conf["mqtt"]
    return (mq["client_id"] or conf["device_id"], mq["host"], mq["port"], mq["username"],
            mq["password"], mq["keepalive_s"], mq["tls"], mq["timeout_ms"], mq["max_incoming"],
            2, None, rbuf)


def shape(a, batch_size):
    """(Re)allocate the batch buffers for ``batch_size`` readings."""
    c = len(a.channels)
    a.size = batch_size
    a.n = 0
    a.anoms = []
    a.seq0 = 0
    a.t0 = 0
    a.vals = None
    a.enc = None
    a.vals = bytearray(4 * c * batch_size)  # packed f32 readings of the open batch
    a.enc = bytearray(wire.size(c, a.names, batch_size))
