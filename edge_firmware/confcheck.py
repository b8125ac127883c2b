# Stage 1 of the boot (see startup.py): the full shared schema over config.json
# and a saved remote.json, the result saved to valid.json, then a restart.
# Loaded only in the interpreter lifetime that validates (main.py runs it after
# dropping startup.py); the agent's lifetime never loads it.
import gc
import json
import sys


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return None


def run(key):
    """Validate, save valid.json, restart; return the host's exit code (5)."""
    v = validate(key)
    # a wake from deep sleep keeps the boot number (and the pending readings);
    # state.woke() consumes the mark sleepmode.sleep left, so after the soft
    # reset valid.json says so
    # a wake from deep sleep keeps the boot number (and the pending readings):
    # the state file says so (state.save); stage 2 consumes it
    st = _load("state.json") or {}
    v["wake"] = v["conf"]["power_mode"] == "deep_sleep" and st.get("asleep") == 1
    try:
        with open("valid.json", "w") as f:
            json.dump(v, f)
    except OSError as exc:
        print("config error: valid.json not saved:", exc)
        return 2
    if sys.platform in ("linux", "darwin"):
        return 5  # gateway/commands/sim.py: EXIT_REVALIDATED, start me again
    import machine

    machine.soft_reset()
    return 5


def validate(key):
    """The validated config as a dict for valid.json (without ``wake``)."""
    # the schema first, into a heap with nothing else in it (its ~20 KB on
    # this port are the largest load of this lifetime), then the document
    gc.collect()
    from shared import config as schema

    doc = _load("config.json")
    if doc is None:
        raise OSError("no config.json")

    try:
        conf = schema.validate_device_config(doc)
        doc = None
        rejected = None
        remote = _load("remote.json")
        if remote is not None:
            try:
                conf = schema.merge_remote_config(conf, remote)
            except ValueError as exc:
                rejected = "saved remote config: %s" % (exc,)
        channels = schema.channels_of(conf)
    finally:
        schema = None
        for name in ("shared.config", "shared.sensor_config", "shared.checks", "shared.topics",
                     "shared.errors", "shared"):
            sys.modules.pop(name, None)
        gc.collect()
    return {"key": key, "conf": conf, "channels": channels, "rejected": rejected}
