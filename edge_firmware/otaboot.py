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
# {"cmd": "ota"} came) is received by otarecv.py right here, instead of
# anything else in this interpreter lifetime.
# Kept to the boot decision (loaded at every boot once an update has come):
# the helpers, the rollback and the receiver are in otafs.py and otarecv.py.
import json
import os
import sys


def boot():
    """2 when the active version is on trial, else 0; sys.path set for the
    active version. When an update waits to be received, it is received now,
    before main.py imports anything else (the receiver gets the whole heap),
    and the board resets: the call does not return then."""
    recv = "go.json" in os.listdir("ota")
    try:
        with open("ota/fw.json") as f:
            p = json.load(f)
    except (OSError, ValueError):
        p = None
    mode = 0
    d = None
    if p is not None:
        d = p.get("dir")
        if p.get("state") == "trial" and not recv:
            p["tries"] = p.get("tries", 0) + 1
            if p["tries"] >= 3:  # 3 boots on trial (otafs.py)
                d = __import__("otafs").rollback(
                    p, p.get("reason") or "not confirmed in %d boots" % (p["tries"] - 1))
            else:
                with open("ota/fw.tmp", "w") as f:
                    json.dump(p, f)
                os.rename("ota/fw.tmp", "ota/fw.json")
                mode = 2
    if d:
        sys.path.insert(0, d)
    if recv:
        __import__("otafs").receive()
    return mode
