"""Local kubo daemons for tests and benchmarks: configured for loopback, checked, started, stopped.

Every node is configured before it starts: ``ipfs init --profile=test``, then the
network-safety settings (DESIGN.md, "Network safety") are written into its config
file, and ``check_config`` reads that file back and refuses any value that could
reach beyond 127.0.0.1 before the daemon is spawned. kubo >= 0.36 reports telemetry
unless ``IPFS_TELEMETRY=off`` is in its environment; kubo >= 0.38 fetches settings
from the network for every ``"auto"`` value unless ``AutoConf.Enabled`` is false: both
are checked. A daemon is stopped by signalling its own PID, never by name.

The binary is built by ``tools/kubo/install.sh`` into ``<repo>/.cache/kubo/bin/ipfs``
(or ``$LEARNAE_KUBO/bin/ipfs``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from gateway.errors import UnsafeConfig
from gateway.rigs.ports import free_port

REPO = Path(__file__).resolve().parents[2]
KUBO_VERSION = "0.43.1"
LOOPBACK_PREFIX = "/ip4/127.0.0.1/"


def kubo_binary() -> Path:
    root = os.environ.get("LEARNAE_KUBO")
    return (Path(root) if root else REPO / ".cache" / "kubo") / "bin" / "ipfs"


def kubo_missing_reason() -> str | None:
    """Why no kubo daemon can run here, or None when one can."""
    binary = kubo_binary()
    if not os.access(binary, os.X_OK):
        return f"kubo is not built at {binary} (run: make kubo)"
    return None


def safe_settings(swarm_port: int, api_port: int, gateway_port: int) -> dict[str, Any]:
    """The network-safety settings, as (dotted key -> value) written over the init config."""
    return {
        "Addresses.Swarm": [f"/ip4/127.0.0.1/tcp/{swarm_port}"],
        "Addresses.API": f"/ip4/127.0.0.1/tcp/{api_port}",
        "Addresses.Gateway": f"/ip4/127.0.0.1/tcp/{gateway_port}",
        "Addresses.Announce": [],
        "Addresses.AppendAnnounce": [],
        "Addresses.NoAnnounce": [],
        "Bootstrap": [],
        "Peering.Peers": [],
        "Discovery.MDNS.Enabled": False,
        "Routing.Type": "none",
        "Routing.DelegatedRouters": [],
        "Ipns.DelegatedPublishers": [],
        "DNS.Resolvers": {},
        "AutoConf.Enabled": False,
        "AutoNAT.ServiceMode": "disabled",
        "AutoTLS.Enabled": False,
        "Swarm.DisableNatPortMap": True,
        "Swarm.EnableHolePunching": False,
        "Swarm.RelayClient.Enabled": False,
        "Swarm.RelayService.Enabled": False,
        "Swarm.Transports.Network.Relay": False,
        "Swarm.Transports.Network.QUIC": False,
        "Swarm.Transports.Network.WebTransport": False,
        "Swarm.Transports.Network.WebRTCDirect": False,
        "Swarm.Transports.Network.Websocket": False,
        "Provide.Enabled": False,
        "HTTPRetrieval.Enabled": False,
        "Pubsub.Enabled": True,
        "Plugins.Plugins": {"telemetry": {"Config": {"Mode": "off"}}},
    }


def get_path(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def set_path(config: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = config
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[keys[-1]] = value


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _strings(child, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _strings(child, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def _loopback_tcp_port(addr: Any) -> int | None:
    parts = str(addr).split("/")
    if len(parts) == 5 and parts[:4] == ["", "ip4", "127.0.0.1", "tcp"] and parts[4].isdigit():
        return int(parts[4])
    return None


def check_config(
    config: dict[str, Any],
    env: dict[str, str] | None = None,
    used_ports: set[int] | frozenset[int] = frozenset(),
) -> set[int]:
    """Raise UnsafeConfig naming every breach of the network-safety rules; return the ports.

    ``config`` is the node's config file as kubo will read it, ``env`` the daemon's
    environment (None: not checked), ``used_ports`` the ports other nodes hold.
    """
    faults: list[str] = []
    if env is not None and env.get("IPFS_TELEMETRY") != "off":
        faults.append(f"IPFS_TELEMETRY = {env.get('IPFS_TELEMETRY')!r} must be 'off'")
    ports: list[int] = []
    for key in ("Addresses.API", "Addresses.Gateway"):
        port = _loopback_tcp_port(get_path(config, key))
        if port is None or port == 0:
            faults.append(f"{key} = {get_path(config, key)!r} is not /ip4/127.0.0.1/tcp/PORT")
        else:
            ports.append(port)
    swarm = get_path(config, "Addresses.Swarm")
    if not isinstance(swarm, list) or not swarm:
        faults.append(f"Addresses.Swarm = {swarm!r} must list loopback addresses")
    else:
        for addr in swarm:
            port = _loopback_tcp_port(addr)
            if port is None or port == 0:
                faults.append(f"Addresses.Swarm entry {addr!r} is not /ip4/127.0.0.1/tcp/PORT")
            else:
                ports.append(port)
    required: dict[str, Any] = {
        "Bootstrap": [],
        "Discovery.MDNS.Enabled": False,
        "Routing.Type": "none",
        "AutoConf.Enabled": False,
        "AutoNAT.ServiceMode": "disabled",
        "Swarm.DisableNatPortMap": True,
        "Swarm.RelayClient.Enabled": False,
        "Swarm.RelayService.Enabled": False,
        "Swarm.Transports.Network.Relay": False,
        "Pubsub.Enabled": True,
    }
    for key, want in required.items():
        got = get_path(config, key)
        if got != want or type(got) is not type(want):
            faults.append(f"{key} = {got!r} must be {want!r}")
    for path, text in _strings(config):
        if path.startswith("Identity."):
            continue
        if text.strip().lower() == "auto":
            faults.append(f"{path} = 'auto' (AutoConf would fetch it from the network)")
        elif text.startswith(("/ip4/", "/ip6/", "/dns", "/dnsaddr/")):
            if not text.startswith(LOOPBACK_PREFIX):
                faults.append(f"{path} = {text!r} is not a 127.0.0.1 address")
        elif text.startswith(("http://", "https://")) and not text.startswith(
            ("http://127.0.0.1", "https://127.0.0.1")
        ):
            faults.append(f"{path} = {text!r} is not a 127.0.0.1 URL")
    clash = (set(ports) & set(used_ports)) | {p for p in ports if ports.count(p) > 1}
    if clash:
        faults.append(f"ports {sorted(clash)} are not distinct per node")
    if faults:
        raise UnsafeConfig("; ".join(faults))
    return set(ports)


def daemon_env() -> dict[str, str]:
    """The daemon's environment: ours, minus anything IPFS-specific, plus telemetry off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IPFS_", "LIBP2P_"))}
    env["IPFS_TELEMETRY"] = "off"
    env["GOLOG_LOG_LEVEL"] = "error"
    return env


