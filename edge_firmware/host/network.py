# Host stand-in for the board's ``network`` module: the host's own network is
# always up, so the station interface is connected and has no RSSI. The board
# profiles' (rp2, esp32) is board/network.py.
STA_IF = 0
AP_IF = 1


class WLAN:
    def __init__(self, interface=STA_IF):
        self._active = False

    def active(self, on=None):
        if on is not None:
            self._active = on
        return self._active

    def connect(self, ssid=None, key=None):
        self._active = True

    def disconnect(self):
        pass

    def isconnected(self):
        return True

    def status(self, param=None):
        if param == "rssi":
            raise OSError("no RSSI on a host")
        return 3  # STAT_GOT_IP

    def ifconfig(self):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
