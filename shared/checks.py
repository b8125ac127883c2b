"""Field checks shared by the device config schema modules (CPython and MicroPython).

Each check returns the value or raises ProtocolError naming the field and value.
Argument names are few and short on purpose: on a board validating its config
every distinct name is an interned string for good (docs/firmware.md, Memory).
"""

from shared.errors import ProtocolError

_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def check_int(name, x, lo, hi):
    if not is_int(x):
        raise ProtocolError("%s %r is not an integer" % (name, x))
    if not lo <= x <= hi:
        raise ProtocolError("%s %d is outside %d..%d" % (name, x, lo, hi))
    return x


def check_num(name, x, lo, hi):
    # a finite number (NaN and infinities fail the comparisons)
    if not ((is_int(x) or isinstance(x, float)) and x == x and -3.4e38 < x < 3.4e38):
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


def check_unknown(name, doc, keys):
    for key in doc:
        if key not in keys:
            raise ProtocolError("%s has unknown key %r" % (name, key))


def with_defaults(doc, keys):
    # keys: a dict of each key's default value
    out = {}
    for key in keys:
        out[key] = doc[key] if key in doc else keys[key]
    return out


def check_channel_name(name, where="channel name"):
    if not isinstance(name, str) or not 1 <= len(name) <= 16:
        raise ProtocolError("%s %r must be a string of 1 to 16 characters" % (where, name))
    # strip, not a loop over the characters: on a board each character taken
    # out of a str is an interned string for good (docs/firmware.md, Memory)
    bad = name.strip(_NAME_CHARS)
    if bad:
        raise ProtocolError("%s %r has character %r outside a-z 0-9 _" % (where, name, bad[0]))
    return name


# Topic levels (shared.topics re-exports these): here so that validating a
# config loads no topic code. The argument is ``x`` as in every check above
# (one interned name fewer on a board).
MAX_DEVICE_ID = 32


def check_device_id(x):
    """Return the device id ``x`` if it is a valid id: 1-32 of ``a-z 0-9 - _``.

    Ids become topic levels and ACL patterns, so wildcards, slashes and
    upper case (which Mosquitto's ``%u`` substitution treats literally) are out.
    """
    if not isinstance(x, str):
        raise ProtocolError("device id %r is not a string" % (x,))
    if not 1 <= len(x) <= MAX_DEVICE_ID:
        raise ProtocolError("device id %r must be 1 to %d characters" % (x, MAX_DEVICE_ID))
    bad = x.strip(_NAME_CHARS + "-")  # (as in check_channel_name)
    if bad:
        raise ProtocolError("device id %r has character %r outside a-z 0-9 - _" % (x, bad[0]))
    return x


def check_prefix(x):
    if not isinstance(x, str) or not x or "+" in x or "#" in x:
        raise ProtocolError("topic prefix %r must be non-empty and free of wildcards" % (x,))
    if x[0] == "/" or x[-1] == "/":
        raise ProtocolError("topic prefix %r must not start or end with '/'" % (x,))
    return x