class KuboNode:
    """One kubo daemon on loopback with its own repository directory."""

    def __init__(self, root: Path, name: str, used_ports: set[int] | None = None) -> None:
        self.root = Path(root) / name
        self.repo = self.root / "repo"
        self.name = name
        self.swarm_port = free_port()
        self.api_port = free_port()
        self.gateway_port = free_port()
        self._used_ports = used_ports if used_ports is not None else set()
        self.env = daemon_env()
        self.process: subprocess.Popen[bytes] | None = None
        self.peer_id = ""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def swarm_addr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.swarm_port}/p2p/{self.peer_id}"

    @property
    def config_path(self) -> Path:
        return self.repo / "config"

    def read_config(self) -> dict[str, Any]:
        return dict(json.loads(self.config_path.read_text()))

    def write_config(self, config: dict[str, Any]) -> None:
        self.config_path.write_text(json.dumps(config, indent=2))

    def init(self) -> None:
        """``ipfs init --profile=test`` (once per repository), then the safety settings."""
        if not self.config_path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(
                [str(kubo_binary()), "init", "--profile=test", "--empty-repo"],
                env={**self.env, "IPFS_PATH": str(self.repo)},
                capture_output=True,
                timeout=60,
            )
            if done.returncode != 0:
                raise RuntimeError(f"ipfs init for {self.name} failed: {done.stderr[-500:]!r}")
        config = self.read_config()
        for key, value in safe_settings(self.swarm_port, self.api_port, self.gateway_port).items():
            set_path(config, key, value)
        self.write_config(config)
        self.peer_id = str(config["Identity"]["PeerID"])

    def wipe(self) -> None:
        """Delete the repository (the next ``start`` makes a new, empty one: a new peer id)."""
        if self.process is not None:
            raise RuntimeError(f"kubo node {self.name} is running: stop it before wiping")
        shutil.rmtree(self.repo, ignore_errors=True)

    def start(self, timeout: float = 60.0) -> None:
        if not self.config_path.exists():
            self.init()
        others = self._used_ports - {self.swarm_port, self.api_port, self.gateway_port}
        config = self.read_config()  # what the daemon will read, not what we meant to write
        self._used_ports |= check_config(config, self.env, others)  # refuse before spawning
        self.peer_id = str(config["Identity"]["PeerID"])
        (self.repo / "repo.lock").unlink(missing_ok=True)  # ours, left by a kill -9
        log = open(self.root / "daemon.log", "ab")  # noqa: SIM115 - owned by the process
        try:
            self.process = subprocess.Popen(
                [str(kubo_binary()), "daemon", "--migrate=false"],
                env={**self.env, "IPFS_PATH": str(self.repo)},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                answer = httpx.post(f"{self.api_url}/api/v0/id", timeout=2.0)
                if answer.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        tail = (self.root / "daemon.log").read_text(errors="replace")[-800:]
        raise RuntimeError(f"kubo node {self.name} did not start: {tail}")

    def stop(self) -> None:
        """SIGTERM the daemon's PID, SIGKILL it if it lingers."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def kill(self) -> None:
        """``kill -9`` the daemon: no shutdown, as when a Pi loses power."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def rpc(
        self, command: str, query: dict[str, str] | None = None, *, timeout: float = 20.0,
        **params: str,
    ) -> Any:
        """POST an RPC command; its JSON answer (None when empty)."""
        response = httpx.post(
            f"{self.api_url}/api/v0/{command}", params={**(query or {}), **params}, timeout=timeout
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def connect(self, other: KuboNode) -> None:
        """Dial ``other`` over loopback (there is no discovery, by design)."""
        self.rpc("swarm/connect", arg=other.swarm_addr)

    def disconnect(self, other: KuboNode) -> None:
        self.rpc("swarm/disconnect", arg=other.swarm_addr)

    def peers(self) -> list[str]:
        return [p.get("Peer", "") for p in (self.rpc("swarm/peers") or {}).get("Peers") or []]

    def disk_bytes(self) -> int:
        """The repository's files on disk."""
        from gateway.peer.ipfs import directory_bytes

        return directory_bytes(self.repo)

    def repo_size(self) -> int:
        """kubo's ``repo/stat`` ``RepoSize`` (its own running count, see ``IpfsStore``)."""
        return int(self.rpc("repo/stat", {"size-only": "true"})["RepoSize"])


class KuboRig:
    """A set of kubo daemons under one directory, stopped (by PID) on ``close``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.nodes: list[KuboNode] = []
        self.ports: set[int] = set()

    def add(self, name: str) -> KuboNode:
        node = KuboNode(self.root, name, self.ports)
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
