"""LEARNAE peers and rounds (own and others'), for the dashboard and scripts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.api.deps import ContextDep
from gateway.api.routes.devices import Limit, check_limit
from gateway.api.routes.model import UNAVAILABLE
from gateway.api.schemas import PeerPublic, PeersPublic, RoundPublic

router = APIRouter(prefix="/api", tags=["peers"])


@router.get("/peers", response_model=PeersPublic)
def list_peers(context: ContextDep) -> PeersPublic:
    """Known peers with their latest round; ``enabled`` is false when peering is off."""
    if context.peers is None:
        return PeersPublic(enabled=False, self_id=None, items=[])
    return PeersPublic(
        enabled=True,
        self_id=context.peers.self_id(),
        items=[PeerPublic.model_validate(p) for p in context.peers.peers()],
    )


@router.get("/rounds", response_model=list[RoundPublic], responses=UNAVAILABLE)
def list_rounds(
    context: ContextDep,
    limit: Limit = 200,
    peer: Annotated[str | None, Query(max_length=128, description="only this peer id")] = None,
) -> list[RoundPublic]:
    """Rounds oldest first: every peer's log entries when peering is on, else the
    local training rounds. Each carries its validation metrics (the training curve)."""
    check_limit(context, limit)
    if context.peers is not None:
        rows = context.peers.rounds(limit)
    elif context.models is not None:
        rows = context.models.history(limit)
    else:
        rows = []
    if peer is not None:
        rows = [r for r in rows if r.get("peer_id") == peer]
    rows = sorted(rows, key=lambda r: (r.get("time") or 0.0, r.get("round", 0)))[-limit:]
    return [RoundPublic.model_validate(r) for r in rows]
