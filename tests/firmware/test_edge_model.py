"""LEM1 edge model: pack in CPython, parse and score identically in both interpreters."""

from __future__ import annotations

import json
import struct
from binascii import crc32
from pathlib import Path

import numpy as np
import pytest

from gateway import micropython_host
from shared.edge_model import pack_model, parse_model
from shared.errors import ProtocolError

RNG = np.random.default_rng(5)
W, C, H = 3, 2, 4
W1 = RNG.normal(size=(W * C, H)).astype(np.float32)
B1 = RNG.normal(size=H).astype(np.float32)
W2 = RNG.normal(size=(H, C)).astype(np.float32)
B2 = RNG.normal(size=C).astype(np.float32)
MEAN, STD, RESID = [20.0, 50.0], [2.0, 10.0], [0.5, 0.8]
ROWS = [[20.5, 48.0], [21.0, None], [19.0, 55.0], [22.0, 51.0], [30.0, 50.0], [20.0, 50.0]]


def model_bytes() -> bytes:
    return pack_model(W, MEAN, STD, RESID, 3.0, [(W1, B1, "relu"), (W2.tolist(), B2, "tanh")])


def numpy_scores() -> list[float | None]:
    out: list[float | None] = []
    window: list[list[float]] = []
    for row in ROWS:
        x = [0.0 if v is None else (v - m) / s for v, m, s in zip(row, MEAN, STD, strict=True)]
        if len(window) == W:
            h = np.maximum(np.array(window, np.float32).reshape(-1) @ W1 + B1, 0)
            pred = np.tanh(h @ W2 + B2)
            out.append(max(abs(x[j] - pred[j]) / RESID[j] for j in range(C) if row[j] is not None))
            # gaps and flagged values enter the window as their prediction
            x = [float(pred[j]) if row[j] is None or abs(x[j] - pred[j]) / RESID[j] > 3.0
                 else x[j] for j in range(C)]
            window.pop(0)
        else:
            out.append(None)
        window.append(x)
    return out


def test_layout_header_and_crc() -> None:
    data = model_bytes()
    assert data[:4] == b"LEM1"
    assert struct.unpack_from("<BBBBf", data, 4) == (W, C, 2, 0, 3.0)
    assert struct.unpack_from("<I", data, len(data) - 4)[0] == crc32(data[:-4])
    assert len(data) == 12 + 12 * C + 6 + 4 * (W * C * H + H) + 6 + 4 * (H * C + C) + 4


def test_cpython_scores_match_numpy() -> None:
    model = parse_model(model_bytes())
    got = [model.score(r) for r in ROWS]
    want = numpy_scores()
    for g, w in zip(got, want, strict=True):
        assert (g is None) == (w is None)
        if w is not None:
            assert g == pytest.approx(w, rel=1e-5)


