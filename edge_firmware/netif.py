# Wi-Fi station bring-up, part of the agent's one reconnect path.
#
# connect() returns at once when the link is up and otherwise raises OSError
# after a bounded wait, so the caller's backoff decides when to try again.
# A config without a wifi section (a host, an Ethernet board) skips Wi-Fi;
# on a host with one, edge_firmware/host/network.py stands in (always up).
import time

_wlan = None


def _sta():
    global _wlan
    if _wlan is None:
        import network

        _wlan = network.WLAN(network.STA_IF)
    return _wlan


def connect(wifi, wdt=None):
    """Join (wifi.timeout_ms at most), feeding the watchdog ``wdt`` while it waits:
    a join outlasts the Pico W's 8388 ms watchdog."""
    if not wifi:
        return  # no wifi section: the link is managed outside (host, Ethernet board)
    wlan = _sta()
    if wlan.isconnected():
        return
    wlan.active(True)
    wlan.connect(wifi["ssid"], wifi.get("password"))
    timeout_ms = wifi.get("timeout_ms", 15000)
    start = time.ticks_ms()
    while not wlan.isconnected():
        if wdt is not None:
            wdt.feed()
        if time.ticks_diff(time.ticks_ms(), start) > timeout_ms:
            wlan.disconnect()  # give the join up: the next attempt starts afresh
            raise OSError("Wi-Fi %r not connected after %d ms" % (wifi["ssid"], timeout_ms))
        time.sleep_ms(100)


def rssi():
    """Signal strength in dBm, or None where the interface cannot tell."""
    try:
        return _sta().status("rssi")
    except Exception:
        return None


def sync_clock():
    """Set the clock once over NTP (config "ntp": true); return True or the reason."""
    try:
        import ntptime

        ntptime.settime()
        return True
    except Exception as exc:  # ImportError on a host, OSError on a timeout
        return "%s: %s" % (type(exc).__name__, exc)
