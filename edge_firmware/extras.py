# Rare agent steps, loaded when needed: watchdog start, applying a new config,
# a commanded reboot, the planned stop of a host run, deep sleep entry.
import json
import struct
import sys

import machine


def start_watchdog(agent):
    ms = agent.conf["watchdog_ms"]
    if ms and hasattr(machine, "WDT"):
        ms = min(ms, agent.board.get("wdt_max_ms", ms))
        try:
            agent.wdt = machine.WDT(timeout=ms)
        except (ValueError, OSError) as exc:
            agent.last_error = "watchdog: %s" % (exc,)
    sys.modules.pop("machine", None)  # the host's stand-in module (a board's is built in)


def apply_conf(agent, new):
    old = agent.conf
    agent.conf = new
    if new["batch_size"] != old["batch_size"]:
        agent.close_batch()
        __import__("agentinit").shape(agent, new["batch_size"])
        sys.modules.pop("agentinit", None)
        if agent.slot > agent.buf.slot_size:
            agent.buf.spill_all()
            b = new["buffer"]
            agent.buf = None
            agent.buf = __import__("buffer").Buffer(agent.slot, b["ram_batches"],
                                                    b["spool_segments"], b["segment_bytes"])


def take_pending_conf(agent):
    new, doc = agent.pending_conf
    agent.pending_conf = None
    apply_conf(agent, new)
    try:
        with open("remote.json", "w") as f:
            json.dump(doc, f)
    except OSError as exc:
        agent.last_error = "remote config not saved: %s" % (exc,)


def between_events(agent):
    """Apply a pending config or reboot; return an exit code when the loop must end."""
    if agent.pending_conf is not None:
        take_pending_conf(agent)
        if agent.conf["power_mode"] == "deep_sleep":
            agent.close_batch()
            return sleep(agent)
    if agent.reboot:
        agent.close_batch()
        agent.buf.spill_all()
        __import__("state").save(agent.boot, agent.seq)
        agent.client.disconnect()
        machine.reset()
        return 4
    return None


def finish(agent):
    """Planned stop (host runs with --count): offline status, clean DISCONNECT."""
    try:
        agent.publish_status(online=False)
    except OSError as exc:
        agent.last_error = str(exc)
    agent.client.disconnect()
    __import__("state").save(agent.boot, agent.seq)
    status = __import__("status")
    print(json.dumps(status.summary(agent)))
    sys.modules.pop("status", None)
    return 0


def sleep(agent):
    agent.buf.spill_all()
    import state

    c = len(agent.channels)
    pending = []
    for i in range(agent.n):  # the unfinished batch, unpacked (NaN = missing)
        row = list(struct.unpack_from(">%df" % c, agent.vals, 4 * c * i))
        pending.append([None if x != x else x for x in row])
    state.save(agent.boot, agent.seq, pending, agent.anoms)
    machine.deepsleep(agent.conf["period_ms"])
    return 3
