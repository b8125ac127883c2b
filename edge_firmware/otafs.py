# Small file helpers of the OTA modules (otaboot.py, otarecv.py, otaguard.py):
# the pointer and the status files, written whole by a rename.
# Eleven module-level names, an 11-slot globals table (json and os are
# imported where they are used): 14 took 17 slots, a 272-byte block that was
# the allocation to fail when a version on trial confirmed at a 32 KB heap.
# A version on trial gets 3 boots (a stage-1 config restart included):
# otaboot.py counts them, otatrial.py expires a trial by setting 2.

PTR = "ota/fw.json"  # the pointer: the active version's directory, and its state
GO = "ota/go.json"  # an update waits to be received (written by inbox.py)
LAST = "ota/last.json"  # progress or outcome of the last update (status "ota")


def load(path):
    try:
        with open(path) as f:
            return __import__("json").load(f)
    except (OSError, ValueError):
        return None


def save(path, doc):
    """Write ``doc`` to ``path`` atomically: a temporary file, then a rename."""
    import os

    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        __import__("json").dump(doc, f)
    os.rename(tmp, path)


def remove(path):
    """Remove a file or a directory tree; absent is fine."""
    import os

    try:
        names = os.listdir(path)
    except OSError:
        try:  # noqa: SIM105
            os.remove(path)
        except OSError:
            pass
        return
    for name in names:
        remove(path + "/" + name)
    try:  # noqa: SIM105
        os.rmdir(path)
    except OSError:
        pass


def rollback(p, reason):
    """Back to the version the trial replaced; the trial's files go. Returns
    the directory to run (None: the factory files)."""
    prev = p.get("previous") or {}
    save(LAST, {"id": p.get("id"), "state": "rolled_back", "version": p.get("version"),
                "reason": reason, "running": prev.get("version")})
    if prev.get("dir"):
        save(PTR, {"dir": prev["dir"], "version": prev["version"], "id": prev.get("id"),
                   "state": "ok"})
    else:
        __import__("os").remove(PTR)  # back to the factory files
    remove(p["dir"])
    print("ota: rolled back from", p.get("version"), "-", reason)
    return prev.get("dir")


def receive():
    """The update waiting in ota/go.json (otarecv.py), then a reset."""
    import sys

    import machine

    try:
        # the receive buffer (a chunk and its header) first, while the heap
        # is still in one piece: made after the receiver's 11 KB of code, its
        # one block of chunk + 64 bytes was the allocation that failed at 32 KB
        chunk = (load(GO) or {}).get("chunk")
        rbuf = bytearray(max(chunk, 64) + 64) if isinstance(chunk, int) else None
        import otarecv

        otarecv.run(rbuf)
    except Exception as exc:
        sys.print_exception(exc)
        save(LAST, {"id": (load(GO) or {}).get("id"), "state": "refused",
                    "reason": "receiver failed: %r" % (exc,)})
        remove(GO)
    machine.reset()


def arm(agent):
    """A version on trial: its guard replaces the watchdog the loop feeds."""
    import sys

    import otaguard

    p = load(PTR)
    agent.wdt = otaguard.Guard(agent, agent.wdt, p.get("confirm_s") or 120)
    sys.modules.pop("otafs", None)  # the guard loads it again to confirm
