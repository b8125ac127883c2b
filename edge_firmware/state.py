# Persistent agent state in flash: the boot counter and the sequence position.
#
# A reading is identified by (device, boot, seq). The boot counter moves on and
# is written to flash *before* anything of that boot is published, so two boots
# never share a key. Within a boot, seq counts readings from 0; in deep-sleep
# mode the position (and the readings of the unfinished batch) is saved before
# each sleep, because a wake from deep sleep restarts the program.
#
# Loaded at boot and for a save (reboot, planned stop, deep sleep), not kept in
# RAM: the agent holds boot and seq itself.
import json
import os


def load(path="state.json"):
    """[boot, seq, pending readings, their anomaly indexes, error or None]."""
    st = [0, 0, [], [], None]
    try:
        with open(path) as f:
            doc = json.load(f)
        st[0] = int(doc.get("boot", 0))
        st[1] = int(doc.get("seq", 0))
        st[2] = doc.get("pending", [])
        st[3] = doc.get("pending_anom", [])
    except OSError:
        pass  # first boot: no file yet
    except (ValueError, TypeError, AttributeError) as exc:
        # A corrupted file (writes are atomic, so this is rare): the old
        # counter is unknown, so jump to a random high base where a
        # collision with an earlier boot is vanishingly unlikely.
        st[4] = "state file unreadable: %r" % (exc,)
        r = os.urandom(3)
        st[0] = 0x80000000 | r[0] << 16 | r[1] << 8 | r[2]
    return st


def new_boot(st, path="state.json"):
    """A real (re)boot: next boot number, seq from 0, saved at once."""
    st[0] = (st[0] + 1) & 0xFFFFFFFF
    st[1] = 0
    st[2] = []
    st[3] = []
    save(st[0], 0, None, None, path)


def save(boot, seq, pending=None, anoms=None, path="state.json"):
    doc = {"boot": boot, "seq": seq}
    if pending:
        doc["pending"] = pending
        doc["pending_anom"] = anoms
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    try:
        os.rename(tmp, path)
    except OSError:
        # Some filesystems refuse to rename over an existing file.
        os.remove(path)
        os.rename(tmp, path)

