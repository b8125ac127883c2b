# One-shot setup of an MQTTClient (mqtt.py): loaded by the constructor and
# dropped right after, so its code is not resident while the client runs.
from mqtt import _put_str


def setup(c, client_id, server, port=1883, user=None, password=None,
          keepalive=30, tls=False, timeout_ms=5000, max_incoming=4096,
          retries=2, cb=None, rbuf=None, wdt=None, wdt_ms=0, backoff_max_ms=60000,
          will=None):
    # rbuf: a receive buffer of max_incoming bytes made earlier by the caller
    # (allocated first at boot, it sits in one piece below everything else)
    # Every attribute first, before anything else is allocated: the attribute
    # table grows by rehashing up to 29 slots (464 bytes, the allocation that
    # failed at the 32 KB cap), and made back to back the outgrown tables are
    # one free run, not holes between the buffers below (agentinit.setup too)
    c.client_id = c.server = c.password = c.tls = c.cb = c.will = c._tail = c.sock = None
    c._poller = c._rbuf = c._rmv = c._obuf = c._onemv = c.wdt = c.nodelay = None
    c.port = c.keepalive = c.timeout_ms = c.retries = c.pid = c._want = c._got = 0
    c._ping_sent = c._last_tx = c.slice_ms = c.oversized = c.resent = c.backoff_max = 0
    c.client_id = client_id.encode() if isinstance(client_id, str) else client_id
    c.server = server
    c.port = port
    user = user.encode() if isinstance(user, str) else user
    c.password = password.encode() if isinstance(password, str) else password
    c.keepalive = keepalive
    c.tls = tls
    c.timeout_ms = timeout_ms
    c.retries = retries
    c.cb = cb
    # the last will: (topic, message, retain, qos), sent with every CONNECT (a
    # constructor argument, not a method: the client's class stays resident)
    if will is not None:
        t = will[0]
        will = (t.encode() if isinstance(t, str) else t, will[1], will[2], will[3])
    c.will = will
    # user name field and password length prefix, built once
    tail = bytearray((2 + len(user) if user is not None else 0)
                     + (2 if c.password is not None else 0))
    off = _put_str(tail, 0, user) if user is not None else 0
    if c.password is not None:
        tail[off] = len(c.password) >> 8
        tail[off + 1] = len(c.password) & 0xFF
    c._tail = tail
    c.sock = None
    c._poller = None
    c.pid = 0
    c._want = -1  # packet id whose PUBACK/SUBACK we wait for
    c._got = False
    c._ping_sent = 0  # ticks of an unanswered PINGREQ, 0 = none
    c._last_tx = 0
    c._rbuf = rbuf if rbuf is not None and len(rbuf) == max_incoming else bytearray(max_incoming)
    c._rmv = memoryview(c._rbuf)
    # fixed header + topic + packet id of one PUBLISH; CONNECT and SUBSCRIBE
    # headers (client id, will topic, topic filters) fit as well
    c._obuf = bytearray(160)
    c._onemv = memoryview(bytearray(1))
    # the watchdog to feed while waiting (wdt_ms: its timeout), and the longest
    # single wait between feeds: a quarter of that (watchdog.arm sets both later)
    c.wdt = wdt
    c.slice_ms = timeout_ms if wdt is None else min(timeout_ms, max(wdt_ms // 4, 20))
    c.nodelay = None  # TCP_NODELAY: True once set, else why not (mqttconn.connect)
    c.oversized = 0  # incoming messages too large for the buffer, discarded
    c.resent = 0
    # the caller's reconnect backoff cap (Agent._down), kept with the other
    # connection settings: one more attribute on the Agent would grow its
    # 47-slot attribute table to 59 slots (docs/firmware.md, Memory)
    c.backoff_max = backoff_max_ms
