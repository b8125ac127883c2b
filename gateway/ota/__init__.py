"""Over-the-air firmware updates over MQTT (docs/protocol.md, OTA).

``build_bundle`` compiles the firmware for a board into a :class:`Bundle`;
:class:`KeyStore` keeps each device's HMAC key; :class:`OtaPush` sends bundles
to boards through the broker and follows them to a confirmed (or refused, or
rolled back) outcome; :class:`~gateway.ota.jobs.OtaJobs` runs the API's pushes.
"""

from gateway.errors import BundleError, OtaBusy
from gateway.ota.bundle import Bundle, build_bundle
from gateway.ota.keys import KeyStore, keys_dir
from gateway.ota.push import OtaPush, Outcome

__all__ = ["Bundle", "BundleError", "KeyStore", "OtaBusy", "OtaPush", "Outcome", "build_bundle",
           "keys_dir"]
