"""``experiment replay``: a history through the live detector, and CSVs refused by name."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from gateway.cli import main
from gateway.learning.csvseries import CsvError, read_csv_series


def replay_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:
    code = main(["experiment", "replay", *args, "--json"])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, (json.loads(lines[-1]) if code == 0 else {}), err


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def synthetic_csv(path: Path, n: int = 1500, *, iso: bool = False) -> Path:
    rng = np.random.default_rng(0)
    t0 = 1_700_000_000
    with path.open("w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["time", "temp", "hum"])
        for i in range(n):
            t = t0 + 600 * i
            stamp = np.datetime64(t, "s").astype(str) + "Z" if iso else str(t)
            day = 2 * np.pi * t / 86400
            temp = 20 + 3 * np.sin(day) + rng.normal(0, 0.2)
            hum = "" if i % 97 == 5 else f"{50 + 5 * np.cos(day) + rng.normal(0, 0.3):.3f}"
            if i == 1200:
                temp += 8
            w.writerow([stamp, f"{temp:.3f}", hum])
    return path


def test_airquality_year_spikes_and_a_shift_are_one_event_each(capsys, tmp_path) -> None:
    out = tmp_path / "flags.csv"
    code, doc, err = replay_cli(capsys, "--airquality", "--inject-spikes", "10",
                                "--inject-shift", "--out", str(out))
    assert code == 0, err
    inj = doc["injected"]
    assert inj["spikes"] == 10 and inj["events_per_spike"] == [1] * 10
    assert inj["shift_events"] == 1
    assert inj["shift_event_hours"] <= 24.0  # flags stop within one day of the shift
    assert doc["rows"] == 9357 and doc["retrainings"] >= 10 and doc["training_skips"] == {}
    assert doc["events_per_day"] <= 1.0  # the default false-alarm budget holds on new data
    assert doc["scored"] + sum(doc["skips"].values()) == doc["rows"]
    # before the first model (row 1404) persistence scores, from the first rows on
    assert doc["first_training_row"] == 1404 and "no_model_yet" not in doc["skips"]
    assert doc["scored"] > doc["rows"] - 500
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == doc["rows"] and sum(int(r["flag"]) for r in rows) == doc["flags"]
    scored = [float(r["score"]) for r in rows if r["score"]]
    assert len(scored) == doc["scored"] and all(0 <= s < 1 for s in scored)
    flagged = [float(r["score"]) for r in rows if r["flag"] == "1"]
    assert min(flagged) > 0.5  # s / (s + threshold): the alarm is at 0.5
    assert {int(r["event"]) for r in rows if r["event"]} == set(range(1, doc["events"] + 1))


@pytest.mark.parametrize("iso", [False, True])
def test_a_user_csv_is_replayed_row_by_row(capsys, tmp_path, iso: bool) -> None:
    path = synthetic_csv(tmp_path / "history.csv", iso=iso)
    code, doc, err = replay_cli(capsys, "--csv", str(path), "--train-fraction", "0.5")
    assert code == 0, err
    assert doc["rows"] == 1500 and doc["period_s"] == 600.0
    assert "no_model_yet" not in doc["skips"] and doc["scored"] > 1400  # persistence first
    spike = [e for e in doc["event_list"] if e["start"] == 1_700_000_000 + 600 * 1200]
    assert len(spike) == 1 and spike[0]["channels"] == ["temp"]


@pytest.mark.parametrize(("text", "message"), [
    ("", "is empty"),
    ("time,temp\n", "no data rows"),
    ("time\n1,\n", "no channel column"),
    ("time,temp\n1700000000,1\nyesterday,2\n", "line 3: time 'yesterday'"),
    ("time,temp\n1700000000,x\n1700000600,\n", "column 'temp' has no numeric value"),
    ("time,temp\n1700000000,1,2\n", "line 2: 3 cells"),
    ("time,temp,temp\n1700000000,1,2\n", "duplicate channel"),
])
def test_unusable_csvs_are_refused_naming_what_and_where(tmp_path, text, message) -> None:
    with pytest.raises(CsvError, match=message):
        read_csv_series(write(tmp_path / "bad.csv", text))


def test_refusals_reach_the_command_line(capsys, tmp_path) -> None:
    bad = write(tmp_path / "bad.csv", "when,temp\n1700000000,1\n1700000600,2\n1700000300,3\n")
    code, _, err = replay_cli(capsys, "--csv", str(bad))
    assert code == 2 and "line 4: time 1700000300.0 is not after" in err
    code, _, err = replay_cli(capsys, "--csv", str(bad), "--time-column", "at")
    assert code == 2 and "no time column 'at'" in err
    code, _, err = replay_cli(capsys, "--csv", str(tmp_path / "missing.csv"))
    assert code == 2 and "missing.csv: cannot be read" in err
    code, _, err = replay_cli(capsys, "--csv", str(bad), "--train-fraction", "1.5")
    assert code == 2 and "--train-fraction 1.5" in err


def test_a_file_too_short_to_train_reports_its_skips(capsys, tmp_path) -> None:
    path = synthetic_csv(tmp_path / "short.csv", n=40)
    code, doc, err = replay_cli(capsys, "--csv", str(path))
    assert code == 0, err
    # too few windows to train, and to calibrate persistence on (the same min_windows)
    assert doc["scored"] == 0 and doc["events"] == 0
    assert doc["training_skips"] and doc["skips"] == {"no_model_yet": 40}


def test_a_retraining_the_promotion_guard_rejects_is_not_swapped_in(monkeypatch) -> None:
    """As live: a rejected version never scores; the next training continues the current."""
    from gateway.config import TrainingSection
    from gateway.learning import promotion
    from gateway.learning import replay as replaying

    rng = np.random.default_rng(3)
    ts = 1.7e9 + 600.0 * np.arange(1500)
    day = 2 * np.pi * ts / 86400
    values = np.stack([20 + 3 * np.sin(day), 50 + 5 * np.cos(day)], axis=1)
    values += rng.normal(0, 0.2, values.shape)
    judged: list[object] = []

    def guard(candidate, current, ts, values, **kw):  # the real guard first, then a refusal
        judged.append(current)
        if current is None:
            return promotion.judge(candidate, current, ts, values, **kw)
        return promotion.Decision(False, promotion.WORSE_THAN_CURRENT, "refused here")

    swapped: list[object] = []
    real_swap = replaying.Detector.swap

    def swap(self, predictor, calibration):
        swapped.append(predictor)
        real_swap(self, predictor, calibration)

    monkeypatch.setattr(replaying, "judge", guard)
    monkeypatch.setattr(replaying.Detector, "swap", swap)
    settings = TrainingSection(period_s=600.0, epochs=3, window=6, min_new_readings=300)
    out = replaying.replay(ts, values, ["temp", "hum"], settings)
    s = out.summary
    assert s["trainings"] >= 3 and s["rejections"] == {"worse_than_current": s["trainings"] - 1}
    # persistence (recalibrated as rows doubled) until the first model, which then scored
    # the rest of the replay: no rejected version was swapped in
    models = [p for p in swapped if isinstance(p, replaying.ForecastPredictor)]
    assert len(models) == 1 and models[0] is swapped[-1]
    assert judged[0] is None and all(c is judged[1] for c in judged[1:])  # it stayed current
    assert s["scored"] > 1000


def test_replay_board_gives_the_board_scorers_scores_and_keeps_the_guard(monkeypatch) -> None:
    """``replay --board``: the promoted model as the board runs it (its LEM1 bytes with the
    calibrated board threshold, calendar inputs, replacement, no phase correction, no
    adaptation) gives the replay's score of every reading after the first training."""
    from learning_streams import sensor_stream

    from gateway.config import TrainingSection
    from gateway.learning import replay as replaying
    from gateway.learning.edge_export import edge_model_bytes
    from gateway.learning.forecast import ForecastModel
    from shared import edge_model

    n = 2000
    s = sensor_stream(n, seed=2, n_anomalies=6, anomaly_from=0.5, drop_fraction=0.0)
    ts = 1.7e9 + 60.0 * np.arange(n)  # on the grid: the board sees the slot times
    trained: list[tuple[object, dict]] = []
    real = replaying.train_and_calibrate

    def recording(*args, **kw):
        result = real(*args, **kw)
        trained.append((result, kw))
        return result

    monkeypatch.setattr(replaying, "train_and_calibrate", recording)
    settings = TrainingSection(period_s=60.0, window=6, hidden_units=12, epochs=4,
                               min_new_readings=10**6)
    out = replaying.replay(ts, s.values, s.channels, settings, train_fraction=0.3, board=True)
    assert out.summary["rejections"] == {} and out.summary["trainings"] == 1
    (model, cal), kw = trained[0]
    assert kw["board"] is True and kw["previous"] is None
    assert model.calendar and cal.bins == 1 and not cal.bias.any() and cal.persist == ()
    pushed = ForecastModel.from_metadata({**model.metadata(), "threshold": cal.threshold},
                                         model.weights)
    board = edge_model.parse_model(edge_model_bytes(pushed))
    first, w = out.summary["first_training_row"], model.window
    for i in range(first - w, first):  # the replay's detector warms up on the stored rows
        assert board.score([float(v) for v in s.values[i]], float(ts[i])) is None
    scores = [board.score([float(v) for v in s.values[i]], float(ts[i])) for i in range(first, n)]
    units = [sc / (sc + cal.threshold) for sc in scores]
    np.testing.assert_allclose(np.asarray(out.score[first:], np.float64), units,
                               rtol=1e-4, atol=1e-4)
    assert list(out.flag[first:]) == [board.flagged(sc) for sc in scores]
    assert out.flag[s.anomalies].any()  # the injected spikes are there to flag
