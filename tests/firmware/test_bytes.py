"""Byte-level checks under MicroPython: MQTT packets against a socket fake, batch bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import micropython_host
from gateway.commands.sim import HOST_SHIMS
from shared.codec import Batch, encode_binary

FAKE = r'''
import sys, mqtt
class FakeSock:
    def __init__(self, incoming):
        self.out = bytearray(); self.inp = incoming; self.pos = 0
    def settimeout(self, t): pass
    def setsockopt(self, *a): self.opt = a
    def connect(self, addr): pass
    def write(self, b):
        self.out.extend(b); return len(b)
    def readinto(self, mv):
        n = min(len(mv), len(self.inp) - self.pos)
        mv[:n] = self.inp[self.pos:self.pos + n]; self.pos += n; return n
    def close(self): pass
class FakePoll:
    def register(self, s, m): self.s = s
    def poll(self, t): return [1] if self.s.pos < len(self.s.inp) else []
INCOMING = b"\x20\x02\x00\x00" + b"\x90\x03\x00\x01\x01"
sock = FakeSock(INCOMING)
class FakeSocketModule:
    SOCK_STREAM = 1
    def getaddrinfo(self, *a): return [(2, 1, 6, "", ("127.0.0.1", 1883))]
    def socket(self): return sock
class FakeSelect:
    POLLIN = 1
    poll = FakePoll
# mqttconn is loaded per connect and dropped after: its imports find the fakes
sys.modules["socket"] = FakeSocketModule()
sys.modules["select"] = FakeSelect
import mqttinit
c = mqtt.MQTTClient(mqttinit.settings("dev1", "h", user="u", password="pw", keepalive=30,
                                      will=("p/dev1/status", b"off", True, 1)))
import mqttrare
mqttrare.connect(c, clean_session=False, topics=(b"p/dev1/config",))
n1 = sock.out[1] + 2  # CONNECT: fixed header + remaining length (< 128), then SUBSCRIBE
n2 = len(sock.out)
sock.inp += b"\x40\x02\x00\x02"  # the PUBACK arrives after the PUBLISH
c.publish("p/dev1/data", b"xyz", qos=1)
print(sock.opt)
print(bytes(sock.out[:n1]).hex(), bytes(sock.out[n1:n2]).hex(), bytes(sock.out[n2:]).hex())
'''


def test_connect_subscribe_publish_bytes(tmp_path: Path) -> None:
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    done = micropython_host.run(script, extra_path=[HOST_SHIMS])
    assert done.returncode == 0, done.stderr + done.stdout
    opt, packets = done.stdout.strip().splitlines()
    assert opt == "(6, 1, 1)"  # TCP_NODELAY
    connect, subscribe, publish = (bytes.fromhex(h) for h in packets.split())
    body = (b"\x00\x04MQTT\x04" + bytes([0x80 | 0x40 | 0x20 | 0x08 | 0x04]) + b"\x00\x1e"
            + b"\x00\x04dev1" + b"\x00\x0dp/dev1/status" + b"\x00\x03off"
            + b"\x00\x01u" + b"\x00\x02pw")
    assert connect == bytes([0x10, len(body)]) + body
    assert subscribe == b"\x82\x12\x00\x01\x00\x0dp/dev1/config\x01"
    assert publish == b"\x32\x12\x00\x0bp/dev1/data\x00\x02xyz"


WIRE = r"""
import wire
nan = float("nan")
ROWS = %r
CHANNELS = %r
SCALES = %r
nch = len(CHANNELS)
# as agentinit.setup: descriptor bytes with code 0, then this batch's and each channel's codes
names = b"".join(bytes([len(c) - 1]) + c.encode() for c in CHANNELS)
codes = bytearray(nch) + bytearray(0 if s is None else s + 8 for s in SCALES)
for start, n, period, anoms in %r:
    buf = bytearray(20 + len(names) + (n + 7) // 8 + 4 * nch * n)
    vals = bytearray(6 * nch * n)
    for i in range(n):
        wire.put(vals, i, ROWS[start + i], codes)
    k = wire.encode(buf, 7, 100, 1700000000, names, nch, vals, n, period, anoms, codes)
    print(bytes(buf[:k]).hex())
"""

NAN = float("nan")
# (channels, scales, rows, batches as (first row, records, period_ms, anomalies))
WIRE_CASES = {
    "float32": (["temp", "hum"], [None, None],
                [[21.5, None], [1.0, 2.0], [3.0, 4.0], [21.5, 40.0]],
                [(0, 3, 1000, [1]), (3, 1, None, [])]),
    # int16 counts, missing values, the rounding (half to even) of the codec
    "scaled": (["temp", "hum", "pressure", "ah", "nox_gt"], [-2, -2, -1, -4, 0],
               [[21.53, 40.125, 1013.25, 0.7577538251293606, 166.0],
                [None, 47.699999809265, None, 2.231, -200.5],
                [-0.005, 0.015, 3276.7, -3.2767, 32767.0],
                [20.005, NAN, 1012.35, 0.00005, -32767.0]],
               [(0, 4, 1000, [0, 3]), (1, 1, None, [])]),
    # a value out of int16 range sends that channel as float32 in its batch only
    "fallback": (["temp", "hum", "cpu_temp", "x"], [-2, -2, 1, None],
                 [[21.5, 40.0, 10.0, 1.5], [327.68, 41.0, 327674.0, None],
                  [-400.0, None, -327675.0, 2.0], [22.25, 42.0, 20.0, 3.0]],
                 [(0, 3, 1000, [2]), (3, 1, 500, []), (0, 1, None, [])]),
}


@pytest.mark.parametrize("case", sorted(WIRE_CASES))
def test_firmware_batch_bytes_equal_the_shared_codec(tmp_path: Path, case: str) -> None:
    channels, scales, rows, batches = WIRE_CASES[case]
    script = tmp_path / "encode_check.py"
    script.write_text(WIRE % (rows, channels, scales, batches))
    done = micropython_host.run(script)
    assert done.returncode == 0, done.stderr
    got = [bytes.fromhex(h) for h in done.stdout.split()]
    want = []
    for start, n, period, anoms in batches:
        batch = Batch(7, 100, 1700000000, channels, rows[start:start + n], period, anoms)
        want.append(encode_binary(batch, scales))
    assert got == want
    if case == "fallback":  # first batch: temp and cpu_temp float32, hum int16
        assert [got[0][20 + k] >> 4 for k in (0, 5, 9, 18)] == [0, 6, 0, 0]
        assert [got[1][20 + k] >> 4 for k in (0, 5, 9, 18)] == [6, 6, 9, 0]


def test_unacknowledged_publish_is_resent_with_dup_then_fails(tmp_path: Path) -> None:
    script = tmp_path / "dup.py"
    script.write_text(FAKE.split("import mqttinit")[0] + r'''
sock.inp = INCOMING[:4]  # CONNACK only: no PUBACK will ever come
import mqttinit
c = mqtt.MQTTClient(mqttinit.settings("dev1", "h", keepalive=30, timeout_ms=100, retries=1))
import mqttrare
mqttrare.connect(c, clean_session=True)
n1 = len(sock.out)
try:
    c.publish("a/b", b"x", qos=1)
except OSError as e:
    print("error", e.errno)
print(bytes(sock.out[n1:]).hex())
''')
    done = micropython_host.run(script, extra_path=[HOST_SHIMS])
    assert done.returncode == 0, done.stderr + done.stdout
    error, sent = done.stdout.strip().splitlines()
    assert error == "error 110"  # ETIMEDOUT: the caller's one reconnect path takes over
    first = b"\x32\x08\x00\x03a/b\x00\x01x"
    assert bytes.fromhex(sent) == first + bytes([0x3A]) + first[1:]  # same packet id, DUP set
