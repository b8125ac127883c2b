"""10,000 hostile payloads on data topics: all rejected with a reason, the service stays up,
and valid readings sent in between are all stored."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gateway.ingest.validate import ReadingRejected, Validator
from gateway.rigs.broker import PrivateBroker
from gateway.store import Changes
from shared.codec import Batch, encode_binary, encode_json

from .helpers import publisher, status, wait_for, write_config

FUZZ = 10_000
GOOD_EVERY = 100


def _template(rng: random.Random) -> Batch:
    channels = rng.sample(["temp", "hum", "pressure", "co2", "x"], rng.randint(1, 4))
    n = rng.randint(1, 12)
    values = [[rng.uniform(0, 50) for _ in channels] for _ in range(n)]
    batch = Batch(rng.randint(0, 9), rng.randint(0, 10**6), rng.choice([0, 1_700_000_000]),
                  channels, values, rng.choice([None, 1000]),
                  sorted(rng.sample(range(n), rng.randint(0, n))))
    return batch


def _json_shaped(rng: random.Random) -> bytes:
    doc = json.loads(encode_json(_template(rng))) if rng.random() < 0.3 else {
        "v": 1, "boot": 1, "seq": 1, "t": 0, "channels": ["temp"], "values": [[1.0]]}
    junk = [None, -1, 2**40, 1.5, "x", [], {}, [[None]], ["temp"] * 20, True, "A" * 40,
            [[1e39]], [["1"]], [[1, 2]]]
    key = rng.choice(["v", "boot", "seq", "t", "channels", "values", "period_ms",
                      "anomalies", "extra"])
    doc[key] = rng.choice(junk)
    if rng.random() < 0.2:
        width = len(doc["channels"]) if isinstance(doc.get("channels"), list) else 1
        doc["values"] = [[rng.choice([-500.0, 1e6, 250.0])] * width]
    return json.dumps(doc).encode()


def _mutated_binary(rng: random.Random) -> bytes:
    data = bytearray(encode_binary(Batch(1, 5, 0, ["temp", "hum"],
                                         [[20.0, 50.0]] * rng.randint(1, 5))))
    choice = rng.random()
    if choice < 0.3:
        return bytes(data[:rng.randrange(len(data))])
    if choice < 0.5:
        return bytes(data) + bytes(rng.randint(1, 8))
    if choice < 0.7:
        off = len(data) - 4 * rng.randint(1, 2)
        data[off:off + 4] = struct.pack(">f", rng.choice([float("inf"), -1e30, 1e30, 200.0]))
        return bytes(data)
    for _ in range(rng.randint(1, 3)):
        data[rng.randrange(16 + 2)] = rng.randrange(256)
    return bytes(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=8)
json_docs = st.fixed_dictionaries(
    {}, optional={k: json_values for k in ("v", "boot", "seq", "t", "channels", "values",
                                           "period_ms", "anomalies")})
def _cut_and_flip(channels: list[str], n: int, cut: int, flip: int) -> bytes:
    """A valid binary batch, cut short at ``cut`` or with byte ``cut`` xor-ed by ``flip``."""
    data = bytearray(encode_binary(Batch(1, 0, 0, channels, [[25.0] * len(channels)] * n)))
    if flip and cut < len(data):
        data[cut] ^= flip
        return bytes(data)
    return bytes(data[:cut])


binaries = st.builds(
    _cut_and_flip,
    st.lists(st.sampled_from(["temp", "hum", "co2", "x"]), min_size=1, max_size=4, unique=True),
    st.integers(1, 8), st.integers(0, 80), st.integers(0, 255))


def hypothesis_payloads(count: int) -> list[bytes]:
    """Payloads drawn by hypothesis's engine: JSON-shaped documents, cut and flipped binary
    batches, raw bytes."""
    out: list[bytes] = []

    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(json_docs.map(lambda d: json.dumps(d).encode()), binaries,
                     st.binary(max_size=80)))
    def collect(payload: bytes) -> None:
        out.append(payload)

    collect()
    return out


def hostile_payloads(seed: int, count: int) -> list[bytes]:
    """A tenth from hypothesis, the rest random bytes, JSON-shaped junk and mutated binary
    batches; only those the validator rejects are kept (a mutation can still be valid, and one
    that only puts a value out of range is stored with that value missing)."""
    rng = random.Random(seed)
    keys: dict[str, int] = {}
    check = Validator("p", resolve=lambda d: keys.setdefault(d, 1),
                      channel_set=lambda names: 1)
    out: list[bytes] = []
    makers = [lambda r: bytes(r.randrange(256) for _ in range(r.randint(0, 64))),
              lambda r: b"\x01" + bytes(r.randrange(256) for _ in range(r.randint(0, 40))),
              lambda r: b"{" + bytes(r.randrange(32, 127) for _ in range(r.randint(0, 40))),
              _json_shaped, _mutated_binary]
    def keep(payload: bytes) -> None:
        try:
            check.add("p/x/data", payload, 0.0, Changes())
        except ReadingRejected:
            out.append(payload)

    for payload in hypothesis_payloads(count // 10):
        keep(payload)
    while len(out) < count:
        keep(rng.choice(makers)(rng))
    rng.shuffle(out)
    return out[:count]


def test_hostile_payloads_are_rejected_and_counted(tmp_path: Path, broker: PrivateBroker,
                                                  prefix: str, gateway_process: type) -> None:
    payloads = hostile_payloads(20240601, FUZZ)
    config = write_config(tmp_path, broker, prefix, store={"quarantine_rows": 500})
    gateway = gateway_process(config).start()
    client = publisher(broker, f"{prefix}-fuzz")
    good = 0
    infos = []
    for i, payload in enumerate(payloads):
        device = f"fz{i % 7}"
        infos.append(client.publish(f"{prefix}/{device}/data", payload, qos=1))
        if i % GOOD_EVERY == 0:
            batch = Batch(1, good * 5, 0, ["temp"], [[21.0]] * 5)
            infos.append(client.publish(f"{prefix}/good/data", encode_binary(batch), qos=1))
            good += 1
    for info in infos:
        info.wait_for_publish(60)
    doc = wait_for(lambda: (d := status(config))["rejected"] >= FUZZ
                   and d["devices"].get("good", {}).get("stored") == good * 5 and d, 50,
                   "all payloads handled")
    assert gateway.proc.poll() is None  # still up
    assert doc["rejected"] == FUZZ
    assert sum(doc["rejected_by_reason"].values()) == FUZZ
    # out-of-range values are stored as missing, not rejected: only what fails the codec is left
    assert set(doc["rejected_by_reason"]) == {"decode"}
    assert doc["devices"]["good"]["stored"] == good * 5 == 500
    assert doc["stored"] == 500  # nothing of the fuzz was stored
    assert doc["quarantine"] == 500  # bounded
    client.loop_stop()
    client.disconnect()
