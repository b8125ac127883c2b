"""The dashboard in headless Chromium against a running gateway with data and training."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from support import REPO, GatewayProcess, publish_readings, publisher, wait_for, write_config

from gateway.rigs.broker import PrivateBroker

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TRAINING = {"enabled": True, "period_s": 1.0, "window": 4, "hidden_units": 8, "epochs": 5,
            "min_windows": 16, "min_new_readings": 100, "check_interval_s": 0.5,
            "validation_fraction": 0.2, "test_fraction": 0.2, "anomaly_interval_s": 0.5}


@pytest.mark.browser
def test_dashboard_shows_devices_and_training_curve(
    tmp_path: Path, broker: PrivateBroker, prefix: str, gateway_process: type[GatewayProcess]
) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium (make browser)")
    from playwright.sync_api import sync_playwright

    config = write_config(tmp_path, broker, prefix, training=TRAINING)
    gw = gateway_process(config).start()
    api = httpx.Client(base_url=gw.url, timeout=10)
    client = publisher(broker, f"pub-{prefix}")
    t0 = int(time.time()) - 1000
    for device in ("greenhouse", "shed"):
        publish_readings(client, prefix, device, 300, t0=t0,
                     anomalies_every=40)
    wait_for(lambda: len(api.get("/api/rounds").json()) >= 2, timeout=90, what="first rounds")

    def warmed() -> float:  # slots the gateway's detector used to fill its windows
        line = [x for x in api.get("/metrics").text.splitlines()
                if x.startswith('learnae_anomaly_unscored_total{reason="warming"}')]
        return float(line[0].split()[-1]) if line else 0.0

    wait_for(lambda: warmed() >= 2 * TRAINING["window"], timeout=60,
             what="the detector warmed up on both devices")
    publish_readings(client, prefix, "greenhouse", 200, seq=300, t0=t0 + 300,
                     anomalies_every=40, spikes=(150,))  # temp + 10 at t0 + 450
    wait_for(lambda: len(api.get("/api/rounds").json()) >= 3, timeout=90, what="a second round")
    wait_for(lambda: any(e["start"] - 0.5 <= t0 + 450 <= e["end"] + 0.5 for e in
                         api.get("/api/devices/greenhouse/anomalies").json()),
             timeout=60, what="the spike's anomaly event")
    client.disconnect()
    api.close()
    # a version the promotion guard refused: listed with its reason, never current
    from gateway_rig import db_path

    from gateway.learning.registry import ModelRegistry

    with ModelRegistry(db_path(config)) as registry:
        current = registry.current("greenhouse")
        assert current is not None
        meta = dict(current.metadata, promotion={"promoted": False,
                                                 "result": "worse_than_persistence",
                                                 "reason": "test reason", "figures": {}})
        rejected = registry.register("greenhouse", "forecast", current.weights, meta,
                                     status="rejected", reason="held-out MAE not below")

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(gw.url + "/")
        page.wait_for_selector("body[data-loaded='1']", timeout=20000)
        page.wait_for_timeout(5500)  # one automatic refresh must also be clean
        cards = page.locator("#devices .device")
        assert sorted(cards.evaluate_all("cs => cs.map(c => c.dataset.device)")) == [
            "greenhouse", "shed"]
        greenhouse = page.locator(".device[data-device='greenhouse']")
        assert greenhouse.locator(".channel").evaluate_all(
            "cs => cs.map(c => c.dataset.channel)") == ["temp", "hum"]
        assert greenhouse.locator("svg.spark polyline").count() == 2
        assert greenhouse.locator("svg.spark circle.anomaly").count() > 0
        assert "500 readings" in greenhouse.inner_text()
        assert "anomaly event" in greenhouse.locator(".events").inner_text()
        temp = greenhouse.locator(".channel[data-channel='temp'] svg.spark rect.event")
        assert temp.count() >= 1  # the spike's event is shaded on the temp sparkline
        curve = page.locator("#training-chart svg polyline")
        assert sorted(curve.evaluate_all("ls => ls.map(l => l.dataset.peer)")) == [
            "greenhouse", "shed"]
        assert page.locator("#models a.download").count() == 4
        cell = page.locator("#models tr[data-model='greenhouse'] td.rejected").inner_text()
        assert f"v{rejected}" in cell and "held-out MAE not below" in cell
        assert page.locator("#models tr[data-model='shed'] td.rejected").inner_text() == "\u2013"
        assert page.locator("#gateway-id").inner_text() == "gw-test"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        page.goto(gw.url + "/docs")
        page.wait_for_selector(".op", timeout=10000)
        assert page.locator(".op").count() >= 10
        browser.close()
    assert errors == []
