"""``GET /api/ledger`` without a ledger: a well-formed, empty answer."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_ledger_without_peering_is_disabled(api_client: TestClient) -> None:
    reply = api_client.get("/api/ledger")
    assert reply.status_code == 200
    assert reply.json() == {
        "kind": "none", "enabled": False, "transport": False, "anchor_every": 0, "items": [],
        "pending": 0, "rejected": {}, "forked_peers": [], "evidence": [],
    }
    too_many = api_client.get("/api/ledger", params={"limit": 100_000})
    assert too_many.status_code == 422 and "api.max_page" in too_many.text
