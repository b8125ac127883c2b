"""Field checks shared by the device config schema modules (CPython and MicroPython).

Each check returns the value or raises ProtocolError naming the field and value.
"""

from shared.errors import ProtocolError

_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def is_num(x):
    return (is_int(x) or isinstance(x, float)) and x == x and -3.4e38 < x < 3.4e38


def check_int(name, x, lo, hi):
    if not is_int(x):
        raise ProtocolError("%s %r is not an integer" % (name, x))
    if not lo <= x <= hi:
        raise ProtocolError("%s %d is outside %d..%d" % (name, x, lo, hi))
    return x


def check_num(name, x, lo, hi):
    if not is_num(x):
        raise ProtocolError("%s %r is not a finite number" % (name, x))
    if not lo <= x <= hi:
        raise ProtocolError("%s %r is outside %r..%r" % (name, x, lo, hi))
    return float(x)


def check_str(name, x, optional=False, max_len=128):
    if x is None and optional:
        return None
    if not isinstance(x, str) or not x:
        raise ProtocolError("%s %r is not a non-empty string" % (name, x))
    if len(x) > max_len:
        raise ProtocolError("%s %r is longer than %d characters" % (name, x, max_len))
    return x


def check_bool(name, x):
    if not isinstance(x, bool):
        raise ProtocolError("%s %r is not true or false" % (name, x))
    return x


def check_dict(name, x):
    if not isinstance(x, dict):
        raise ProtocolError("%s %r is not an object" % (name, x))
    return x


def check_unknown(name, doc, allowed):
    for key in doc:
        if key not in allowed:
            raise ProtocolError("%s has unknown key %r" % (name, key))


def with_defaults(doc, defaults):
    out = {}
    for key in defaults:
        out[key] = doc[key] if key in doc else defaults[key]
    return out


def check_channel_name(name, where="channel name"):
    if not isinstance(name, str) or not 1 <= len(name) <= 16:
        raise ProtocolError("%s %r must be a string of 1 to 16 characters" % (where, name))
    for ch in name:
        if ch not in _NAME_CHARS:
            raise ProtocolError("%s %r has character %r outside a-z 0-9 _" % (where, name, ch))
    return name
