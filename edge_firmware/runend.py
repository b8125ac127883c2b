# The end of a host run (--count): the planned stop and the run summary, the
# last stdout line that `sim`, the tests and the bench read.
import gc
import json
import sys

from micropython import const

# indexes in Agent.stats (agent.py)
_MADE = const(0)
_ACKED = const(1)
_ANOMALIES = const(2)
_CONNECTS = const(3)
_RADIO_MS = const(4)
_RADIO_BATCHES = const(5)
_HEAP_MIN_FREE = const(6)


def finish(agent):
    """Planned stop (host runs with --count), after the offline status: clean
    DISCONNECT, position saved, the run summary as the last stdout line."""
    c = agent.client  # DISCONNECT (as mqttrare.disconnect: one rare module at a time)
    try:  # noqa: SIM105
        c._write(b"\xe0\x00")
    except OSError:
        pass
    c.close()
    __import__("state").save(agent.boot, agent.seq)
    sys.modules.pop("state", None)
    print(json.dumps(summary(agent)))
    return 0


def summary(agent):
    total = gc.mem_free() + gc.mem_alloc()  # the heap's size
    s = agent.stats
    return {"boot": agent.boot, "made": s[_MADE], "acked": s[_ACKED],
            "drops": agent.buf.drops, "heap_peak": total - s[_HEAP_MIN_FREE],
            "heap_total": total, "radio_ms": s[_RADIO_MS],
            "radio_batches": s[_RADIO_BATCHES], "connects": s[_CONNECTS],
            "resent": agent.client.resent, "anomalies": s[_ANOMALIES]}
