# Board profiles' ``network`` (rp2, esp32; see machine.py beside it; the plain
# host's, always up, is ../network.py): the station interface starts down,
# connect() joins after LEARNAE_WIFI_JOIN_MS (default 300 ms), the status codes
# are the port's, RSSI reads -58 dBm; LEARNAE_WIFI=never is an access point
# that never accepts the join (status stays STAT_CONNECTING).
import os

BOARD = os.getenv("LEARNAE_BOARD") or "rp2"
STA_IF = 0
AP_IF = 1
if BOARD == "esp32":
    STAT_IDLE = 1000
    STAT_CONNECTING = 1001
    STAT_GOT_IP = 1010
    STAT_NO_AP_FOUND = 201
    STAT_WRONG_PASSWORD = 202
else:
    STAT_IDLE = 0
    STAT_CONNECTING = 1
    STAT_GOT_IP = 3
    STAT_NO_AP_FOUND = -2
    STAT_WRONG_PASSWORD = -3
    STAT_CONNECT_FAIL = -1


class WLAN:
    def __init__(self, interface=STA_IF):
        self._active = False
        self._joining = None  # ticks of connect(), None = not joining

    def active(self, on=None):
        if on is not None:
            self._active = on
        return self._active

    def connect(self, ssid=None, key=None):
        import time

        self._active = True
        self._joining = time.ticks_ms()

    def disconnect(self):
        self._joining = None

    def isconnected(self):
        if self._joining is None or not self._active or os.getenv("LEARNAE_WIFI") == "never":
            return False
        import time

        wait = int(os.getenv("LEARNAE_WIFI_JOIN_MS") or 300)
        return time.ticks_diff(time.ticks_ms(), self._joining) >= wait

    def status(self, param=None):
        if param == "rssi":
            return -58
        if self.isconnected():
            return STAT_GOT_IP
        return STAT_IDLE if self._joining is None else STAT_CONNECTING

    def ifconfig(self):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
