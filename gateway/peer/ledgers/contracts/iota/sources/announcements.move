// The Move module the `iota` (layer 1) ledger adapter calls. Publish it with the IOTA CLI
// (`iota client publish`, see docs/operations.md) and put the package id in
// [ledger] contract. Like the EVM contract it keeps nothing: the event is the record,
// and readers verify `binding_sig`. This source is not compiled by the project's tests
// (no registry ships the IOTA CLI); the transaction that calls it is (golden bytes).
module learnae::announcements;

use iota::event;
use std::string::String;

public struct Announced has copy, drop {
    session: String,
    peer_id: String,
    round: u32,
    entry_cid: String,
    binding_sig: vector<u8>,
    sender: address,
}

public fun announce(
    session: String,
    peer_id: String,
    round: u32,
    entry_cid: String,
    binding_sig: vector<u8>,
    ctx: &TxContext,
) {
    event::emit(Announced { session, peer_id, round, entry_cid, binding_sig, sender: ctx.sender() });
}
