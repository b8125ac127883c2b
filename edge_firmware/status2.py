# Status document, second half (status.py writes the first): sensors, model,
# counters, the run's settings, the last update. Loaded after status.py is
# dropped (Agent.publish_status), so the two never share the heap.
import json

from micropython import const

# indexes in Agent.stats (agent.py)
_MADE = const(0)
_ACKED = const(1)
_ANOMALIES = const(2)
_CONNECTS = const(3)
_RADIO_MS = const(4)
_RADIO_BATCHES = const(5)

_P4 = '"sensor_errors":%s,"config_rejected":%s,"model":%s,"model_error":%s,'
_P5 = '"anomalies":%d,"made":%d,"acked":%d,"connects":%d,'
_P6 = '"period_ms":%d,"batch_size":%d,"power_mode":"%s","radio_ms":%d,"radio_batches":%d'


def dumps(agent, online=True):
    """The second half of the status document as a tuple of strings (``online``:
    as for status.dumps, the first half)."""
    d = json.dumps
    conf = agent.conf
    s = agent.stats
    try:  # the last update's progress or outcome (not status._file: that module is gone)
        n = __import__("os").stat("ota/last.json")[6]
        with open("ota/last.json") as f:
            last = f.read(n)  # to its size (see status._file)
    except OSError:
        last = None
    return (
        _P4 % (d(agent.sensor_errors), d(agent.config_rejected),
               "null" if agent.model is None else '"%08x"' % agent.model.crc,
               d(agent.model_error)),
        _P5 % (s[_ANOMALIES], s[_MADE], s[_ACKED], s[_CONNECTS]),
        _P6 % (conf["period_ms"], conf["batch_size"], conf["power_mode"], s[_RADIO_MS],
               s[_RADIO_BATCHES]),
        ',"ota":%s}' % last if last else "}")
