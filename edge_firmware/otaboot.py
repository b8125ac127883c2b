# OTA at boot (docs/firmware.md, Over-the-air updates). main.py imports this
# only when the directory "ota" exists, before any other firmware module, and
# drops it right after.
#
# The factory version is the files flashed over USB (the root of the board's
# flash, never changed by an update); an update lives in a directory of its
# own, ota/<transfer id>, and ota/fw.json (the pointer, always replaced whole
# by a rename) names the active one. At every boot: the active version's
# directory goes first on sys.path, so every module after this one comes from
# one complete version; the boots of an unconfirmed version ("trial") are
# counted, and the third rolls back to the version it replaced (it failed at
# import, crashed, or otaguard.py reset it after ota_confirm_s without a
# confirmation); an update waiting to be received (ota/go.json, written when
# {"cmd": "ota"} came) runs otarecv.py in this interpreter lifetime instead of
# the agent.
import json
import os
import sys

PTR = "ota/fw.json"
GO = "ota/go.json"
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
    """Back to the version the trial replaced; the trial's files go."""
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


def boot():
    """1 when an update waits to be received, 2 when the active version is
    on trial, else 0; sys.path set for the active version."""
    recv = load(GO) is not None
    p = load(PTR)
    mode = 1 if recv else 0
    d = None
    if p is not None:
        d = p.get("dir")
        if p.get("state") == "trial" and not recv:
            p["tries"] = p.get("tries", 0) + 1
            if p["tries"] >= MAX_TRIES:
                d = rollback(p, p.get("reason") or "not confirmed in %d boots"
                             % (p["tries"] - 1))
            else:
                save(PTR, p)
                mode = 2
    if d:
        sys.path.insert(0, d)
    return mode


def receive():
    """The update waiting in ota/go.json (otarecv.py); an exit code."""
    import otarecv

    return otarecv.run()


def arm(agent):
    """A version on trial: its guard replaces the watchdog the loop feeds."""
    import otaguard

    p = load(PTR)
    agent.wdt = otaguard.Guard(agent, agent.wdt, p.get("confirm_s") or 120)
