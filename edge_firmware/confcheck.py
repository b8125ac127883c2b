# Stage 1 of the boot (see startup.py): the full shared schema over config.json
# and a saved remote.json. Loaded only in the interpreter lifetime that
# validates; the agent's lifetime never loads it.
import gc
import json
import sys


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return None


def validate(key):
    """The validated config as a dict for valid.json (``wake`` is filled in by the caller)."""
    doc = _load("config.json")
    if doc is None:
        raise OSError("no config.json")
    from shared import config as schema

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
