# The guard of a version on trial (otaboot.py): it stands in for the watchdog
# the agent's loop feeds every turn (feeding the real one, if any), confirms
# the version once the board is online, has had data acknowledged and has sent
# its status, and resets the board for a rollback when ota_confirm_s pass
# without that. Resident only until the confirmation.
import sys
import time


class Guard:
    def __init__(self, agent, inner, confirm_s):
        self.agent = agent
        self.inner = inner
        self.deadline = time.ticks_add(time.ticks_ms(), confirm_s * 1000)

    def feed(self):
        if self.inner is not None:
            self.inner.feed()
        a = self.agent
        if a.up and a.stats[1] and not a.status_dirty:  # stats[1]: acked (agent.py)
            import otafs

            p = otafs.load(otafs.PTR)
            prev = p.pop("previous", None) or {}
            p["state"] = "ok"
            p.pop("tries", None)
            otafs.save(otafs.PTR, p)  # the switch is now final
            otafs.save(otafs.LAST, {"id": p.get("id"), "state": "confirmed",
                                        "version": p.get("version")})
            if prev.get("dir") and prev["dir"] != p["dir"]:
                otafs.remove(prev["dir"])  # kept until now for a rollback
            sys.modules.pop("otafs", None)
            a.wdt = self.inner
            a.status_dirty = True  # the gateway learns it from the next status
            sys.modules.pop("otaguard", None)
        elif time.ticks_diff(time.ticks_ms(), self.deadline) > 0:
            import machine
            import otafs

            p = otafs.load(otafs.PTR)
            p["tries"] = otafs.MAX_TRIES - 1  # the next boot rolls back
            p["reason"] = "not confirmed within ota_confirm_s"
            otafs.save(otafs.PTR, p)
            print("ota: no confirmation in time, rolling back")
            machine.reset()
