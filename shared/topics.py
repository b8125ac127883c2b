"""MQTT topic builder and parser: ``<prefix>/<device>/<kind>``."""

# the id and prefix checks live in shared.checks, so that a board validating its
# config does not load this module (its names would be interned for good)
from shared.checks import MAX_DEVICE_ID as MAX_DEVICE_ID
from shared.checks import check_device_id as check_device_id
from shared.checks import check_prefix as check_prefix
from shared.errors import ProtocolError

DATA = "data"
STATUS = "status"
CONFIG = "config"
MODEL = "model"
CMD = "cmd"
KINDS = (DATA, STATUS, CONFIG, MODEL, CMD)


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
