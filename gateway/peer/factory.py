"""Wiring from config: the one call the service makes to get a peer node."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from gateway.config import GatewayConfig
from gateway.peer.identity import Identity
from gateway.peer.ipfs import IpfsPubsubTransport, IpfsRpc, IpfsStore
from gateway.peer.ledgers import Ledger, NoLedger, require_ledger_extra
from gateway.peer.node import PeerNode
from gateway.peer.store import ContentStore, LocalBlockStore
from gateway.peer.trainer import LocalTrainer
from gateway.peer.transport import NullTransport, Transport, UdpTransport, parse_endpoints


def build_store(config: GatewayConfig) -> ContentStore:
    peer = config.peer
    if peer.store == "ipfs":
        rpc = IpfsRpc(peer.ipfs_api, timeout=peer.fetch_timeout_s + 5.0, retries=peer.retries)
        return IpfsStore(
            rpc,
            max_block_bytes=peer.max_block_bytes,
            get_timeout=peer.fetch_timeout_s,
            repo_path=peer.ipfs_repo,
        )
    root = peer.blocks_dir or config.gateway.data_dir / "blocks"
    return LocalBlockStore(root, max_block_bytes=peer.max_block_bytes, owner=config.gateway.id)


def build_transport(
    config: GatewayConfig, *, registry: CollectorRegistry | None = None
) -> Transport:
    peer = config.peer
    if peer.transport == "ledger":  # heads come from [ledger] announcements only
        return NullTransport()
    if peer.transport == "ipfs":
        return IpfsPubsubTransport(peer.ipfs_api, timeout=peer.fetch_timeout_s, registry=registry)
    return UdpTransport(port=peer.udp_port, peers=parse_endpoints(peer.udp_peers))


def build_ledger(config: GatewayConfig, identity: Identity) -> Ledger:
    """The [ledger] adapter; web3 and iota-sdk (the ``ledger`` extra) are imported only
    when a ledger is configured."""
    ledger = config.ledger
    if ledger.kind == "none":
        return NoLedger()
    require_ledger_extra(f"ledger.kind = {ledger.kind!r}")
    if ledger.kind == "iota":
        from gateway.peer.ledgers import evmkey, iota

        seed = evmkey.load_or_create(
            config.gateway.data_dir, ledger.key_file, name=iota.KEY_FILE
        ).key
        layer1 = iota.IotaSettings(
            graphql_url=ledger.rpc_url,
            package=ledger.contract,
            chain_id=ledger.chain_id,
            max_gas_price=int(ledger.max_fee),
            retries=config.peer.retries,
        )
        return iota.IotaLedger(layer1, seed=bytes(seed), identity=identity)
    from gateway.peer.ledgers import evmkey
    from gateway.peer.ledgers.evm import EvmLedger, EvmSettings

    data_dir = config.gateway.data_dir
    settings = EvmSettings(
        rpc_url=ledger.rpc_url,
        chain_id=ledger.chain_id,
        contract=ledger.contract,
        max_fee_wei=int(ledger.max_fee * 10**9),
        priority_fee_wei=int(ledger.priority_fee * 10**9),
        confirmations=ledger.confirmations,
        receipt_timeout_s=ledger.receipt_timeout_s,
        retries=config.peer.retries,
    )
    account = evmkey.load_or_create(data_dir, ledger.key_file)
    return EvmLedger(settings, account=account, identity=identity, state_dir=data_dir)


def build_peer_node(
    config: GatewayConfig, trainer: LocalTrainer, *, registry: CollectorRegistry | None = None
) -> PeerNode:
    """A PeerNode with the gateway's key (created on first start), store and transport."""
    data_dir = config.gateway.data_dir
    identity, store = Identity.load_or_create(data_dir), build_store(config)
    transport = build_transport(config, registry=registry)
    try:
        return PeerNode(
            identity=identity,
            store=store,
            transport=transport,
            trainer=trainer,
            settings=config.peer,
            state_dir=data_dir,
            registry=registry,
            ledger=build_ledger(config, identity),
            anchor_every=config.ledger.anchor_every,
        )
    except BaseException:  # the socket, threads and HTTP clients would outlive a failed start
        transport.close()
        store.close()
        raise
