"""The peer loop as the API shows it: own rounds, peers' verified entries, the ledger."""

from __future__ import annotations

from typing import Any

from gateway.federation.part import PeerPart

__all__ = ["PeerView"]


class PeerView:
    """The API's PeerSource over a PeerPart: own rounds plus verified entries of others."""

    def __init__(self, part: PeerPart) -> None:
        self.part = part

    def self_id(self) -> str:
        return str(self.part.peer_id)

    def store_status(self) -> dict[str, Any] | None:
        """The content store's disk use against ``peer.max_store_bytes`` (None before a round)."""
        node = self.part.node
        retention = None if node is None else node.retention
        if retention is None or (retention.gc_runs == 0 and retention.bytes == 0):
            return None
        return dict(retention.status().as_dict())

    def _records(self) -> list[Any]:
        node = self.part.node
        return [] if node is None else list(node.directory.records.values())

    def peers(self) -> list[dict[str, Any]]:
        node = self.part.node
        own: dict[str, Any] = {"peer_id": self.self_id(), "is_self": True}
        if node is not None and node.history:
            last = node.rounds(1)[-1]
            own.update(last_round=last.round, last_seen=last.time, samples=last.samples,
                       metrics=dict(last.metrics))
        out = [own]
        for rec in sorted(self._records(), key=lambda r: r.peer_id):
            entry = rec.head_entry
            item: dict[str, Any] = {"peer_id": rec.peer_id, "is_self": False,
                                    "last_seen": rec.last_seen or None,
                                    "claimed_round": rec.claimed_round
                                    if rec.claimed_round >= 0 else None,
                                    "rejected": dict(rec.rejected)}
            if entry is not None:
                item.update(last_round=entry.round, samples=entry.samples,
                            metrics=dict(entry.metrics))
            out.append(item)
        return out

    def ledger(self, limit: int) -> dict[str, Any] | None:
        """What the node's ledger link holds (for ``GET /api/ledger``); None before it runs."""
        node = self.part.node
        if node is None:
            return None
        link, own = node.ledger, self.self_id()

        def anchored(a: Any) -> dict[str, Any]:
            return {"peer_id": a.peer, "round": a.round, "entry_cid": a.entry_cid, "tx": a.tx,
                    "block": a.position[0], "log_index": a.position[1], "time": a.time,
                    "sender": a.sender, "is_self": a.peer == own}

        return {
            "kind": link.ledger.kind, "enabled": link.active, "transport": link.every_round,
            "anchor_every": link.anchor_every,
            "items": [anchored(a) for a in link.anchored_entries(limit)],
            "pending": len(link.outbox), "rejected": dict(link.rejected),
            "forked_peers": sorted(link.forked),
            "evidence": [{"peer_id": e.peer, "session": e.session, "round": e.round,
                          "entries": [anchored(e.first), anchored(e.second)]}
                         for e in link.fork_evidence()],
        }

    def rounds(self, limit: int) -> list[dict[str, Any]]:
        node = self.part.node
        rows: list[dict[str, Any]] = []
        anchored: set[str] = set()
        if node is not None:
            anchored = {a.entry_cid for a in node.ledger.anchored_entries(10_000)}
            for info in node.rounds(limit):
                rows.append({"peer_id": self.self_id(), "round": info.round, "time": info.time,
                             "samples": info.samples, "metrics": dict(info.metrics),
                             "weights_cid": info.weights_cid, "entry_cid": info.entry_cid,
                             "parents": list(info.parents),
                             "fused_peers": list(info.fused_peers),
                             "anchored": info.entry_cid in anchored})
        for rec in self._records():
            for cid, entry in list(rec.chain.items()):
                rows.append({"peer_id": entry.peer, "round": entry.round, "time": entry.time,
                             "samples": entry.samples, "metrics": dict(entry.metrics),
                             "weights_cid": entry.weights, "entry_cid": cid,
                             "parents": list(entry.parents), "anchored": cid in anchored})
        rows.sort(key=lambda r: (r["time"] or 0.0, r["round"]))
        return rows[-limit:]
