"""The bundled AirQuality recording loads as plain arrays, -200 as NaN."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.data.airquality import SENSOR_CHANNELS, load_airquality


def test_sensor_channels_load_with_gaps_as_nan() -> None:
    rec = load_airquality()
    assert rec.channels == list(SENSOR_CHANNELS)
    assert rec.ts.dtype == np.float64 and rec.values.dtype == np.float64
    assert rec.values.shape == (9357, 8)
    assert np.isnan(rec.values).sum(axis=0).tolist() == [366] * 8
    assert not np.any(rec.values == -200.0)
    assert rec.ts[0] == np.datetime64("2004-03-10T18:00:00").astype("datetime64[s]").astype(float)
    assert set(np.diff(rec.ts).tolist()) == {3600.0}
    np.testing.assert_allclose(
        rec.values[0],
        [
            1360.0,
            1045.5,
            1056.25,
            1692.0,
            1267.5,
            13.599999904633,
            48.875000953674,
            0.7577538251293606,
        ],
    )


def test_all_columns_and_unknown_names() -> None:
    rec = load_airquality(None)
    assert rec.values.shape == (9357, 13) and rec.channels[0] == "CO(GT)"
    assert np.isnan(rec.values[:, rec.channels.index("NMHC(GT)")]).sum() > 8000
    with pytest.raises(KeyError, match="'ozone'"):
        load_airquality(["ozone"])
    part = rec.slice(100, 200)
    assert part.values.shape == (100, 13) and part.ts[0] == rec.ts[100]
