# The end of a host run (--count): the planned stop and the run summary, the
# last stdout line that `sim`, the tests and the bench read.
import gc
import json
import sys


def finish(agent):
    """Planned stop (host runs with --count), after the offline status: clean
    DISCONNECT, position saved, the run summary as the last stdout line."""
    c = agent.client  # DISCONNECT (as mqttsub.disconnect: one rare module at a time)
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
    return {"boot": agent.boot, "made": agent.made, "acked": agent.acked,
            "drops": agent.buf.drops, "heap_peak": total - agent.heap_min_free,
            "heap_total": total, "radio_ms": agent.radio_ms,
            "radio_batches": agent.radio_batches, "connects": agent.connects,
            "resent": agent.client.resent, "anomalies": agent.anomalies}
