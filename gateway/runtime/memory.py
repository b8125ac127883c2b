"""Process memory settings for the long-running service.

glibc gives each thread that allocates its own malloc arena (up to eight per core), and
memory freed in an arena mostly stays with the process. The service's threads (ingest,
API workers, the detector, peering) each allocate numpy arrays and SQLite pages, so its
resident size crept up for as long as it ran. Two arenas in all hold what these threads
need; set once, before the threads start. A training round builds every device's
windows and then frees them: ``release_free_memory`` hands the free pages back after it.
Elsewhere than glibc both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from typing import Any

log = logging.getLogger("learnae.memory")

M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
ARENAS = 2


@functools.cache
def _libc_function(name: str) -> Any:
    """A function of the C library, or None (not glibc, or not found); looked up once, as
    ``find_library`` may run ``ldconfig`` and the trim is called after every round."""
    path = ctypes.util.find_library("c")
    if path is None:
        return None
    try:
        return getattr(ctypes.CDLL(path), name)
    except (OSError, AttributeError):
        return None


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """``mallopt(M_ARENA_MAX, arenas)``; True if the C library took it."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_ARENA_MAX, int(arenas)))
    if not ok:
        log.warning("mallopt(M_ARENA_MAX, %d) was refused", arenas)
    return ok


def release_free_memory() -> bool:
    """``malloc_trim(0)``: free pages of every arena back to the system; True if any were."""
    trim = _libc_function("malloc_trim")
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))
