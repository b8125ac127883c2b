"""Device config schema: ``/config.json`` on a board, also sent (in part) as remote config.

Runs unchanged under CPython and MicroPython. ``validate_device_config(doc)``
checks a whole device config and returns it with defaults filled in;
``merge_remote_config(current, doc)`` applies the subset of keys the gateway may
change at run time (``REMOTE_KEYS``) and returns a new, validated config.
Every rejection is a ProtocolError naming the field and the offending value.
"""

from shared.checks import (
    check_bool,
    check_device_id,
    check_dict,
    check_int,
    check_num,
    check_prefix,
    check_str,
    check_unknown,
    is_int,
    with_defaults,
)
from shared.errors import ProtocolError
from shared.sensor_config import validate_sensor

SCHEMA_VERSION = 1
MAX_CHANNELS = 16
# The limits used only here are literals below (sensors 1..8, batch_size 1..255,
# period_ms up to a day, power_mode always_on or deep_sleep): on a board each
# module-level name is an interned string for good, and validating a config
# stays under 141 of them that way (docs/firmware.md, Memory).

_MQTT_DEFAULTS = {"host": "127.0.0.1", "port": 1883, "username": None, "password": None,
                  "topic_prefix": "learnae", "keepalive_s": 30, "tls": False,
                  "timeout_ms": 5000, "client_id": None, "max_incoming": 4096,
                  "backoff_max_ms": 30000}
_BUFFER_DEFAULTS = {"ram_batches": 8, "spool_segments": 8, "segment_bytes": 4096}
_TOP_DEFAULTS = {"v": SCHEMA_VERSION, "board": None, "wifi": None, "period_ms": 1000,
                 "batch_size": 20, "power_mode": "always_on", "thresholds": {},
                 "status_every_s": 60, "watchdog_ms": 30000,
                 "ntp": False, "buffer": None}  # type: dict
# Keys a retained config message may change without a reboot.
REMOTE_KEYS = ("period_ms", "batch_size", "thresholds", "power_mode", "status_every_s")


def _thresholds(doc, channels):
    check_dict("thresholds", doc)
    out = {}
    for name in doc:
        if name not in channels:
            raise ProtocolError("thresholds channel %r is not one of %s"
                                % (name, ", ".join(channels)))
        pair = doc[name]
        if not isinstance(pair, list) or len(pair) != 2:
            raise ProtocolError("thresholds[%r] %r is not [low, high]" % (name, pair))
        lo, hi = pair
        if lo is not None:
            lo = check_num("thresholds[%r] low" % name, lo, -3.3e38, 3.3e38)
        if hi is not None:
            hi = check_num("thresholds[%r] high" % name, hi, -3.3e38, 3.3e38)
        if lo is not None and hi is not None and lo > hi:
            raise ProtocolError("thresholds[%r] low %r exceeds high %r" % (name, lo, hi))
        out[name] = [lo, hi]
    return out


def channels_of(config):
    """All channel names of a validated config, in sensor order."""
    out = []
    for sensor in config["sensors"]:
        out.extend(sensor["channels"])
    return out


