# Status document (retained on <prefix>/<device>/status), first half: state,
# version, heap, buffer, link; status2.py writes the rest. The run summary and
# the planned stop are in runend.py (this module is loaded at every connect).
import gc
import json
import sys
import time

from micropython import const

_HEAP_MIN_FREE = const(6)  # in Agent.stats (agent.py)

# The document goes out in pieces (mqtt.publish takes a tuple of them): one
# string of ~750 bytes, grown while it is formatted, was the largest transient
# of a status publish and the first allocation to fail at the 32 KB cap
# (docs/firmware.md, Memory). The two halves are two modules, loaded one after
# the other (Agent.publish_status): the status publish was the tightest moment
# once the others had shrunk, and the second half's code then loads only once
# the first half's is gone. Values that may be strings, None or dicts go
# through json.dumps, numbers through %d. The pieces' templates are literals
# in dumps(), not module globals: this module's globals then fit an 11-slot
# table (13 names took 17 slots, a 272-byte block that was the allocation to
# fail at a 28 KB heap).


def dumps(agent, online=True):
    """The first half of the status document as a tuple of strings (JSON text
    once joined with status2.dumps)."""
    free = gc.mem_free()
    s = agent.stats
    if free < s[_HEAP_MIN_FREE]:
        s[_HEAP_MIN_FREE] = free
    d = json.dumps
    # the version the OTA pointer names (otaboot.py), None: the factory files
    # (no update ever came without a last.json, the last update's outcome: one
    # failed open less, a few bytes, at the 32 KB cap); the pointer is parsed
    # from the file as a stream, not read into one block of its size
    fw = None
    try:
        __import__("os").stat("ota/last.json")
        with open("ota/fw.json") as f:
            fw = json.load(f).get("version")
    except (OSError, ValueError, AttributeError):
        pass
    rssi = None  # no Wi-Fi (a host, an Ethernet board)
    if agent.conf["wifi"]:
        rssi = __import__("netif").rssi()
        sys.modules.pop("netif", None)
    peak = gc.mem_free() + gc.mem_alloc() - s[_HEAP_MIN_FREE]
    return (
        '{"state":"%s","fw":%s,"board":%s,"boot":%d,"seq":%d,"uptime_s":%d,' % (
            "online" if online else "offline",
            d(fw or FACTORY), d(agent.board.get("board", "unknown")),
            agent.boot, agent.seq, time.ticks_diff(time.ticks_ms(), agent.start) // 1000),
        '"heap_free":%d,"heap_min_free":%d,"heap_peak":%d,"buffer":%d,"drops":%d,'
        '"spool_bad":%d,' % (free, s[_HEAP_MIN_FREE], peak, len(agent.buf), agent.buf.drops,
                             int(_file("spoolbad") or 0)),
        # the link's facts in one entry (rssi, whether TCP_NODELAY took, the
        # clock's drift from the gateway's time)
        '"link":{"rssi":%s,"tcp_nodelay":%s,"clock_drift_s":%s},"last_error":%s,' % (
            d(rssi), d(agent.client.nodelay), d(agent.t_drift), d(agent.last_error)))


def _file(path):
    # a small state file's text, or None, read to its size: f.read() alone
    # starts with a 256-byte buffer, a block that failed at 32 KB on the first
    # boot of an update (status2.py reads ota/last.json the same way)
    try:
        n = __import__("os").stat(path)[6]
        with open(path) as f:
            return f.read(n)
    except OSError:
        return None


FACTORY = "0.1.0"  # the version of the files flashed over USB
