"""Plausible ranges of the channels the drivers produce: the gateway's
implausible-value check (gateway/ingest/validate.py).

Every channel a driver produces (shared/sensor_config.py SENSOR_CHANNELS, and
a replay sensor's AirQuality columns by their channel names) has a range here,
as do the channels the gateway knows from other sources. A value outside its
channel's range is stored as missing and its payload quarantined. A module of
its own, beside shared/sensor_config.py: a board validating its config loads
that module in a heap where this table does not fit, and a board never loads
this one.
"""

PLAUSIBLE = {
    "temp": (-60.0, 100.0),          # deg C, air
    "hum": (0.0, 100.0),             # % relative humidity
    "press": (300.0, 1100.0),        # hPa (bme280)
    "pressure": (300.0, 1100.0),
    "cpu_temp": (-40.0, 125.0),      # deg C, the RP2040's rated junction range
    # read_u16 / 65535 * scale + offset, |scale| and |offset| <= 1e9 (the config's
    # bounds): any finite value the driver can make is plausible
    "analog": (-2e9, 2e9),
    "voltage": (-1000.0, 1000.0),    # V
    # the AirQuality year (replay): T, RH, AH (g/m3), CO(GT) mg/m3, NMHC(GT),
    # C6H6(GT) and NO2(GT) ug/m3, NOx(GT) ppb, PT08.* sensor responses
    "t": (-60.0, 100.0),
    "rh": (0.0, 100.0),
    "ah": (0.0, 100.0),
    "co_gt": (0.0, 100.0),
    "nmhc_gt": (0.0, 5000.0),
    "c6h6_gt": (0.0, 500.0),
    "nox_gt": (0.0, 5000.0),
    "no2_gt": (0.0, 2000.0),
    "pt08_s1_co": (0.0, 5000.0),
    "pt08_s2_nmhc": (0.0, 5000.0),
    "pt08_s3_nox": (0.0, 5000.0),
    "pt08_s4_no2": (0.0, 5000.0),
    "pt08_s5_o3": (0.0, 5000.0),
    # channels of other sources
    "co2": (0.0, 40000.0),           # ppm
    "pm1": (0.0, 2000.0),            # ug/m3
    "pm25": (0.0, 2000.0),
    "pm10": (0.0, 2000.0),
    "lux": (0.0, 200000.0),
    "light": (0.0, 200000.0),
    "soil": (0.0, 100.0),            # % volumetric water
    "vbat": (0.0, 10.0),             # V
    "battery": (0.0, 100.0),         # %
    "rssi": (-130.0, 0.0),           # dBm
}


def plausible_ranges():
    """A copy of PLAUSIBLE: {channel: (low, high)}."""
    return dict(PLAUSIBLE)
