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

COMMANDS = ("status", "reboot", "flush", "ota")


def handle(agent, topic, msg, retained):
    # Runs inside the client's read loop: parse and record, never publish here.
    agent.status_dirty = True
    if topic is None:
        agent.last_error = "incoming message of %d bytes exceeds mqtt.max_incoming" % msg
        return
    if topic == agent.subs[0]:
        if not len(msg):
            return  # retained config cleared: keep the current one
        try:
            doc = json.loads(bytes(msg))
            agent.pending_conf = (_schema().merge_remote_config(agent.conf, doc), doc)
            agent.config_rejected = None
        except Exception as exc:
            agent.config_rejected = "%s: %s" % (type(exc).__name__, exc)
        _drop_schema()
    elif topic == agent.subs[1]:
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
    elif topic == agent.subs[2]:
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
        except Exception as exc:
            agent.last_error = "command rejected: %s: %s" % (type(exc).__name__, exc)
