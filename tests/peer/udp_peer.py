"""One gateway's peer node in its own process: config from a TOML file, UDP gossip.

Run by test_node.py as ``python -m tests.peer.udp_peer CONFIG ROUNDS STEP``; prints
the node's peers and rounds as one JSON line.
"""

from __future__ import annotations

import json
import sys
import time

from gateway.config import load_config
from gateway.peer import build_peer_node

from .conftest import StepTrainer


def main() -> None:
    config = load_config(sys.argv[1])
    rounds, step = int(sys.argv[2]), float(sys.argv[3])
    node = build_peer_node(config, StepTrainer(step))
    deadline = time.monotonic() + 90  # the two processes may start far apart on a busy host
    while time.monotonic() < deadline:
        node.run_round()
        node.announce()
        time.sleep(0.2)
        if len(node.rounds()) >= rounds and node.rounds()[-1].fused_peers:
            break
    node.announce()
    time.sleep(0.5)  # let the other process hear the last head
    node.stop()
    print(
        json.dumps(
            {
                "peer": node.peer_id,
                "fused": sorted({p for r in node.rounds() for p in r.fused_peers}),
                "rounds": len(node.rounds()),
            }
        )
    )


if __name__ == "__main__":
    main()
