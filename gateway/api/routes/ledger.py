"""``GET /api/ledger``: entries anchored on the ledger, with their transaction and block,
the announcements refused (by reason) and the fork evidence of equivocating peers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from gateway.api.deps import ContextDep
from gateway.api.routes.devices import Limit, check_limit

router = APIRouter(prefix="/api", tags=["ledger"])


class AnchoredPublic(BaseModel):
    peer_id: str
    round: int
    entry_cid: str
    tx: str
    block: int
    log_index: int
    time: float
    sender: str
    is_self: bool


class EquivocationPublic(BaseModel):
    peer_id: str
    session: str
    round: int
    entries: list[AnchoredPublic]  # the two different entries anchored for that round


class LedgerPublic(BaseModel):
    kind: str  # none, iota-evm, memory
    enabled: bool
    transport: bool  # heads come from the ledger only (peer.transport = "ledger")
    anchor_every: int
    items: list[AnchoredPublic]  # oldest first
    pending: int  # own announcements waiting for the ledger
    rejected: dict[str, int]
    forked_peers: list[str]
    evidence: list[EquivocationPublic]


def _empty(kind: str = "none") -> LedgerPublic:
    return LedgerPublic(
        kind=kind, enabled=False, transport=False, anchor_every=0, items=[], pending=0,
        rejected={}, forked_peers=[], evidence=[],
    )


@router.get("/ledger", response_model=LedgerPublic)
def get_ledger(context: ContextDep, limit: Limit = 200) -> LedgerPublic:
    """The ledger as this gateway reads it; ``enabled`` is false without a ledger."""
    check_limit(context, limit)
    view: Any = getattr(context.peers, "ledger", None)
    doc = view(limit) if callable(view) else None
    if doc is None:
        return _empty(context.config.ledger.kind)
    return LedgerPublic.model_validate(doc)
