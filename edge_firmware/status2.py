# Status document, second half (status.py writes the first): sensors, model,
# counters, the run's settings, the last update. Loaded after status.py is
# dropped (Agent.publish_status), so the two never share the heap.
import json

_P4 = '"sensor_errors":%s,"config_rejected":%s,"model":%s,"model_error":%s,'
_P5 = '"anomalies":%d,"made":%d,"acked":%d,"connects":%d,'
_P6 = '"period_ms":%d,"batch_size":%d,"power_mode":"%s","radio_ms":%d,"radio_batches":%d'


def dumps(agent, online=True):
    """The second half of the status document as a tuple of strings (``online``:
    as for status.dumps, the first half)."""
    d = json.dumps
    conf = agent.conf
    try:  # the last update's progress or outcome (not status._file: that module is gone)
        with open("ota/last.json") as f:
            last = f.read()
    except OSError:
        last = None
    return (
        _P4 % (d(agent.sensor_errors), d(agent.config_rejected),
               "null" if agent.model is None else '"%08x"' % agent.model.crc,
               d(agent.model_error)),
        _P5 % (agent.anomalies, agent.made, agent.acked, agent.connects),
        _P6 % (conf["period_ms"], conf["batch_size"], conf["power_mode"], agent.radio_ms,
               agent.radio_batches),
        ',"ota":%s}' % last if last else "}")
