# Incoming messages: retained config, retained model, commands.
#
# Runs inside the MQTT client's read loop, so it only parses and records; the
# main loop applies a new config and publishes status. A bad message never
# stops the agent: its reason goes to status and the old config/model stays.
import gc
import json
import sys


def _unload(name):
    mod = sys.modules.pop(name, None)
    if mod is not None and "." in name:
        try:  # noqa: SIM105
            delattr(sys.modules["shared"], name.split(".")[1])
        except (AttributeError, KeyError, TypeError):
            pass
    gc.collect()


def _schema():
    from shared import config

    return config


def _drop_schema():
    for name in ("shared.config", "shared.sensor_config", "shared.checks", "shared.topics",
                 "shared.errors"):
        _unload(name)

COMMANDS = ("status", "reboot", "flush", "ota", "time")


def _clock(agent, t, retained):
    """{"cmd": "time", "t": Unix seconds}: the gateway's time, sent in answer
    to an online status (gateway/clock.py). Set into the RTC when it is off by
    more than a second; the difference goes to status (clock_drift_s). Return
    whether status should go out: only when the clock was not set before (an
    answer to every status must not cause another status)."""
    if retained:
        return False  # a retained time is as old as its message: worse than none
    if not isinstance(t, int) or not 1600000000 < t < 4102444800:
        raise ValueError("time %r is not Unix seconds in 2020..2099" % (t,))
    import time

    import machine

    agent.t_drift = t - int(time.time())
    if (agent.t_drift > 1 or agent.t_drift < -1) and hasattr(machine, "RTC"):
        tm = time.gmtime(t)
        machine.RTC().datetime((tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], 0))
    sys.modules.pop("machine", None)  # the host's stand-in (a board's is built in)
    if agent.t_clock is True:
        return False
    agent.t_clock = True  # readings from the next batch on carry the time
    return True


def handle(agent, topic, msg, retained):
    # Runs inside the client's read loop: parse and record, never publish here.
    was = agent.status_dirty
    agent.status_dirty = True
    if topic is None:
        agent.last_error = "incoming message of %d bytes exceeds mqtt.max_incoming" % msg
        return
    if topic == agent.topics[2]:  # (agentinit.setup: config, model, cmd from 2)
        if not len(msg):
            return  # retained config cleared: keep the current one
        try:
            doc = json.loads(bytes(msg))
            agent.pending_conf = (_schema().merge_remote_config(agent.conf, doc), doc)
            agent.config_rejected = None
        except Exception as exc:
            agent.config_rejected = "%s: %s" % (type(exc).__name__, exc)
        _drop_schema()
    elif topic == agent.topics[3]:
        agent.model = None  # free the old one before parsing the new one
        _unload("shared.edge_model")
        if not len(msg):
            agent.model_error = None
            return
        try:
            from shared import edge_model

            m = edge_model.parse_model(bytes(msg))
            if m.channels != len(agent.channels):
                raise ValueError("model has %d channels, device has %d"
                                    % (m.channels, len(agent.channels)))
            agent.model = m
            agent.model_error = None
        except Exception as exc:
            agent.model_error = "%s: %s" % (type(exc).__name__, exc)
    elif topic == agent.topics[4]:
        try:
            doc = json.loads(bytes(msg))
            cmd = doc.get("cmd") if isinstance(doc, dict) else None
            if cmd not in COMMANDS:
                raise ValueError("cmd %r is not one of %s" % (cmd, ", ".join(COMMANDS)))
            if cmd == "reboot":
                agent.reboot = True
            elif cmd == "flush":
                agent.close_batch()
            elif cmd == "ota":  # an update: received after a reset (otarecv.py)
                import os

                try:  # noqa: SIM105
                    os.mkdir("ota")
                except OSError:
                    pass
                with open("ota/go.json", "w") as f:
                    json.dump({"id": doc.get("id"), "chunk": doc.get("chunk")}, f)
                agent.reboot = True
            elif cmd == "time":
                agent.status_dirty = _clock(agent, doc.get("t"), retained) or was
        except Exception as exc:
            agent.last_error = "command rejected: %s: %s" % (type(exc).__name__, exc)
