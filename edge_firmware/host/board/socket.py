# Board profiles' ``socket`` (rp2, esp32; see ../machine.py): the constants of
# the port's lwIP socket module (extmod/modlwip.c) over the unix port's sockets.
# TCP_NODELAY is lwIP's TF_NODELAY flag (64) on rp2 and 1 on the ESP32 (its
# IDF sockets); an option the port does not know is ignored with a warning, as
# modlwip.c does, so a wrong constant leaves Nagle on without an error.
import os

import usocket as _s
from usocket import *  # noqa: F403

_BOARD = os.getenv("LEARNAE_BOARD") or "rp2"
IPPROTO_IP = 0
IPPROTO_TCP = 6
IPPROTO_UDP = 17
TCP_NODELAY = 64 if _BOARD == "rp2" else 1


class socket(_s.socket):
    def setsockopt(self, level, opt, value):
        if level == IPPROTO_TCP:
            if opt != TCP_NODELAY:
                print("Warning: lwip.setsockopt() option not implemented")
                return None
            return super().setsockopt(6, 1, value)  # Linux's TCP_NODELAY
        return super().setsockopt(level, opt, value)
