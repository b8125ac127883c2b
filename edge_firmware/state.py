# Persistent agent state in flash: the boot counter and the sequence position.
#
# A reading is identified by (device, boot, seq). The boot counter moves on and
# is written to flash *before* anything of that boot is published, so two boots
# never share a key. Within a boot, seq counts readings from 0; in deep-sleep
# mode the position is saved before each sleep, because a wake from deep sleep
# restarts the program, and the readings of the unfinished batch go to
# pending.bin as they are packed in RAM (sleepmode.sleep, agentinit.setup).
#
# Loaded at boot and for a save (reboot, planned stop, deep sleep), not kept in
# RAM: the agent holds boot and seq itself.
import json
import os


def load(path="state.json"):
    """[boot, seq, error or None, drops]: drops are the readings a deep-sleep
    run has dropped so far (a wake restarts the program)."""
    st = [0, 0, None, 0]  # type: list
    try:
        with open(path) as f:
            doc = json.load(f)
        st[0] = int(doc.get("boot", 0))
        st[1] = int(doc.get("seq", 0))
        st[3] = int(doc.get("drops", 0))
    except OSError:
        pass  # first boot: no file yet
    except (ValueError, TypeError, AttributeError) as exc:
        # A corrupted file (writes are atomic, so this is rare): the old
        # counter is unknown, so jump to a random high base where a
        # collision with an earlier boot is vanishingly unlikely.
        st[2] = "state file unreadable: %r" % (exc,)
        r = os.urandom(3)
        st[0] = 0x80000000 | r[0] << 16 | r[1] << 8 | r[2]
    return st


def new_boot(st, path="state.json"):
    """A real (re)boot: next boot number, seq from 0, saved at once; no pending batch."""
    st[0] = (st[0] + 1) & 0xFFFFFFFF
    st[1] = 0
    st[3] = 0
    save(st[0], 0, path)
    try:  # noqa: SIM105
        os.remove("pending.bin")
    except OSError:
        pass


def save(boot, seq, path="state.json", drops=0, asleep=0):
    # asleep=1: everything is saved for a deep sleep (sleepmode.sleep), so the
    # next start is a wake whatever reset cause the port reports (the rp2 port
    # has no DEEPSLEEP_RESET: its deep sleep ends in a watchdog reboot); the
    # wake saves again without it, so a reset during the wake is a real boot
    tmp = path + ".tmp"
    doc = {"boot": boot, "seq": seq}
    if drops:
        doc["drops"] = drops
    if asleep:
        doc["asleep"] = asleep
    with open(tmp, "w") as f:
        json.dump(doc, f)
    try:
        os.rename(tmp, path)
    except OSError:
        # Some filesystems refuse to rename over an existing file.
        os.remove(path)
        os.rename(tmp, path)
