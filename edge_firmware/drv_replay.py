# Replay driver (hosts): readings from a CSV file; see sensors.py for the interface.

class Replay:
    """Replays a CSV of readings (header row, comma separated, -200 or empty = missing)."""

    def __init__(self, spec, board):
        self.channels = spec["channels"]
        self.path = spec["path"]
        self.loop = spec["loop"]
        self.columns = spec["columns"]
        self.seq = 0
        self.f = None
        self.idx = None
        self._open()

    def _open(self):
        self.f = open(self.path)  # noqa: SIM115
        header = self.f.readline().strip().split(",")
        idx = []
        for col in self.columns:
            if col not in header:
                raise OSError("replay column %r is not in %s" % (col, self.path))
            idx.append(header.index(col))
        self.idx = idx

    def read(self, out, off):
        line = self.f.readline()
        if not line:
            if not self.loop:
                raise OSError("replay file %s is exhausted" % self.path)
            self.f.close()
            self._open()
            line = self.f.readline()
        cells = line.strip().split(",")
        for i, k in enumerate(self.idx):
            v = None
            if k < len(cells) and cells[k]:
                try:
                    v = float(cells[k])
                except ValueError:
                    v = None
                if v is not None and v == -200.0:
                    v = None
            out[off + i] = v


Driver = Replay
