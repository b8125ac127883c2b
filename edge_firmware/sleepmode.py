# deep_sleep power mode: wake, sample one reading, publish when a batch is
# complete, save the position, sleep. A wake restarts the program, so
# everything that must survive is in the state file and the flash spool.
import json
import sys
import time

import status


def wake(agent):
    """deep_sleep: one reading per wake; radio on only when a batch is complete."""
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
                agent.publish_status()
                agent.client.disconnect()
            except OSError as exc:
                agent._down(exc)
    if agent.conf["power_mode"] != "deep_sleep":
        return agent.run()
    if agent.count is not None and agent.seq >= agent.count and not len(agent.buf):
        import state

        state.save(agent.boot, agent.seq)
        print(json.dumps(status.summary(agent)))
        sys.modules.pop("status", None)
        return 0
    import extras

    return extras.sleep(agent)

