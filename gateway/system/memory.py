"""Process memory settings for the long-running service.

glibc gives each thread that allocates its own malloc arena (up to eight per core), and
memory freed in an arena mostly stays with the process. The service's threads (ingest,
API workers, the detector, peering) each allocate numpy arrays and SQLite pages, so its
resident size crept up for as long as it ran. Two arenas in all hold what these threads
need; set once, before the threads start. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("learnae.memory")

M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """``mallopt(M_ARENA_MAX, arenas)``; True if the C library took it."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_ARENA_MAX, int(arenas)))
    if not ok:
        log.warning("mallopt(M_ARENA_MAX, %d) was refused", arenas)
    return ok
