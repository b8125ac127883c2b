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
        # the rare steps (confirming, expiring) are otatrial.py's: this module
        # stays resident while the version is on trial, so it is kept small
        if self.inner is not None:
            self.inner.feed()
        a = self.agent
        if a.up and a.stats[1] and not a.status_dirty:  # stats[1]: acked (agent.py)
            # (agent.once: loaded into a collected heap, dropped after; the
            # agent's module is resident, so the import only looks it up)
            __import__("agent").once("otatrial", "confirm", a, self.inner)
            sys.modules.pop("otafs", None)
            sys.modules.pop("otaguard", None)
        elif time.ticks_diff(time.ticks_ms(), self.deadline) > 0:
            __import__("agent").once("otatrial", "expire")
