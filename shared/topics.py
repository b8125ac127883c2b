"""MQTT topic builder and parser: ``<prefix>/<device>/<kind>``."""

from shared.errors import ProtocolError

DATA = "data"
STATUS = "status"
CONFIG = "config"
MODEL = "model"
CMD = "cmd"
KINDS = (DATA, STATUS, CONFIG, MODEL, CMD)

MAX_DEVICE_ID = 32
_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_"


def check_device_id(device):
    """Return ``device`` if it is a valid id: 1-32 of ``a-z 0-9 - _``.

    Ids become topic levels and ACL patterns, so wildcards, slashes and
    upper case (which Mosquitto's ``%u`` substitution treats literally) are out.
    """
    if not isinstance(device, str):
        raise ProtocolError("device id %r is not a string" % (device,))
    if not 1 <= len(device) <= MAX_DEVICE_ID:
        raise ProtocolError("device id %r must be 1 to %d characters" % (device, MAX_DEVICE_ID))
    for ch in device:
        if ch not in _ID_CHARS:
            raise ProtocolError("device id %r has character %r outside a-z 0-9 - _" % (device, ch))
    return device


def check_prefix(prefix):
    if not isinstance(prefix, str) or not prefix or "+" in prefix or "#" in prefix:
        raise ProtocolError("topic prefix %r must be non-empty and free of wildcards" % (prefix,))
    if prefix[0] == "/" or prefix[-1] == "/":
        raise ProtocolError("topic prefix %r must not start or end with '/'" % (prefix,))
    return prefix


def topic(prefix, device, kind):
    """Build ``<prefix>/<device>/<kind>`` after validating each part."""
    if kind not in KINDS:
        raise ProtocolError("topic kind %r is not one of %s" % (kind, ", ".join(KINDS)))
    return "%s/%s/%s" % (check_prefix(prefix), check_device_id(device), kind)


def subscription(prefix, kind):
    """The wildcard filter a gateway subscribes to for one kind of message."""
    if kind not in KINDS:
        raise ProtocolError("topic kind %r is not one of %s" % (kind, ", ".join(KINDS)))
    return "%s/+/%s" % (check_prefix(prefix), kind)


def parse_topic(name, prefix):
    """Split a topic into ``(device, kind)``; raise ProtocolError if it is not ours."""
    if isinstance(name, bytes):
        try:
            name = name.decode()
        except Exception:
            raise ProtocolError("topic %r is not UTF-8" % (name,))
    head = prefix + "/"
    if not name.startswith(head):
        raise ProtocolError("topic %r does not start with %r" % (name, head))
    parts = name[len(head):].split("/")
    if len(parts) != 2:
        raise ProtocolError("topic %r is not <prefix>/<device>/<kind>" % (name,))
    device, kind = parts
    if kind not in KINDS:
        raise ProtocolError("topic kind %r is not one of %s" % (kind, ", ".join(KINDS)))
    return check_device_id(device), kind