def test_micropython_scores_match_cpython(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(model_bytes())
    script = tmp_path / "score.py"
    script.write_text(
        "import json\nfrom shared.edge_model import parse_model\n"
        f"m = parse_model(open('{tmp_path}/model.bin', 'rb').read())\n"
        f"print(json.dumps([m.score(r) for r in {ROWS!r}]))\n")
    done = micropython_host.run(script)
    assert done.returncode == 0, done.stderr + done.stdout
    model = parse_model(model_bytes())
    want = [model.score(r) for r in ROWS]
    got = json.loads(done.stdout)
    assert got == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda d: b"LEM2" + d[4:], "magic"),
    (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "CRC32"),
    (lambda d: d[:20], "CRC32"),
    (lambda d: b"", "shorter"),
])
def test_rejects_defects_by_name(mutate, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        parse_model(mutate(model_bytes()))


def test_rejects_inconsistent_layers_with_valid_crc() -> None:
    data = bytearray(model_bytes())
    struct.pack_into("<H", data, 12 + 12 * C, 7)  # first layer input width 7, not W*C=6
    body = bytes(data[:-4])
    with pytest.raises(ProtocolError, match="input width 7, expected 6"):
        parse_model(body + struct.pack("<I", crc32(body)))


def test_pack_rejects_bad_shapes() -> None:
    with pytest.raises(ProtocolError, match="last layer has 3 outputs"):
        pack_model(1, [0.0, 0.0], [1.0, 1.0], [1.0, 1.0], 1.0,
                   [([[0.0] * 3] * 2, [0.0] * 3, "linear")])
    with pytest.raises(ProtocolError, match=r"std value 0\.0 is not positive"):
        pack_model(1, [0.0], [0.0], [1.0], 1.0, [([[0.0]], [0.0], "linear")])


def _recrc(data: bytearray) -> bytes:
    body = bytes(data[:-4])
    return body + struct.pack("<I", crc32(body))


def test_linear_path_calendar_and_horizon_score_like_numpy() -> None:
    """Flags 3: 4 calendar inputs, two steps ahead, a linear path added to the output."""
    rng = np.random.default_rng(9)
    n_in, steps = W * C + 4, 2
    w1 = rng.normal(size=(n_in, H)).astype(np.float32)
    w2 = rng.normal(size=(H, steps * C)).astype(np.float32)
    lin = rng.normal(size=(n_in, steps * C)).astype(np.float32)
    data = pack_model(W, MEAN, STD, RESID, 3.0,
                      [(w1, B1, "relu"), (w2, [0.0] * (steps * C), "linear")],
                      linear=lin, calendar=True)
    assert data[7] == 3
    m = parse_model(data)
    assert m.horizon == steps and m.calendar
    t0 = 1_700_000_000
    window = [[20.5, 48.0], [21.0, 49.0], [19.0, 55.0]]
    x = np.array([(v - mu) / s for row in window for v, mu, s in zip(row, MEAN, STD, strict=True)])
    t = t0 + 3 * 3600
    tod, dow = 2 * np.pi * (t % 86400) / 86400, 2 * np.pi * ((t // 86400 + 3) % 7) / 7
    u = np.concatenate([x, [np.sin(tod), np.cos(tod), np.sin(dow), np.cos(dow)]])
    want = np.maximum(u @ w1 + B1, 0) @ w2 + u @ lin
    for i, row in enumerate(window):
        assert m.score(row, t0 + i * 3600) is None
    pred = want[:C]
    score = m.score([22.0, 51.0], t)
    expect = max(abs((v - mu) / s - p) / r
                 for v, mu, s, p, r in zip([22.0, 51.0], MEAN, STD, pred, RESID, strict=True))
    assert score == pytest.approx(expect, rel=1e-4)
    assert m.score([22.0, 51.0], None) is None  # a calendar model needs the reading's time


@pytest.mark.parametrize(("offset", "value", "reason"), [
    (7, 4, "flags 0x04 has unknown bits"),
    (7, 1, "linear path header"),  # flag says a linear path follows, but none does
])
def test_rejects_bad_flags_by_name(offset: int, value: int, reason: str) -> None:
    data = bytearray(model_bytes())
    data[offset] = value
    with pytest.raises(ProtocolError, match=reason):
        parse_model(_recrc(data))


# A persistence model (prediction = last reading) on one channel: the spike at index 6 is
# flagged; the reading after it is scored against the spike's prediction, not the spike.
SPIKE_ROWS = [[20.0], [20.1], [19.9], [20.0], [20.2], [20.1], [35.0], [20.0], [20.1], [19.9],
              [20.0], [20.2]]


def persistence_bytes() -> bytes:
    weights = [[0.0], [0.0], [1.0]]  # W=3 inputs, oldest first: only the last one counts
    return pack_model(3, [10.0], [1.0], [0.2], 4.0, [(weights, [0.0], "linear")])


def test_one_spike_is_one_flag_in_cpython() -> None:
    model = parse_model(persistence_bytes())
    flags = [i for i, r in enumerate(SPIKE_ROWS) if model.flagged(model.score(r))]
    assert flags == [6]


def test_one_spike_is_one_flag_under_micropython(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(persistence_bytes())
    script = tmp_path / "spike.py"
    script.write_text(
        "import json\nfrom shared.edge_model import parse_model\n"
        f"m = parse_model(open('{tmp_path}/model.bin', 'rb').read())\n"
        f"print(json.dumps([i for i, r in enumerate({SPIKE_ROWS!r}) if m.flagged(m.score(r))]))\n")
    done = micropython_host.run(script)
    assert done.returncode == 0, done.stderr + done.stdout
    assert json.loads(done.stdout) == [6]


def test_a_gap_enters_the_window_as_the_prediction() -> None:
    model = parse_model(persistence_bytes())
    for row in ([20.0], [20.0], [20.0], [None]):
        model.score(row)
    # not |20 - 10| / 0.2 = 50, as when the gap entered as the channel mean
    assert model.score([20.0]) == pytest.approx(0.0, abs=1e-6)


# A level shift on a persistence model: after MAX_REPLACED replaced readings the run is
# taken as read, so the flags stop instead of lasting as long as the new level.
SHIFT_ROWS = [[20.0], [20.1], [19.9], [20.0]] + [[30.0 + 0.1 * (i % 2)] for i in range(12)]


def test_a_level_shift_stops_flagging_after_max_replaced_readings() -> None:
    from shared.edge_model import MAX_REPLACED

    model = parse_model(persistence_bytes())
    flags = [i for i, r in enumerate(SHIFT_ROWS) if model.flagged(model.score(r))]
    assert flags == list(range(4, 4 + MAX_REPLACED + 1))


def test_level_shift_under_micropython(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(persistence_bytes())
    script = tmp_path / "shift.py"
    script.write_text(
        "import json\nfrom shared.edge_model import parse_model\n"
        f"m = parse_model(open('{tmp_path}/model.bin', 'rb').read())\n"
        f"print(json.dumps([i for i, r in enumerate({SHIFT_ROWS!r}) if m.flagged(m.score(r))]))\n")
    done = micropython_host.run(script)
    assert done.returncode == 0, done.stderr + done.stdout
    assert json.loads(done.stdout) == [4, 5, 6]


def default_forecaster_bytes() -> bytes:
    """The shape the gateway exports by default (window 8, 3 channels, 32 hidden units,
    calendar inputs, a linear path): random weights, the parser's load is the same."""
    rng = np.random.default_rng(11)
    w, c, hidden = 8, 3, 32
    n_in = w * c + 4
    layers = [(rng.normal(0, 0.1, (n_in, hidden)).astype(np.float32), [0.0] * hidden, "tanh"),
              (rng.normal(0, 0.1, (hidden, c)).astype(np.float32), [0.0] * c, "linear")]
    return pack_model(w, [20.0, 50.0, 1000.0], [2.0, 10.0, 100.0], [0.5, 0.8, 0.6], 4.0,
                      layers, linear=rng.normal(0, 0.1, (n_in, c)).astype(np.float32),
                      calendar=True)


def test_the_default_forecaster_loads_and_scores_in_a_32k_heap(tmp_path: Path,
                                                               mpy_build: Path) -> None:
    """The firmware's heap cap (tests/firmware/test_resilience.py): parsing a layer must not
    build a list of all its floats on the way."""
    data = default_forecaster_bytes()
    (tmp_path / "model.bin").write_bytes(data)
    rows = [[20.0 + (i % 5) * 0.3, 50.0 - (i % 3), 1000.0 + i] for i in range(40)]
    times = [1_700_000_000 + 60 * i for i in range(40)]
    script = tmp_path / "heap.py"
    script.write_text(
        "import json\nfrom shared.edge_model import parse_model\n"
        f"m = parse_model(open('{tmp_path}/model.bin', 'rb').read())\n"
        "print(json.dumps([m.score([20.0 + (i % 5) * 0.3, 50.0 - (i % 3), 1000.0 + i],\n"
        "                          1700000000 + 60 * i) for i in range(40)]))\n")
    done = micropython_host.run(script, heap="32k", build_dir=mpy_build)
    assert done.returncode == 0, done.stderr + done.stdout
    model = parse_model(data)
    want = [model.score(r, t) for r, t in zip(rows, times, strict=True)]
    assert want[-1] is not None
    assert json.loads(done.stdout) == pytest.approx(want, rel=1e-5)


def test_a_non_finite_weight_is_refused_under_micropython(tmp_path: Path) -> None:
    """The raw-bytes read on the board still checks every float."""
    data = bytearray(model_bytes())
    struct.pack_into("<f", data, 12 + 12 * C + 6 + 4 * 5, float("inf"))
    (tmp_path / "model.bin").write_bytes(_recrc(data))
    script = tmp_path / "bad.py"
    script.write_text(
        "from shared.edge_model import parse_model\nfrom shared.errors import ProtocolError\n"
        "try:\n"
        f"    parse_model(open('{tmp_path}/model.bin', 'rb').read())\n"
        "    print('accepted')\n"
        "except ProtocolError as exc:\n"
        "    print(exc)\n")
    done = micropython_host.run(script)
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip() == f"float at byte {12 + 12 * C + 6 + 4 * 5} is not finite"
