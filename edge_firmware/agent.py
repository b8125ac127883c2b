# The sensor agent: sample -> batch -> buffer -> MQTT QoS 1, with one reconnect path.
#
# main.py builds the Agent from what startup.boot() read (the config validated
# by confcheck.py, see startup.py); run() loops:
# sample every period_ms, close a batch every batch_size readings into the
# offline buffer, publish the oldest buffered batch when connected, and handle
# retained config/model messages and commands. Any OSError on the connection
# ends in extras.down(), which closes the socket and schedules the next attempt with
# exponential backoff and jitter (extras.down); connect() is the only way back up.
#
# RAM is the scarce resource: code that runs once or rarely (construction,
# connect, status, incoming messages, config changes, the flash spool) lives in
# modules imported when needed and dropped from sys.modules right after (here,
# in mqtt.connect and in buffer), so between events only this loop, the MQTT
# core, the RAM buffer and the batch writer stay resident.
import gc
import sys
import time

from micropython import const

gc.collect()
import buffer  # noqa: E402, F401  (resident: the offline buffer)
import wire  # noqa: E402

gc.collect()

_BACKOFF_MIN_MS = const(250)  # agentinit.py starts with it too
# Agent.stats: the run's counters in one list (agent.py; status.py,
# status2.py, runend.py and otaguard.py index it the same way): seven
# attributes fewer keep the Agent in a 37-slot attribute table, not a 47-slot
# one (a 752-byte block that was the allocation to fail at the 32 KB cap)
_MADE = const(0)  # readings sampled in this run
_ACKED = const(1)  # readings acknowledged by the broker in this run
_ANOMALIES = const(2)
_CONNECTS = const(3)
_RADIO_MS = const(4)  # time spent connecting and publishing, summed
_RADIO_BATCHES = const(5)
_HEAP_MIN_FREE = const(6)
# Agent.topics: publish to data, status; subscribe to config, model, cmd
_T_DATA = const(0)
_T_STATUS = const(1)


def once(name, fn, *args):
    """``fn(*args)`` of module ``name``, which is dropped afterwards: rare code
    loads into a collected heap (its loader's garbage collected before it runs)
    and leaves nothing resident. One helper for every rare step: on a board
    each copy of this pattern costs RAM (docs/firmware.md, Memory)."""
    gc.collect()
    m = __import__(name)
    gc.collect()
    try:
        return getattr(m, fn)(*args)
    finally:
        m = None
        sys.modules.pop(name, None)


