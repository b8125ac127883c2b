"""Python side of the js-ipfs test rig: configure, check, start, connect and stop nodes.

Nodes run ``tools/ipfs-rig/node.mjs`` under Node with the packages installed by
``tools/ipfs-rig/install.sh`` (default ``.cache/ipfs-rig``, or ``$LEARNAE_IPFS_RIG``).
Every config is checked against the network-safety rules here before a node
process is spawned (and again by the launcher on the repo's effective config);
a node is stopped by signalling its own PID, never by name.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.peer.errors import UnsafeConfig

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "tools" / "ipfs-rig" / "node.mjs"
NODE = shutil.which("node") or "/usr/bin/node"


def rig_dir() -> Path:
    return Path(os.environ.get("LEARNAE_IPFS_RIG", REPO / ".cache" / "ipfs-rig"))


def rig_missing_reason() -> str | None:
    """Why the rig cannot run here, or None when it can."""
    if not Path(NODE).exists():
        return "Node.js is not installed"
    if not (rig_dir() / "node_modules" / "ipfs-core" / "package.json").exists():
        return f"js-ipfs rig not installed in {rig_dir()} (run: make ipfs-rig)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node_config(swarm_port: int, api_port: int) -> dict[str, Any]:
    """A js-ipfs config that can only ever talk to 127.0.0.1."""
    return {
        "Addresses": {
            "Swarm": [f"/ip4/127.0.0.1/tcp/{swarm_port}"],
            "API": f"/ip4/127.0.0.1/tcp/{api_port}",
            "Gateway": "",
            "RPC": "",
            "Announce": [],
            "NoAnnounce": [],
            "Delegates": [],
        },
        "Bootstrap": [],
        "Discovery": {"MDNS": {"Enabled": False}, "webRTCStar": {"Enabled": False}},
        "Routing": {"Type": "none"},
        "Swarm": {"DisableNatPortMap": True, "ConnMgr": {"LowWater": 0, "HighWater": 50}},
        "Pubsub": {"Enabled": True, "Router": "gossipsub"},
    }


def _loopback_tcp(addr: object) -> int | None:
    parts = str(addr).split("/")
    if len(parts) == 5 and parts[:4] == ["", "ip4", "127.0.0.1", "tcp"] and parts[4].isdigit():
        return int(parts[4])
    return None


def check_config(config: dict[str, Any], used_ports: set[int] = frozenset()) -> set[int]:  # type: ignore[assignment]
    """Raise UnsafeConfig listing every breach of the network-safety rules; return the ports."""
    faults: list[str] = []
    addresses = config.get("Addresses", {})
    ports: list[int] = []
    for addr in [*addresses.get("Swarm", []), addresses.get("API")]:
        port = _loopback_tcp(addr)
        if port is None:
            faults.append(f"address {addr!r} is not /ip4/127.0.0.1/tcp/PORT")
        else:
            ports.append(port)
    for key in ("Gateway", "RPC"):
        if addresses.get(key):
            faults.append(f"Addresses.{key} = {addresses[key]!r} must be empty")
    for key in ("Announce", "Delegates"):
        if addresses.get(key):
            faults.append(f"Addresses.{key} = {addresses[key]!r} must be empty")
    if config.get("Bootstrap") != []:
        faults.append(f"Bootstrap = {config.get('Bootstrap')!r} must be empty")
    discovery = config.get("Discovery", {})
    for name in ("MDNS", "webRTCStar"):
        if discovery.get(name, {}).get("Enabled") is not False:
            faults.append(f"Discovery.{name}.Enabled must be false")
    if config.get("Routing", {}).get("Type") != "none":
        faults.append(f"Routing.Type = {config.get('Routing', {}).get('Type')!r} must be 'none'")
    if config.get("Swarm", {}).get("DisableNatPortMap") is not True:
        faults.append("Swarm.DisableNatPortMap must be true")
    clash = (set(ports) & set(used_ports)) | {p for p in ports if ports.count(p) > 1}
    if clash:
        faults.append(f"ports {sorted(clash)} are not distinct per node")
    if faults:
        raise UnsafeConfig("; ".join(faults))
    return set(ports)


class IpfsNode:
    """One js-ipfs process on loopback with its own repo directory."""

    def __init__(self, root: Path, name: str, used_ports: set[int] | None = None) -> None:
        self.root = Path(root) / name
        self.name = name
        self.swarm_port = free_port()
        self.api_port = free_port()
        self.config = node_config(self.swarm_port, self.api_port)
        self._used_ports = used_ports if used_ports is not None else set()
        self.process: subprocess.Popen[bytes] | None = None
        self.peer_id = ""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def swarm_addr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.swarm_port}/p2p/{self.peer_id}"

    def start(self, timeout: float = 60.0) -> None:
        others = self._used_ports - {self.swarm_port, self.api_port}
        ports = check_config(self.config, others)  # refuse before anything is spawned
        self._used_ports |= ports
        self.root.mkdir(parents=True, exist_ok=True)
        # our own previous process is gone (stopped by PID): a lock it left is stale
        (self.root / "repo" / "repo.lock").unlink(missing_ok=True)
        config_path = self.root / "config.json"
        config_path.write_text(json.dumps(self.config))
        launcher = rig_dir() / "node.mjs"  # ESM resolves packages next to the script
        if not launcher.exists() or launcher.read_bytes() != LAUNCHER.read_bytes():
            shutil.copyfile(LAUNCHER, launcher)
        log = open(self.root / "node.log", "ab")  # noqa: SIM115 - owned by the process
        env = {**os.environ, "NODE_ENV": "test", "IPFS_MONITORING": ""}
        env.pop("IPFS_MONITORING")
        self.process = subprocess.Popen(
            [NODE, str(launcher), str(self.root / "repo"), str(config_path)],
            cwd=rig_dir(),
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
        )
        log.close()
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith(b"{"):
                break
            if self.process.poll() is not None:
                break
        if not line.startswith(b"{"):
            self.stop()
            tail = (self.root / "node.log").read_text(errors="replace")[-800:]
            raise RuntimeError(f"js-ipfs node {self.name} did not start: {tail}")
        self.peer_id = json.loads(line)["id"]

    def stop(self) -> None:
        """SIGTERM the node's PID, SIGKILL it if it lingers."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if process.stdout is not None:  # also when the node had already exited
            process.stdout.close()

    def connect(self, other: IpfsNode) -> None:
        """Dial ``other`` over loopback (there is no discovery, by design)."""
        response = httpx.post(
            f"{self.api_url}/api/v0/swarm/connect", params={"arg": other.swarm_addr}, timeout=20
        )
        response.raise_for_status()

    def peers(self) -> list[str]:
        response = httpx.post(f"{self.api_url}/api/v0/swarm/peers", timeout=10)
        response.raise_for_status()
        return [p.get("Peer", "") for p in response.json().get("Peers") or []]


class Rig:
    """A set of nodes in a temporary directory, stopped (by PID) on ``close``."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="learnae-ipfs-"))
        self.nodes: list[IpfsNode] = []
        self.ports: set[int] = set()

    def add(self, name: str) -> IpfsNode:
        node = IpfsNode(self.tmp, name, self.ports)
        node.start()
        self.nodes.append(node)
        return node

    def connect_all(self) -> None:
        for i, a in enumerate(self.nodes):
            for b in self.nodes[i + 1 :]:
                if a.process is not None and b.process is not None:
                    a.connect(b)

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
