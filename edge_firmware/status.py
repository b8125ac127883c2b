# Status document (retained on <prefix>/<device>/status); the run summary and
# the planned stop are in runend.py (this module is loaded at every connect).
import gc
import json
import sys
import time


def _rssi(agent):
    if not agent.conf["wifi"]:
        return None  # no Wi-Fi (a host, an Ethernet board)
    import netif

    try:
        return netif.rssi()
    finally:
        sys.modules.pop("netif", None)


def dumps(agent, online=True):
    return json.dumps(status(agent, online), separators=(",", ":"))  # compact: less RAM


def status(agent, online=True):
    free = gc.mem_free()
    if free < agent.heap_min_free:
        agent.heap_min_free = free
    doc = {
        "state": "online" if online else "offline",
        "fw": "0.1.0",
        "board": agent.board.get("board", "unknown"),
        "boot": agent.boot,
        "seq": agent.seq,
        "uptime_s": time.ticks_diff(time.ticks_ms(), agent.start) // 1000,
        "heap_free": free,
        "heap_min_free": agent.heap_min_free,
        "heap_peak": gc.mem_free() + gc.mem_alloc() - agent.heap_min_free,
        "buffer": len(agent.buf),
        "drops": agent.buf.drops,
        # the link's facts in one entry: a status dict's every top-level key is
        # one slot of a table that must fit the fragmented heap in one piece
        "link": {"rssi": _rssi(agent), "tcp_nodelay": agent.client.nodelay,
                 "clock_drift_s": agent.t_drift},
        "last_error": agent.last_error,
        "sensor_errors": agent.sensor_errors,
        "config_rejected": agent.config_rejected,
        "model": None if agent.model is None else "%08x" % agent.model.crc,
        "model_error": agent.model_error,
        "anomalies": agent.anomalies,
        "made": agent.made,
        "acked": agent.acked,
        "connects": agent.connects,
        "period_ms": agent.conf["period_ms"],
        "batch_size": agent.conf["batch_size"],
        "power_mode": agent.conf["power_mode"],
        "radio_ms": agent.radio_ms,
        "radio_batches": agent.radio_batches,
    }
    return doc
