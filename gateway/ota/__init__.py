"""Over-the-air firmware updates over MQTT (docs/protocol.md, OTA).

``build_bundle`` compiles the firmware for a board into a :class:`Bundle`;
:class:`KeyStore` keeps each device's HMAC key; :class:`OtaPush` sends bundles
to boards through the broker and follows them to a confirmed (or refused, or
rolled back) outcome.
"""

from gateway.ota.bundle import Bundle, BundleError, build_bundle
from gateway.ota.keys import KeyStore
from gateway.ota.push import OtaPush, Outcome

__all__ = ["Bundle", "BundleError", "KeyStore", "OtaPush", "Outcome", "build_bundle"]
