# Board profiles' ``select`` (rp2, esp32; see ../machine.py): the unix port's
# poll cannot see a socket of the Python subclass in ./socket.py, so a
# registered socket is polled by its file descriptor. What poll() returns is
# the port's own (the firmware only asks whether anything is ready).
import uselect as _sel
from uselect import *  # noqa: F403


class _Poll:
    def __init__(self):
        self._p = _sel.poll()

    def register(self, obj, mask=_sel.POLLIN | _sel.POLLOUT):
        self._p.register(obj.fileno() if hasattr(obj, "fileno") else obj, mask)

    def unregister(self, obj):
        self._p.unregister(obj.fileno() if hasattr(obj, "fileno") else obj)

    def modify(self, obj, mask):
        self._p.modify(obj.fileno() if hasattr(obj, "fileno") else obj, mask)

    def poll(self, timeout=-1):
        return self._p.poll(timeout)


def poll():
    return _Poll()
