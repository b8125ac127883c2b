# deep_sleep power mode: wake, sample one reading, publish when a batch is
# complete, save the position, sleep. A wake restarts the program, so
# everything that must survive is in the state file, pending.bin (the
# readings of the unfinished batch, packed as in RAM) and the flash spool.
import sys
import time


def _resume(a):
    # the readings of the unfinished batch (sleep() below); a real boot removed
    # the file (state.new_boot). Here, not in agentinit.py: the construction
    # is the tightest moment of an always_on boot at the 32 KB cap
    c = len(a.channels)
    try:
        with open("pending.bin", "rb") as f:
            head = f.read(2)
            if len(head) == 2 and 0 < head[0] <= a.conf["batch_size"]:
                anoms = list(f.read(head[1]))
                k = head[0] * 2 * c
                h = len(a.vals) // 3 * 2
                if (f.readinto(a.codes) == 2 * c and f.readinto(memoryview(a.vals)[:2 * k]) == 2 * k
                        and f.readinto(memoryview(a.vals)[h:h + k]) == k):
                    a.n = head[0]
                    a.anoms = anoms
                    a.seq0 = a.seq - a.n
    except OSError:
        pass


def wake(agent):
    """deep_sleep: one reading per wake; radio on only when a batch is complete."""
    _resume(agent)
    agent.sample()
    if len(agent.buf) and not agent.n:
        deadline = time.ticks_add(time.ticks_ms(), agent.client.timeout_ms * 2)
        if agent.connect():
            try:
                while len(agent.buf) and time.ticks_diff(deadline, time.ticks_ms()) > 0:
                    agent.publish_one()
                agent.client.poll(20)  # retained config/model arrive after SUBSCRIBE
                if agent.pending_conf is not None:
                    import extras

                    extras.take_pending_conf(agent)
                    sys.modules.pop("extras", None)
                agent.publish_status()
                __import__("mqttrare").disconnect(agent.client)
                sys.modules.pop("mqttrare", None)
            except OSError as exc:
                __import__("extras").down(agent, exc)
                sys.modules.pop("extras", None)
    if agent.conf["power_mode"] != "deep_sleep":
        return agent.run()
    if agent.count is not None and agent.seq >= agent.count and not len(agent.buf):
        import json

        import runend
        import state

        state.save(agent.boot, agent.seq, drops=agent.buf.drops)
        print(json.dumps(runend.summary(agent)))
        return 0
    return sleep(agent)


def sleep(agent):
    """Everything to flash (RAM batches to the spool, the open batch to
    pending.bin, the position to state.json), then deep sleep."""
    import machine
    import state

    buf = agent.buf
    while buf.count and buf.max_segments:  # RAM batches to the flash spool
        buf.spill_one()
    while buf.count:  # no spool (spool_segments = 0): lost in the sleep, so counted
        off = buf.head * buf.slot_size
        if buf.mv[off] == 1:  # binary batch: byte 3 counts its readings
            buf.drops += buf.mv[off + 3]
        buf._pop_ram()
    with open("pending.bin", "wb") as f:
        # [n readings][k anomaly indexes][the indexes][2 x channels codes (wire.py)]
        # [n x channels f32, as packed][n x channels int16 counts, as packed]
        k = agent.n * 2 * len(agent.channels)
        h = len(agent.vals) // 3 * 2
        f.write(bytes((agent.n, len(agent.anoms))))
        f.write(bytes(agent.anoms))
        f.write(agent.codes)
        f.write(memoryview(agent.vals)[:2 * k])
        f.write(memoryview(agent.vals)[h:h + k])
    state.save(agent.boot, agent.seq, drops=buf.drops, asleep=1)  # the wake knows itself by
    # this (not the port's reset cause), and the drop count survives the wake
    machine.deepsleep(agent.conf["period_ms"])
    return 3