class Agent:
    def __init__(self, *args):
        # (see agentinit.setup): the one-shot construction lives in
        # agentinit.py, and the client's settings are worked out by
        # mqttinit.py, each dropped once done
        mq = once("agentinit", "setup", self, *args)
        mq = once("mqttinit", "settings", *mq)
        # the MQTT client, and its module (resident from here on), after both
        # are gone: the construction never shares the heap with mqtt.py's 3.4 KB,
        # which load into the holes it left (measured at 32 KB)
        c = __import__("mqtt")
        gc.collect()
        self.client = c.MQTTClient(mq)
        c = None
        self.client.cb = self.on_message
        mq = None
        gc.collect()
        self.stats[_HEAP_MIN_FREE] = gc.mem_free()

    # -- batches ------------------------------------------------------------
    def sample(self):
        row = self.row
        seq = self.seq
        off = 0
        for i, s in enumerate(self.sensors):
            k = len(s.channels)
            s.seq = seq
            try:
                s.read(row, off)
            except Exception as exc:
                for j in range(k):
                    row[off + j] = None
                key = "%d:%s" % (i, self.conf["sensors"][i]["type"])
                if key not in self.sensor_errors:
                    self.status_dirty = True
                self.sensor_errors[key] = str(exc)
            off += k
        # flag the reading: outside a threshold, or the edge model's score
        flag = False
        th = self.conf["thresholds"]
        if th:
            for j, name in enumerate(self.channels):
                if name in th and row[j] is not None:
                    lo, hi = th[name]
                    if (lo is not None and row[j] < lo) or (hi is not None and row[j] > hi):
                        flag = True
        if self.model is not None:
            now_s = int(time.time())  # a calendar model needs the reading's time
            if self.model.flagged(self.model.score(row, now_s if now_s > 1600000000 else None)):
                flag = True
        if flag:
            self.anoms.append(self.n)
            self.stats[_ANOMALIES] += 1
        if self.n == 0:
            self.seq0 = seq
            # 0: the clock is not set (a port's RTC starts at its own power-on
            # date: 2021 on rp2); NTP or the gateway's time sets it
            self.t0 = int(time.time()) if self.t_clock is True else 0
        wire.put(self.vals, self.n, row, self.codes)
        self.n += 1
        self.seq = seq + 1
        self.stats[_MADE] += 1
        if self.n >= self.conf["batch_size"]:
            self.close_batch()

    def close_batch(self):
        if not self.n:
            return
        # encoded straight into the buffer's next RAM slot (no buffer of its own)
        self.buf.commit(wire.encode(self.buf.slot(), self.boot, self.seq0, self.t0, self.names,
                                    len(self.channels), self.vals, self.n,
                                    self.conf["period_ms"], self.anoms, self.codes))
        self.n = 0
        if self.anoms:
            self.anoms = []
        gc.collect()
        free = gc.mem_free()
        if free < self.stats[_HEAP_MIN_FREE]:
            self.stats[_HEAP_MIN_FREE] = free

    # -- connection: the one reconnect path -------------------------------
    # (a failure goes to extras.down: socket closed, the next try scheduled)
    def connect(self):
        t = time.ticks_ms()
        try:
            ntp = self.conf["ntp"] and self.t_clock is None
            if self.conf["wifi"] or ntp:  # a host or an Ethernet board has no Wi-Fi to bring up
                netif = __import__("netif")
                netif.connect(self.conf["wifi"], self.wdt)
                if ntp:
                    self.t_clock = netif.sync_clock()
                sys.modules.pop("netif", None)
            # the client's connect-time code, one module at a time: the socket
            # (mqttsock.py), CONNECT (mqttconn.py), then SUBSCRIBE (mqttsub.py)
            once("mqttsock", "open", self.client)
            once("mqttconn", "connect", self.client, False)
            once("mqttsub", "subscribe", self.client, self.topics[2:])
            self.up = True
            self.stats[_CONNECTS] += 1
            self.backoff = _BACKOFF_MIN_MS
            self.status_dirty = True  # the birth status: service() sends it first
        except OSError as exc:
            once("extras", "down", self, exc)
        self.stats[_RADIO_MS] += time.ticks_diff(time.ticks_ms(), t)
        return self.up

    def publish_one(self):
        data = self.buf.peek()
        if data is None:
            return False
        t = time.ticks_ms()
        # a batch whose PUBACK never came goes again with DUP and its packet id
        key = data[4:12]
        dup = self.dup_pid != 0 and key == self.dup_key
        if not dup:
            c = self.client  # the next packet id, 1..65535 (as mqtt.publish takes one)
            c.pid = self.dup_pid = c.pid % 65535 + 1
            self.dup_key[:] = key
        self.client.publish(self.topics[_T_DATA], data, qos=1, pid=self.dup_pid, dup=dup)
        self.stats[_ACKED] += data[3]
        self.dup_pid = 0
        self.buf.pop()
        self.stats[_RADIO_MS] += time.ticks_diff(time.ticks_ms(), t)
        self.stats[_RADIO_BATCHES] += 1
        return True

    def publish_status(self, online=True):
        # the document in two halves, one module each (status.py, status2.py)
        doc = once("status", "dumps", self, online) + once("status2", "dumps", self, online)
        self.client.publish(self.topics[_T_STATUS], doc, retain=True, qos=1)
        self.status_dirty = False
        self.last_status = time.ticks_ms()

    def on_message(self, topic, msg, retained):
        # runs inside the client's read loop: parse and record, never publish here
        once("inbox", "handle", self, topic, msg, retained)

    # -- loops --------------------------------------------------------------
    def service(self, wait_ms):
        """Talk to the broker for up to ``wait_ms``: publish, read, ping, status."""
        if not self.up:
            if time.ticks_diff(time.ticks_ms(), self.next_try) >= 0:
                self.connect()
            else:
                time.sleep_ms(min(wait_ms, 20))
            return
        try:
            if self.status_dirty or time.ticks_diff(
                    time.ticks_ms(), self.last_status) > self.conf["status_every_s"] * 1000:
                self.publish_status()
            if len(self.buf):
                self.publish_one()
                self.client.poll(0)
            else:
                self.client.poll(min(wait_ms, 50))
            self.client.keepalive_check()
        except OSError as exc:
            once("extras", "down", self, exc)

    def run(self):
        """always_on: loop until ``count`` readings are made and delivered (forever on a board)."""
        if self.conf["watchdog_ms"] and self.wdt is None:  # (started at boot)
            once("watchdog", "arm", self)
        next_sample = time.ticks_ms()
        while True:
            if self.wdt is not None:
                self.wdt.feed()
            if self.pending_conf is not None or self.reboot:
                code = once("extras", "between_events", self)
                if code is not None:
                    return code
            sampling = self.count is None or self.stats[_MADE] < self.count
            now = time.ticks_ms()
            if sampling and time.ticks_diff(now, next_sample) >= 0:
                self.sample()
                period = self.conf["period_ms"]
                next_sample = time.ticks_add(next_sample, period)
                if time.ticks_diff(now, next_sample) > 10 * period:
                    next_sample = now  # fell far behind (slow sensor): do not burst
                wait = 0
            elif not sampling:
                self.close_batch()
                if not len(self.buf) and self.up:
                    try:  # the offline status first: one rare module at a time
                        self.publish_status(online=False)
                    except OSError as exc:
                        self.last_error = str(exc)
                    return once("runend", "finish", self)
                wait = 50
            else:
                wait = time.ticks_diff(next_sample, now)
            self.service(wait)

