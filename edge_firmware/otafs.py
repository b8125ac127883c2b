# Small file helpers of the OTA modules (otaboot.py, otarecv.py, otaguard.py):
# the pointer and the status files, written whole by a rename.
import json
import os

PTR = "ota/fw.json"  # the pointer: the active version's directory, and its state
GO = "ota/go.json"  # an update waits to be received (written by inbox.py)
LAST = "ota/last.json"  # progress or outcome of the last update (status "ota")
MAX_TRIES = 3  # boots of an unconfirmed version, a stage-1 config restart included


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def save(path, doc):
    """Write ``doc`` to ``path`` atomically: a temporary file, then a rename."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.rename(tmp, path)


def remove(path):
    """Remove a file or a directory tree; absent is fine."""
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
        os.remove(PTR)  # back to the factory files
    remove(p["dir"])
    print("ota: rolled back from", p.get("version"), "-", reason)
    return prev.get("dir")


def receive():
    """The update waiting in ota/go.json (otarecv.py), then a reset."""
    import sys

    import machine

    try:
        import otarecv

        otarecv.run()
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
