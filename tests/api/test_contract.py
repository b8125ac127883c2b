"""The API contract: ``/openapi.json`` declares every answer the gateway gives.

The fuzzing test runs schemathesis, with all its checks, against a real gateway
process (bearer token set, ingest under way from a publisher, a model registered)
and expects zero failures; the static test holds every route, including ones
added later, to the cross-cutting answers of ``gateway.api.contract``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from gateway_rig import db_path
from support import (
    REPO,
    TOKEN,
    GatewayProcess,
    publish_readings,
    publisher,
    register_model,
    wait_for,
    write_config,
)

from gateway.config import load_config
from gateway.ota import KeyStore, keys_dir
from gateway.rigs.broker import PrivateBroker
from gateway.store import Store

EXAMPLES_PER_OPERATION = 60  # about 15 s on an idle 2-core machine
SCHEMATHESIS_TIMEOUT_S = 240


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in doc["paths"].items()
            for method, op in ops.items()]


def test_every_error_answer_is_declared_with_a_body_schema(api_client: TestClient) -> None:
    doc = api_client.get("/openapi.json").json()
    operations = _operations(doc)
    assert len(operations) >= 14
    for method, path, op in operations:
        codes = set(op["responses"])
        where = f"{method} {path}"
        if op.get("parameters") or "requestBody" in op:
            assert "422" in codes, where
        assert "413" in codes, where  # the body limit is checked before routing
        if "requestBody" in op:
            assert "400" in codes, where
        if op.get("security"):
            assert {"401", "403"} <= codes, where
        for code, answer in op["responses"].items():
            if code.startswith(("4", "5")):
                schema = answer["content"]["application/json"]["schema"]
                assert schema.get("$ref", "").removeprefix("#/components/schemas/") in \
                    doc["components"]["schemas"], (where, code)
    limit = next(p for p in doc["paths"]["/api/devices"]["get"]["parameters"]
                 if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 500  # api.max_page of the fixture's config
    health = doc["paths"]["/healthz"]["get"]["responses"]["503"]
    assert health["content"]["application/json"]["schema"]["$ref"].endswith("/Health")


def test_schemathesis_finds_no_failures_against_a_running_gateway(
        tmp_path: Path, broker: PrivateBroker, prefix: str,
        gateway_process: type[GatewayProcess]) -> None:
    config = write_config(tmp_path, broker, prefix, api={"port": 0, "token": TOKEN},
                          ota={"timeout_s": 30.0})
    # dev-a has an OTA key, so the OTA routes answer 202, 409 and 200 too (no board answers:
    # the push times out after the run)
    KeyStore(keys_dir(load_config(config))).create("dev-a")
    gateway = gateway_process(config).start()
    assert gateway.url is not None
    client = publisher(broker, f"pub-{prefix}")
    stop = threading.Event()
    sent = {"dev-a": 0, "dev-b": 0}

    def stream() -> None:  # ingest under way for the whole run (QoS 1, acked)
        while not stop.is_set():
            for device in sent:
                sent[device] += publish_readings(client, prefix, device, 20, seq=sent[device],
                                                 t0=1_700_000_000 + sent[device])
            stop.wait(0.2)

    feeder = threading.Thread(target=stream, daemon=True)
    feeder.start()
    try:
        wait_for(lambda: _stored(config) >= 40, 30, "the first readings to be stored")
        register_model(db_path(config), "dev-a")  # so the model routes answer 200 too
        stored_before = _stored(config)
        result = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{gateway.url}/openapi.json",
             "--checks", "all", "--header", f"Authorization: Bearer {TOKEN}",
             "--max-examples", str(EXAMPLES_PER_OPERATION), "--workers", "1",
             "--generation-database", "none", "--no-color",
             "--report", "junit", "--report-dir", str(tmp_path / "report")],
            cwd=tmp_path, capture_output=True, text=True, timeout=SCHEMATHESIS_TIMEOUT_S,
            env={**os.environ, "SCHEMATHESIS_HOOKS": "contract_hooks",
                 "PYTHONPATH": str(REPO / "tests" / "api")},
        )
        stored_during = _stored(config) - stored_before
    finally:
        stop.set()
        feeder.join(30)
        client.disconnect()
        client.loop_stop()
    out = result.stdout
    assert result.returncode == 0, out[-8000:] + result.stderr[-2000:]
    assert "No issues found" in out, out[-3000:]
    generated = re.search(r"(\d+) generated", out)
    assert generated is not None and int(generated.group(1)) >= 14 * 10, out[-2000:]
    declared = len(_operations(httpx.get(f"{gateway.url}/openapi.json").json()))
    assert f"Tested: {declared}\n" in out, out[-2000:]  # every operation reached
    assert stored_during > 0, "ingest stalled while the API was fuzzed"
    total = sum(sent.values())
    wait_for(lambda: _stored(config) == total, 30, f"all {total} acked readings stored")
    assert gateway.proc is not None and gateway.proc.poll() is None


def _stored(config: Path) -> int:
    with Store.open(db_path(config), readonly=True) as store:
        return sum(d.stored for d in store.devices())
