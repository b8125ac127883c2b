# Boot stage 2 (see startup.py): the config validated by stage 1 (valid.json),
# the boot counter moved on, the long-lived buffers made, the sensors opened,
# the config trimmed to what the run reads; main.py builds the Agent from the
# result after dropping this module. Never loaded in the validating lifetime.
import sys

from startup import HOST, load_json

# the run's config keys (shared.config; "v" and "board" are not read at run time)
_RUN_KEYS = ("device_id", "wifi", "period_ms", "batch_size", "power_mode", "thresholds",
             "status_every_s", "watchdog_ms", "ntp", "buffer", "mqtt", "sensors")


def _keep(doc, keys):
    out = {}
    for k in keys:
        out[k] = doc[k]
    return out


def boot_state(wake):
    """The saved position; a real boot (not a wake from deep sleep) moves the counter on."""
    import state

    st = state.load()
    if not wake:
        state.new_boot(st)
    else:  # the wake is consumed: a reset from here on is a real boot
        state.save(st[0], st[1])
    sys.modules.pop("state", None)
    return st


def open_sensors(conf, board):
    import sensors

    drivers = [sensors.open_sensor(spec, board) for spec in conf["sensors"]]
    errors = {}
    for i, d in enumerate(drivers):
        if isinstance(d, sensors.Failed):
            errors["%d:%s" % (i, conf["sensors"][i]["type"])] = d.reason
    sys.modules.pop("sensors", None)
    return drivers, errors


def run(wake, count=None):
    """The Agent's arguments as a tuple (see agentinit.setup) from valid.json
    (``wake``: this start is a wake from deep sleep, startup.prepared())."""
    v = load_json("valid.json")
    conf = v["conf"]
    board = load_json("board.json", {"board": "unix" if HOST else "unknown"})
    dog = None, None
    if conf["watchdog_ms"] and conf["power_mode"] == "always_on":
        # armed before the agent is built and first connects (deep sleep wakes
        # run without one: a wake's connect may outlast its timeout)
        import watchdog

        dog = watchdog.start(conf, board)
        sys.modules.pop("watchdog", None)
    # the MQTT receive buffer next, while the heap is still in one piece (the
    # largest long-lived allocation; agentinit.py hands it to the client)
    rbuf = bytearray(conf["mqtt"]["max_incoming"])
    # then the open batch's buffer (agentinit.shape checks its size) and the RAM
    # batch slots: long-lived, each a block of its own, made before the one-shot
    # modules below leave their holes (measured: these were the allocations
    # that failed at the 32 KB cap once the Agent's construction had run)
    c = len(v["channels"])
    bs = conf["batch_size"]
    k = 20 + (bs + 7) // 8 + 4 * c * bs
    for name in v["channels"]:
        k += 1 + len(name)
    bufs = (bytearray(6 * c * bs), bytearray(k * conf["buffer"]["ram_batches"]))
    st = boot_state(wake)
    drivers, errors = open_sensors(conf, board)
    # Keep what the run reads (a remote config is merged into this; every boot
    # validates in full), in dicts rebuilt with this module's literal keys:
    # json.load makes a key a str object of its own on the heap unless that
    # name is interned already (about 75 bytes a key on this port, measured),
    # and these names are interned once for good (the agent's code uses them).
    # A sensor's parameters now live in its driver.
    conf = _keep(conf, _RUN_KEYS)
    conf["buffer"] = _keep(conf["buffer"], ("ram_batches", "spool_segments", "segment_bytes"))
    conf["sensors"] = [{"type": s["type"], "channels": s["channels"],
                        "resolution": s.get("resolution")} for s in conf["sensors"]]
    # the caller builds the Agent after dropping this module (its RAM is needed)
    return (conf, board, v["channels"], drivers, errors, st, count, v["rejected"], rbuf,
            dog[0], dog[1], bufs)
