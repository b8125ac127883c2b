"""The offline buffer under the MicroPython unix port: a push while a batch is in flight."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import micropython_host

# A batch is pushed while the oldest one is peeked and waiting for its PUBACK
# ({"cmd": "flush"} runs inside the MQTT read loop): RAM is full, so the
# peeked batch is spilled to flash or dropped. The PUBACK's pop() must not then
# forget the next batch, which was never sent.
SCRIPT = """
import sys
import buffer
b = buffer.Buffer(16, 2, int(sys.argv[1]), 64)
def batch(seq):
    x = bytearray(16)
    x[0] = 1
    x[3] = 1
    x[11] = seq
    return x
def push(b, data):  # as the agent does: the batch written into its slot, then queued
    b.slot()[:len(data)] = data
    b.commit(len(data))
push(b, batch(0))
push(b, batch(1))
b.peek()
push(b, batch(2))
b.pop()
out = []
while True:
    d = b.peek()
    if d is None:
        break
    out.append(d[11])
    b.pop()
print(out, b.drops)
"""


@pytest.mark.parametrize(("segments", "expected"), [(0, "[1, 2] 1"), (2, "[0, 1, 2] 0")])
def test_push_during_a_publish_loses_no_unsent_batch(tmp_path: Path, segments: int,
                                                     expected: str) -> None:
    script = tmp_path / "push_in_flight.py"
    script.write_text(SCRIPT)
    done = micropython_host.run(script, str(segments), heap="64k", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # without a spool the in-flight batch is dropped (and counted); with one it
    # is sent again from flash (the gateway deduplicates); batch 1 always goes
    assert done.stdout.strip() == expected
