# Boot sequence, in two stages so the config schema never shares RAM with the agent.
#
# MicroPython never frees an interned string, and loading the schema modules
# interns some 200 names. So the full validation runs in an interpreter
# lifetime of its own: when config.json or remote.json changed since the last
# validation (stage 1), confcheck.py runs the shared schema over the whole
# config, the result goes to valid.json with the CRC32 of the files it came
# from, and the interpreter restarts (machine.soft_reset() on a board; exit
# code 5 on a host, where `learnae-gateway sim` starts the firmware again).
# Stage 2 (valid.json matches the files) reads the validated config with plain
# json, moves the boot counter on, opens the sensors and hands everything to
# the Agent. When valid.json cannot be written (flash full) the firmware stops
# with a message, as for an invalid config.
import binascii
import json
import sys

HOST = sys.platform in ("linux", "darwin")


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return default


def _crc(path):
    try:
        with open(path, "rb") as f:
            return binascii.crc32(f.read())
    except OSError:
        return -1


def _woke(conf):
    # a wake from deep sleep keeps the boot number (and the pending readings)
    # the firmware's own word (state.save), not the reset cause (see state.py)
    return conf["power_mode"] == "deep_sleep" and load_json("state.json", {}).get("asleep") == 1


def prepared():
    """The validated config (conf, channels, rejected, wake) as a dict, or (stage 1)
    the key of the files to validate."""
    key = "%x.%x" % (_crc("config.json"), _crc("remote.json"))
    v = load_json("valid.json")
    if v is None or v.get("key") != key:
        return key
    if v.get("wake"):  # set by stage 1 before its restart: consume it once
        v["wake"] = False
        with open("valid.json", "w") as f:
            json.dump(v, f)
        v["wake"] = True
    else:
        v["wake"] = _woke(v["conf"])
    return v


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


def boot(argv=None):
    """The Agent's arguments as a tuple (see agentinit.setup), an exit code, or
    (stage 1) the key of the files to validate."""
    argv = sys.argv[1:] if argv is None else argv
    count = None
    if "--count" in argv:
        count = int(argv[argv.index("--count") + 1])
    try:
        v = prepared()
    except (OSError, ValueError) as exc:
        # Without a valid config there is nothing to do: say why and stop
        # (a board stays reachable over USB for a fix).
        print("config error:", exc)
        return 2
    if isinstance(v, str):
        return v  # main.py drops this module, then runs confcheck
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
    # then the batch buffers (agentinit.shape checks the sizes) and the RAM
    # batch slots: long-lived, each a block of its own, made before the one-shot
    # modules below leave their holes (measured: these were the allocations
    # that failed at the 32 KB cap once the Agent's construction had run)
    c = len(v["channels"])
    bs = conf["batch_size"]
    k = 20 + (bs + 7) // 8 + 4 * c * bs
    for name in v["channels"]:
        k += 1 + len(name)
    bufs = (bytearray(6 * c * bs), bytearray(k), bytearray(k * conf["buffer"]["ram_batches"]))
    st = boot_state(v["wake"])
    drivers, errors = open_sensors(conf, board)
    # A sensor's parameters now live in its driver: keep what the run reads
    # (a remote config is merged into this; every boot validates in full).
    conf["sensors"] = [{"type": s["type"], "channels": s["channels"],
                        "resolution": s.get("resolution")} for s in conf["sensors"]]
    conf.pop("v", None)
    conf.pop("board", None)
    # the caller builds the Agent after dropping this module (its RAM is needed)
    return (conf, board, v["channels"], drivers, errors, st, count, v["rejected"], rbuf,
            dog[0], dog[1], bufs)
