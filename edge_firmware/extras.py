# Rare agent steps, loaded when needed: a lost connection, applying a new
# config, a commanded reboot.
import json
import sys
import time


def down(agent, exc):
    """The one reconnect path (Agent.connect, Agent.service): the socket closed,
    the error recorded, the next attempt scheduled with exponential backoff
    and jitter."""
    agent.up = False
    agent.client.close()
    agent.last_error = "%s: %s" % (type(exc).__name__, exc)
    agent.status_dirty = True
    print("down:", agent.last_error)
    r = time.ticks_diff(time.ticks_us(), 0) & 0xFF
    jitter = agent.backoff * r // 512  # up to half the delay
    agent.next_try = time.ticks_add(time.ticks_ms(), agent.backoff // 2 + jitter)
    agent.backoff = min(agent.backoff * 2, agent.client.backoff_max)


def apply_conf(agent, new):
    old = agent.conf
    agent.conf = new
    if new["batch_size"] != old["batch_size"]:
        agent.close_batch()
        size = __import__("agentinit").shape(agent, new["batch_size"])
        sys.modules.pop("agentinit", None)
        b = agent.buf
        if size > b.slot_size:  # larger batches: larger RAM slots, same settings
            spill_all(b)
            agent.buf = None
            agent.buf = __import__("buffer").Buffer(size, b.n_slots, b.max_segments,
                                                    b.segment_bytes)
            b = None
            sys.modules.pop("agentinit", None)


def spill_all(buf):
    """Every RAM batch to flash (before a planned reset; sleepmode.py has its own)."""
    while buf.count and buf.max_segments:
        buf.spill_one()


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
            return __import__("sleepmode").sleep(agent)
    if agent.reboot:
        agent.close_batch()
        spill_all(agent.buf)
        __import__("state").save(agent.boot, agent.seq)
        sys.modules.pop("state", None)
        c = agent.client  # DISCONNECT (as mqttrare.disconnect: one rare module at a time)
        try:  # noqa: SIM105
            c._write(b"\xe0\x00")
        except OSError:
            pass
        c.close()
        __import__("machine").reset()
        return 4
    return None


