"""The API's OTA pushes: one running push per device, in a thread of its own, and its metrics.

``OtaJobs.start`` builds the bundle of the installed firmware (``board`` picks the
compiler architecture) and pushes it through the broker (``gateway.ota.push``);
``outcome`` answers where a device's last push stands, as the push sees it:
``state`` requested, receiving, switching, then updated, refused (with the
board's reason), rolled_back, timeout or failed. Counted in ``/metrics``:
``learnae_ota_pushes_total{outcome}`` and ``learnae_ota_bytes_acked{device}``.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from gateway.config import GatewayConfig
from gateway.errors import OtaBusy
from gateway.ota.bundle import Bundle, build_bundle
from gateway.ota.keys import KeyStore, keys_dir
from gateway.ota.push import OtaPush, Outcome


def make_push(config: GatewayConfig, on_progress: Callable[[Outcome], None] | None = None
              ) -> OtaPush:
    """An ``OtaPush`` through the gateway's broker, with its ``[ota]`` settings."""
    mqtt, ota = config.mqtt, config.ota
    return OtaPush(host=mqtt.host, port=mqtt.port, prefix=mqtt.topic_prefix,
                   username=mqtt.username, password=mqtt.password, chunk=ota.chunk,
                   window=ota.window, ack_timeout=ota.ack_timeout_s, confirm_s=ota.confirm_s,
                   on_progress=on_progress)


class OtaJobs:
    """The pushes the API started (one per device at a time) and their metrics."""

    def __init__(self, config: GatewayConfig, registry: CollectorRegistry | None = None
                 ) -> None:
        reg = REGISTRY if registry is None else registry
        self.config = config
        self.pushes = Counter("learnae_ota_pushes", "OTA pushes by outcome", ["outcome"],
                              registry=reg)
        self.acked = Gauge("learnae_ota_bytes_acked",
                           "bytes of the running OTA stream the board has acknowledged",
                           ["device"], registry=reg)
        self._lock = threading.Lock()
        self._outcomes: dict[str, Outcome | dict[str, Any]] = {}
        self._threads: dict[str, threading.Thread] = {}

    def busy(self, device: str) -> bool:
        thread = self._threads.get(device)
        return thread is not None and thread.is_alive()

    def start(self, device: str, board: str | None = None) -> Bundle:
        """Build the bundle and start pushing it to ``device``; returns the bundle.

        Raises KeyError (the device has no OTA key), OtaBusy (a push to it is
        running) or BundleError (the bundle cannot be built)."""
        try:
            key = KeyStore(keys_dir(self.config)).get(device)
        except KeyError:
            self.pushes.labels("no_key").inc()
            raise
        with self._lock:
            if self.busy(device):
                self.pushes.labels("busy").inc()
                raise OtaBusy(f"a push to {device!r} is still running")
            bundle = build_bundle(Path(tempfile.mkdtemp(prefix="learnae-ota-")), board=board)

            def progress(outcome: Outcome) -> None:
                self._outcomes[device] = outcome
                self.acked.labels(device).set(outcome.next)

            push = make_push(self.config, progress)

            def work() -> None:
                try:
                    out = push.push({device: (bundle, key)}, timeout=self.config.ota.timeout_s)
                    self._outcomes[device] = out[device]
                    self.pushes.labels(out[device].state).inc()
                except OSError as exc:
                    self._outcomes[device] = {"device": device, "state": "failed",
                                              "reason": f"broker: {exc}"}
                    self.pushes.labels("failed").inc()

            self._outcomes[device] = {"device": device, "state": "requested",
                                      "version": bundle.version}
            thread = threading.Thread(target=work, name=f"ota-{device}", daemon=True)
            self._threads[device] = thread
            thread.start()
        return bundle

    def outcome(self, device: str) -> dict[str, Any] | None:
        """Where the device's last push stands (None: no push to it yet)."""
        found = self._outcomes.get(device)
        if found is None:
            return None
        return dict(found) if isinstance(found, dict) else found.as_dict()
