# Simulated sensor driver (hosts and tests): see sensors.py for the interface.
#
# A deterministic signal: a triangle wave + drift + noise + injected anomalies.
# The value for a given (seed, seq) is always the same, whatever happened
# before, so a test can predict every reading. ``fail_at`` >= 0 makes every
# read from that seq on raise OSError, to exercise sensor-failure reporting.
# Kept small (it is resident on a host): the parameters stay in the spec dict.

# base and amplitude per channel (cycled): temperature, humidity, pressure, CO2
_SHAPE = (21, 3, 45, 10, 1013, 5, 400, 50)  # ints: no float objects resident


def _rand(seed, seq, k):
    # xorshift32 over (seed, seq, k): uniform in [0, 1)
    x = (seed ^ (seq * 2654435761) ^ (k * 40503 + 1)) & 0xFFFFFFFF or 1
    for _ in range(3):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
    return (x & 0xFFFFFF) / 16777216.0


class Driver:
    def __init__(self, spec, board):
        self.channels = spec["channels"]
        self.spec = spec
        self.seq = 0  # set by the agent before each read

    def read(self, out, off):
        p = self.spec
        seq = self.seq
        seed = p["seed"] & 0xFFFFFFFF
        if 0 <= p["fail_at"] <= seq:
            raise OSError("simulated sensor failure at seq %d" % seq)
        rate = p["anomaly_rate"]
        anomalous = seq in p["anomaly_at"] or (rate and _rand(seed, seq, 99) < rate)
        # cheap periodic shape without math.sin: a triangle wave of period 240
        phase = seq % 240
        tri = (phase if phase < 120 else 240 - phase) / 60.0 - 1.0
        for i in range(len(self.channels)):
            j = 2 * (i % 4)
            amp = _SHAPE[j + 1]
            v = _SHAPE[j] + amp * tri + p["drift"] * seq
            v += p["noise"] * (_rand(seed, seq, i) * 2.0 - 1.0)
            if anomalous:
                v += amp * 8.0
            out[off + i] = v
