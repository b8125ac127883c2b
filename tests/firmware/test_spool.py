"""The flash spool under the MicroPython unix port: corrupted records, the saved read position."""

from __future__ import annotations

from pathlib import Path

from gateway import micropython_host

# Batches are 16-byte binary v1 records (byte 0 = 1, byte 3 = readings, byte 11
# = a marker). One RAM slot, so every earlier batch spills to the flash spool.
PRELUDE = """
import sys
import buffer
def batch(seq):
    x = bytearray(16)
    x[0] = 1
    x[3] = 1
    x[11] = seq
    return x
def push(b, data):  # as the agent does: the batch written into its slot, then queued
    b.slot()[:len(data)] = data
    b.commit(len(data))
def drain(b):
    out = []
    while True:
        d = b.peek()
        if d is None:
            return out
        out.append(d[11])
        b.pop()
"""

# A reboot between acknowledged batches: a second Buffer in the same
# directory sees only what was not acknowledged.
REBOOT = PRELUDE + """
if sys.argv[1] == "first":
    b = buffer.Buffer(16, 1, 4, 64)
    for s in range(5):
        push(b, batch(s))
    for _ in range(2):
        b.peek()
        b.pop()
    print(len(b))
else:
    b = buffer.Buffer(16, 1, 4, 64)
    print(len(b), drain(b))
"""

# A corrupted length (0xFFFF) in the oldest segment, a truncated record in the
# next; the third segment is intact. The heap (40 KB) cannot hold a 64 KB read.
CORRUPT = PRELUDE + """
with open("spool_0.bin", "wb") as f:
    f.write(bytes((0, 16)))
    f.write(batch(1))
    f.write(b"\\xff\\xff")
    f.write(bytes(40))
with open("spool_1.bin", "wb") as f:
    f.write(bytes((0, 16)))
    f.write(batch(2)[:9])
with open("spool_2.bin", "wb") as f:
    f.write(bytes((0, 16)))
    f.write(batch(3))
b = buffer.Buffer(16, 1, 4, 64)
import spool
print(drain(b), spool.bad_segments())
"""


def run(tmp_path: Path, script: str, *args: str) -> str:
    path = tmp_path / "spool_script.py"
    path.write_text(script)
    done = micropython_host.run(path, *args, heap="40k", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_reboot_does_not_resend_acknowledged_spool_batches(tmp_path: Path) -> None:
    # spool holds 0..3 (4 is in RAM, lost with the reboot); 0 and 1 are acknowledged
    assert run(tmp_path, REBOOT, "first") == "3"
    assert run(tmp_path, REBOOT, "second") == "2 [2, 3]"


def test_a_corrupted_length_skips_its_segment_and_is_counted(tmp_path: Path) -> None:
    # batch 1 before the bad length goes; the bad and the truncated record each
    # cost their segment's rest and are counted; no MemoryError, batch 3 goes
    assert run(tmp_path, CORRUPT) == "[1, 3] 2"
    assert not list(tmp_path.glob("spool_*.bin"))
