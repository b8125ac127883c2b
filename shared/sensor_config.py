"""Sensor entries of the device config: types, their keys, defaults and channels.

Split from shared.config so a board compiles each part in a smaller heap.
"""

from shared.checks import (
    check_bool,
    check_channel_name,
    check_dict,
    check_int,
    check_num,
    check_str,
    check_unknown,
    is_int,
    with_defaults,
)
from shared.errors import ProtocolError

MAX_CHANNELS = 16

# Per sensor type: the channels it produces by default.
SENSOR_CHANNELS = {
    "simulated": ("temp", "hum"),
    "replay": None,  # named by its "columns"
    "bme280": ("temp", "hum", "press"),
    "dht22": ("temp", "hum"),
    "rp2040_temp": ("cpu_temp",),
    "analog": ("analog",),
}
# Per sensor type: allowed keys besides type/channels, with their default value.
_SENSOR_KEYS = {
    "simulated": {"seed": 1, "anomaly_rate": 0.0, "noise": 0.1, "drift": 0.0,
                  "anomaly_at": [], "fail_at": -1},
    "replay": {"path": "replay.csv", "columns": None, "loop": True},
    "bme280": {"i2c": 0, "address": 0x76},
    "dht22": {"pin": "dht"},
    "rp2040_temp": {},
    "analog": {"pin": "adc0", "scale": 1.0, "offset": 0.0},
}

# Default resolution of a channel by its name, as a decimal exponent (-2: hundredths):
# its values go out as int16 counts of 10**scale units (shared.codec.channel_codes).
# A name not listed goes out as float32. AirQuality names are the sanitized CSV columns.
# One string, not a dict: a board validating its config interns no names for it.
DEFAULT_RESOLUTION = (
    " temp:-2 hum:-2 press:-1 pressure:-1 cpu_temp:-2 analog:-3 voltage:-3"
    " t:-2 rh:-2 ah:-4 co_gt:-1 nmhc_gt:0 c6h6_gt:-2 nox_gt:0 no2_gt:0"
    " pt08_s1_co:-1 pt08_s2_nmhc:-1 pt08_s3_nox:-1 pt08_s4_no2:-1 pt08_s5_o3:-1 ")
SCALE_MIN = -7
SCALE_MAX = 7


def default_resolution(channels):
    """Each channel's default scale (None: float32), from DEFAULT_RESOLUTION."""
    out = []
    for name in channels:
        i = DEFAULT_RESOLUTION.find(" " + name + ":")
        if i < 0:
            out.append(None)
        else:
            i += len(name) + 2
            out.append(int(DEFAULT_RESOLUTION[i:DEFAULT_RESOLUTION.find(" ", i)]))
    return out


def _resolution(where, doc, channels):
    if doc is None:
        return default_resolution(channels)
    if not isinstance(doc, list) or len(doc) != len(channels):
        raise ProtocolError("%s.resolution %r must list %d scales (or null for float32)"
                            % (where, doc, len(channels)))
    for s in doc:
        if s is not None:
            check_int(where + ".resolution[]", s, SCALE_MIN, SCALE_MAX)
    return list(doc)


def _pin(name, x):
    # A pin is a GPIO number or a name looked up in the board file ("dht", "adc0", "LED").
    if is_int(x):
        return check_int(name, x, 0, 255)
    return check_str(name, x, max_len=16)


def validate_sensor(i, doc):
    where = "sensors[%d]" % i
    # a field's name is ``at`` + its key: the keys are interned already (the
    # dicts above), a literal such as ".seed" would be one more interned string
    # on a board (docs/firmware.md, Memory)
    at = where + "."
    check_dict(where, doc)
    kind = doc.get("type")
    if kind not in _SENSOR_KEYS:
        raise ProtocolError("%s.type %r is not one of %s"
                            % (where, kind, ", ".join(sorted(_SENSOR_KEYS))))
    extra = _SENSOR_KEYS[kind]
    check_unknown(where, doc, ("type", "channels", "resolution") + tuple(extra))  # noqa: RUF005
    out = with_defaults(doc, extra)
    out["type"] = kind
    if kind == "simulated":
        check_int(at + "seed", out["seed"], 0, 0xFFFFFFFF)
        out["anomaly_rate"] = check_num(at + "anomaly_rate", out["anomaly_rate"], 0.0, 1.0)
        out["noise"] = check_num(at + "noise", out["noise"], 0.0, 1e6)
        out["drift"] = check_num(at + "drift", out["drift"], -1e6, 1e6)
        marks = out["anomaly_at"]
        if not isinstance(marks, list) or len(marks) > 64:
            raise ProtocolError("%s.anomaly_at %r is not a list of at most 64 seqs"
                                % (where, marks))
        for k in marks:
            check_int(at + "anomaly_at[]", k, 0, 0xFFFFFFFF)
        check_int(at + "fail_at", out["fail_at"], -1, 0xFFFFFFFF)
    elif kind == "replay":
        check_str(at + "path", out["path"])
        check_bool(at + "loop", out["loop"])
        cols = out["columns"]
        if not isinstance(cols, list) or not 1 <= len(cols) <= MAX_CHANNELS:
            raise ProtocolError("%s.columns %r is not a list of 1 to %d CSV column names"
                                % (where, cols, MAX_CHANNELS))
        for col in cols:
            check_str(at + "columns[]", col, max_len=32)
    elif kind == "bme280":
        check_int(at + "i2c", out["i2c"], 0, 7)
        check_int(at + "address", out["address"], 0, 127)
    elif kind == "dht22":
        out["pin"] = _pin(at + "pin", out["pin"])
    elif kind == "analog":
        out["pin"] = _pin(at + "pin", out["pin"])
        out["scale"] = check_num(at + "scale", out["scale"], -1e9, 1e9)
        out["offset"] = check_num(at + "offset", out["offset"], -1e9, 1e9)
    native = SENSOR_CHANNELS[kind]
    if native is None:
        native = [column_channel(c) for c in out["columns"]]
    chans = doc.get("channels", list(native))
    if not isinstance(chans, list) or len(chans) != len(native):
        raise ProtocolError("%s.channels %r must list %d names" % (where, chans, len(native)))
    for name in chans:
        check_channel_name(name, at + "channels[]")
    out["channels"] = list(chans)
    out["resolution"] = _resolution(where, doc.get("resolution"), chans)
    return out


def column_channel(name):
    # "PT08.S1(CO)" -> "pt08_s1_co"; an AirQuality column becomes a valid channel name.
    # Over the bytes, not the characters: on a board each character taken out
    # of a str is an interned string for good (docs/firmware.md, Memory).
    allowed = b"abcdefghijklmnopqrstuvwxyz0123456789_"
    out = bytearray()
    for b in name.lower().encode():
        b = b if b in allowed else 95  # "_"
        if not (b == 95 and out and out[-1] == 95):
            out.append(b)
    return bytes(out).decode().strip("_")[:16] or "x"
