// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title LEARNAE head announcements
/// @notice A peer announces the CID of a new entry of its signed log. Nothing is kept in
/// contract state: the event is the record, ordered by the chain and readable by anyone.
/// The contract checks nothing about the announcement: readers verify `bindingSig`
/// (the peer's ed25519 signature over chain id, this contract, session, round, entry
/// CID and `sender`) and refuse what does not bind.
contract Announcements {
    /// @param session training session id (its keccak256 is the first topic, for filtering)
    /// @param peerId the announcing peer's id (its keccak256 is the second topic)
    /// @param round the entry's round
    /// @param entryCid CID of the log entry
    /// @param bindingSig ed25519 signature binding this record to the peer id
    /// @param sender the account that sent the transaction
    event Announced(
        string indexed sessionTopic,
        string indexed peerTopic,
        string session,
        string peerId,
        uint32 round,
        string entryCid,
        bytes bindingSig,
        address sender
    );

    function announce(
        string calldata session,
        string calldata peerId,
        uint32 round,
        string calldata entryCid,
        bytes calldata bindingSig
    ) external {
        emit Announced(session, peerId, session, peerId, round, entryCid, bindingSig, msg.sender);
    }
}
