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
    # stage 2 in a module of its own: the validating lifetime never loads it
    # (its names are interned for good, and they would push stage 1 past
    # 140 interned strings, into a fifth, 160-entry string pool)
    # (its code goes to the bottom of the heap where this document was: it reads
    # valid.json again, so that the long-lived buffers it makes next are not
    # interleaved with the holes of a freed document; measured at 32 KB)
    wake = v["wake"]
    v = None
    __import__("gc").collect()
    import bootrun

    v = bootrun.run(wake, count)
    sys.modules.pop("bootrun", None)
    return v
