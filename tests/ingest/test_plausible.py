"""Every channel a driver can produce has a plausible range (shared/plausible.py), the
ranges hold the data the firmware really sends, and the ingest stores a value outside
one as missing (a board whose ADC reads 0 reports cpu_temp 437.23 C)."""

from __future__ import annotations

import csv
import gzip
import math
import re

import pytest

from gateway.data.airquality import AIRQUALITY_CSV
from gateway.firmware import FIRMWARE_DIR
from gateway.ingest.validate import DEFAULT_RANGES
from gateway.store import Changes
from shared.codec import Batch, encode_binary
from shared.plausible import PLAUSIBLE, plausible_ranges
from shared.sensor_config import SENSOR_CHANNELS, column_channel
from tests.ingest.test_validate import blobs, validator


def driver_channels() -> dict[str, tuple[str, ...]]:
    """Each firmware driver (edge_firmware/drv_*.py) by sensor type, with the
    channels it produces by default (a replay sensor: the AirQuality columns)."""
    with gzip.open(AIRQUALITY_CSV, "rt", newline="") as handle:
        header = next(csv.reader(handle))
    numeric = [c for c in header if c not in ("Date", "Time")]
    out = {}
    for path in sorted(FIRMWARE_DIR.glob("drv_*.py")):
        kind = path.stem[4:]
        native = SENSOR_CHANNELS[kind]  # every driver is a sensor type of the config
        out[kind] = tuple(column_channel(c) for c in numeric) if native is None else native
    return out


def test_every_driver_channel_has_a_range() -> None:
    channels = driver_channels()
    assert set(channels) == set(SENSOR_CHANNELS)  # no sensor type without its driver
    missing = {(k, c) for k, chans in channels.items() for c in chans if c not in PLAUSIBLE}
    assert not missing
    for name, (low, high) in PLAUSIBLE.items():
        assert re.fullmatch(r"[a-z0-9_]{1,16}", name) and math.isfinite(low) and low < high
    assert PLAUSIBLE["cpu_temp"] == (-40.0, 125.0)
    assert plausible_ranges() == DEFAULT_RANGES


def test_the_airquality_year_is_plausible() -> None:
    """The bundled data a replay sensor sends fits its ranges (-200 marks missing)."""
    with gzip.open(AIRQUALITY_CSV, "rt", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for column in rows[0]:
        if column in ("Date", "Time"):
            continue
        low, high = PLAUSIBLE[column_channel(column)]
        values = [float(r[column]) for r in rows if r[column] not in ("", "-200", "-200.0")]
        assert values and low <= min(values) and max(values) <= high, column


def test_rp2040_temp_driver_range_matches_its_formula() -> None:
    """drv_rp2040_temp: 27 - (V - 0.706) / 0.001721; the ADC's full scale spans
    437.23 C (reading 0) to -437 C; the rated range is well inside."""
    source = (FIRMWARE_DIR / "drv_rp2040_temp.py").read_text()
    assert "27.0 - (volts - 0.706) / 0.001721" in source

    def temp(u16: int) -> float:
        return 27.0 - (u16 * 3.3 / 65535 - 0.706) / 0.001721

    low, high = PLAUSIBLE["cpu_temp"]
    assert round(temp(0), 2) == 437.23 and not low <= temp(0) <= high
    assert low <= temp(14000) <= high  # 0.705 V: 27 C


@pytest.mark.parametrize("value", [437.23, -41.0, 125.5])
def test_implausible_cpu_temp_is_stored_as_missing(value: float) -> None:
    v = validator()
    payload = encode_binary(Batch(1, 0, 0, ["cpu_temp"], [[30.0], [value]]))
    changes = Changes()
    v.add("p/pico/data", payload, 1000.0, changes)
    assert blobs(changes) == [(30.0,), (None,)]
    assert changes.implausible == {"cpu_temp": 1}
    (flag,) = changes.flagged
    assert "cpu_temp" in flag.detail and "outside -40..125" in flag.detail