def validate_device_config(doc):
    """Check a whole device config; return a new dict with every default filled in."""
    check_dict("device config", doc)
    check_unknown("device config", doc, ("device_id", "mqtt", "sensors") + tuple(_TOP_DEFAULTS))  # noqa: RUF005
    for key in ("device_id", "mqtt", "sensors"):
        if key not in doc:
            raise ProtocolError("device config is missing %r" % key)
    out = with_defaults(doc, _TOP_DEFAULTS)
    if out["v"] != SCHEMA_VERSION or not is_int(out["v"]):
        raise ProtocolError("v %r is not supported (expected %d)" % (out["v"], SCHEMA_VERSION))
    out["device_id"] = check_device_id(doc["device_id"])
    check_str("board", out["board"], optional=True, max_len=32)
    wifi = out["wifi"]
    if wifi is not None:
        check_dict("wifi", wifi)
        check_unknown("wifi", wifi, ("ssid", "password", "timeout_ms"))
        check_str("wifi.ssid", wifi.get("ssid"), max_len=32)
        check_str("wifi.password", wifi.get("password"), optional=True, max_len=64)
        # how long one join may take before the agent backs off and tries again
        join_ms = wifi.get("timeout_ms", 15000)
        check_int("wifi.timeout_ms", join_ms, 500, 120000)
        out["wifi"] = {"ssid": wifi["ssid"], "password": wifi.get("password"),
                       "timeout_ms": join_ms}
    mqtt = check_dict("mqtt", doc["mqtt"])
    check_unknown("mqtt", mqtt, tuple(_MQTT_DEFAULTS))
    mqtt = with_defaults(mqtt, _MQTT_DEFAULTS)
    at = "mqtt."  # + a key: interned already, unlike "mqtt.host" (see the limits above)
    check_str(at + "host", mqtt["host"], max_len=253)
    check_int(at + "port", mqtt["port"], 1, 65535)
    check_str("mqtt.username", mqtt["username"], optional=True)
    check_str("mqtt.password", mqtt["password"], optional=True)
    check_prefix(mqtt["topic_prefix"])
    check_int("mqtt.keepalive_s", mqtt["keepalive_s"], 5, 3600)
    check_bool(at + "tls", mqtt["tls"])
    check_int("mqtt.timeout_ms", mqtt["timeout_ms"], 100, 60000)
    check_str("mqtt.client_id", mqtt["client_id"], optional=True, max_len=23)
    check_int("mqtt.max_incoming", mqtt["max_incoming"], 256, 65536)
    check_int("mqtt.backoff_max_ms", mqtt["backoff_max_ms"], 100, 3600000)
    out["mqtt"] = mqtt
    sensors = doc["sensors"]
    if not isinstance(sensors, list) or not 1 <= len(sensors) <= 8:
        raise ProtocolError("sensors %r is not a list of 1 to %d sensors" % (sensors, 8))
    out["sensors"] = [validate_sensor(i, s) for i, s in enumerate(sensors)]
    names = channels_of(out)
    if len(names) > MAX_CHANNELS:
        raise ProtocolError("channel count %d exceeds %d" % (len(names), MAX_CHANNELS))
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ProtocolError("channel name %r is repeated" % (name,))
    buf = out["buffer"]
    buf = with_defaults(check_dict("buffer", {} if buf is None else buf), _BUFFER_DEFAULTS)
    check_unknown("buffer", out["buffer"] or {}, tuple(_BUFFER_DEFAULTS))
    check_int("buffer.ram_batches", buf["ram_batches"], 1, 256)
    check_int("buffer.spool_segments", buf["spool_segments"], 0, 1024)
    check_int("buffer.segment_bytes", buf["segment_bytes"], 256, 1 << 20)
    out["buffer"] = buf
    check_int("status_every_s", out["status_every_s"], 1, 86400)
    check_int("watchdog_ms", out["watchdog_ms"], 0, 3600000)
    check_bool("ntp", out["ntp"])
    _check_runtime(out, names)
    return out


def _check_runtime(doc, names):
    check_int("period_ms", doc["period_ms"], 0, 86400000)
    check_int("batch_size", doc["batch_size"], 1, 255)
    if doc["power_mode"] not in ("always_on", "deep_sleep"):
        raise ProtocolError("power_mode %r is not one of %s"
                            % (doc["power_mode"], ", ".join(("always_on", "deep_sleep"))))
    doc["thresholds"] = _thresholds(doc["thresholds"], names)


def merge_remote_config(current, doc):
    """Apply a remote config message to a validated config; return the new config.

    Only ``REMOTE_KEYS`` may appear (plus ``v``); anything else is rejected so
    a typo never goes unnoticed. ``current`` is not modified.
    """
    check_dict("remote config", doc)
    check_unknown("remote config", doc, REMOTE_KEYS + ("v",))  # noqa: RUF005
    if "v" in doc and (not is_int(doc["v"]) or doc["v"] != SCHEMA_VERSION):
        raise ProtocolError("v %r is not supported (expected %d)" % (doc["v"], SCHEMA_VERSION))
    out = {}
    for key in current:
        out[key] = current[key]
    for key in REMOTE_KEYS:
        if key in doc:
            out[key] = doc[key]
    _check_runtime(out, channels_of(out))
    check_int("status_every_s", out["status_every_s"], 1, 86400)
    return out
