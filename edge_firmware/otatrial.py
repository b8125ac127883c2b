# The end of a version's trial (otaguard.py): confirmed, or expired for a
# rollback. Loaded for that step only: the guard stays resident while the
# version is on trial, this code and otafs.py's do not (measured: the first
# status of a trial boot failed at a 32 KB heap with them resident), and
# otafs.py stays small for the receiver's lifetime.
import otafs


def confirm(agent, inner):
    """The version on trial is online, has had data acknowledged and sent its
    status (otaguard.Guard.feed): the switch is final, the previous version's
    files go, the real watchdog (``inner``) is fed again."""
    p = otafs.load(otafs.PTR)
    prev = p.pop("previous", None) or {}
    p["state"] = "ok"
    p.pop("tries", None)
    otafs.save(otafs.PTR, p)  # the switch is now final
    otafs.save(otafs.LAST, {"id": p.get("id"), "state": "confirmed", "version": p.get("version")})
    if prev.get("dir") and prev["dir"] != p["dir"]:
        otafs.remove(prev["dir"])  # kept until now for a rollback
    agent.wdt = inner
    agent.status_dirty = True  # the gateway learns it from the next status


def expire():
    """No confirmation within ota_confirm_s (otaguard.Guard.feed): the next
    boot rolls back; reset now."""
    import machine

    p = otafs.load(otafs.PTR)
    p["tries"] = 2  # the next boot is the third: otaboot.py rolls back
    p["reason"] = "not confirmed within ota_confirm_s"
    otafs.save(otafs.PTR, p)
    print("ota: no confirmation in time, rolling back")
    machine.reset()
