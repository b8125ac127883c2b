# Status document (retained on <prefix>/<device>/status); the run summary and
# the planned stop are in runend.py (this module is loaded at every connect).
import gc
import json
import sys
import time

# The document goes out in pieces (mqtt.publish takes a tuple of them): one
# string of ~750 bytes, grown while it is formatted, was the largest transient
# of a status publish and the first allocation to fail at the 32 KB cap
# (docs/firmware.md, Memory). Values that may be strings, None or dicts go
# through json.dumps, numbers through %d.
_P1 = '{"state":"%s","fw":%s,"board":%s,"boot":%d,"seq":%d,"uptime_s":%d,'
_P2 = '"heap_free":%d,"heap_min_free":%d,"heap_peak":%d,"buffer":%d,"drops":%d,"spool_bad":%d,'
# the link's facts in one entry (rssi, whether TCP_NODELAY took, the clock's drift
# from the gateway's time)
_P3 = '"link":{"rssi":%s,"tcp_nodelay":%s,"clock_drift_s":%s},"last_error":%s,'
_P4 = '"sensor_errors":%s,"config_rejected":%s,"model":%s,"model_error":%s,'
_P5 = '"anomalies":%d,"made":%d,"acked":%d,"connects":%d,'
_P6 = '"period_ms":%d,"batch_size":%d,"power_mode":"%s","radio_ms":%d,"radio_batches":%d'


def dumps(agent, online=True):
    """The status document as a tuple of strings (JSON text once joined)."""
    free = gc.mem_free()
    if free < agent.heap_min_free:
        agent.heap_min_free = free
    d = json.dumps
    conf = agent.conf
    last = _file("ota/last.json")  # the last update's progress or outcome
    # the OTA pointer (otaboot.py), None: the factory files (no update ever came
    # without a last.json: one failed open less, a few bytes, at the 32 KB cap)
    fw = _file("ota/fw.json") if last else None
    rssi = None  # no Wi-Fi (a host, an Ethernet board)
    if conf["wifi"]:
        rssi = __import__("netif").rssi()
        sys.modules.pop("netif", None)
    return (
        _P1 % ("online" if online else "offline", d(json.loads(fw)["version"] if fw else FACTORY),
               d(agent.board.get("board", "unknown")),
               agent.boot, agent.seq, time.ticks_diff(time.ticks_ms(), agent.start) // 1000),
        _P2 % (free, agent.heap_min_free, gc.mem_free() + gc.mem_alloc() - agent.heap_min_free,
               len(agent.buf), agent.buf.drops, int(_file("spoolbad") or 0)),
        _P3 % (d(rssi), d(agent.client.nodelay), d(agent.t_drift), d(agent.last_error)),
        _P4 % (d(agent.sensor_errors), d(agent.config_rejected),
               "null" if agent.model is None else '"%08x"' % agent.model.crc,
               d(agent.model_error)),
        _P5 % (agent.anomalies, agent.made, agent.acked, agent.connects),
        _P6 % (conf["period_ms"], conf["batch_size"], conf["power_mode"], agent.radio_ms,
               agent.radio_batches),
        ',"ota":%s}' % last if last else "}")


def _file(path):
    # a small state file's text, or None (one helper: each function costs RAM)
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


FACTORY = "0.1.0"  # the version of the files flashed over USB
