"""The board process killed (SIGKILL, as a power cut) at seeded random points of
transfers and switches always boots one complete version, old or new."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import threading
import time
from pathlib import Path

from gateway.firmware import FIRMWARE_DIR
from gateway.ota import KeyStore, build_bundle
from gateway.ota.bundle import FACTORY_VERSION
from gateway.rigs.board import Board
from tests.firmware.conftest import Collector
from tests.ota.conftest import make_board_dir, pusher

SEED = 1313
ROUNDS = 6
TRANSFER_KILLS = 3  # per round, and one during the switch: 24 kill points in all
CHUNK = 1024
WINDOW = 4


def _complete_version(d: Path, *bundles) -> str:
    """The version the board's flash boots; fails if the pointer names an incomplete set."""
    ptr = d / "ota" / "fw.json"
    if not ptr.exists():
        return FACTORY_VERSION  # the factory files, never touched by an update
    doc = json.loads(ptr.read_text())
    bundle = next(b for b in bundles if b.version == doc["version"])
    files = {f.name: f.sha256 for f in bundle.files}
    for name, digest in files.items():
        path = d / doc["dir"] / name
        assert path.exists(), f"{doc['dir']} lacks {name}: a mix would boot"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{name} differs"
    return doc["version"]


def test_kills_during_transfer_and_switch_never_boot_a_mix(broker, prefix, tmp_path: Path,
                                                          bundle, boards) -> None:
    rng = random.Random(SEED)
    # two versions, alternating, so that old and new differ in every round
    src = tmp_path / "v2"
    shutil.copytree(FIRMWARE_DIR, src, ignore=shutil.ignore_patterns("host"))
    (src / "wire.py").write_text((src / "wire.py").read_text() + "\nVARIANT = 2\n")
    bundles = (build_bundle(tmp_path / "b2", source=src), bundle)
    keys = KeyStore(tmp_path / "keys")
    d = make_board_dir(tmp_path, broker.port, prefix, "dev1", keys)
    board = Board(d).start()
    boards.append(board)
    collector = Collector(broker.port, prefix)
    kills: list[tuple[int, str, str]] = []
    try:
        collector.wait_status(lambda s: s.get("state") == "online", timeout=30)
        total = len(bundle.stream("0" * 16, keys.get("dev1")))  # both about the same size
        for rnd in range(ROUNDS):
            # points in bytes of the stream; past the end: during verify and switch
            points = sorted([rng.randrange(0, total) for _ in range(TRANSFER_KILLS)]
                            + [total + rng.randrange(4 * 1024)])
            new = bundles[rnd % 2]
            seen = {"next": 0, "total": total, "state": ""}

            def on_progress(o, seen=seen) -> None:  # paho's thread: record, never block
                seen.update(next=o.next, total=o.total, state=o.state)

            def killer(points=points, seen=seen, rnd=rnd) -> None:
                # a point inside the stream: kill once the board has acknowledged that
                # far; past the end: once every chunk is out (all but the last window
                # acknowledged), wait up to 200 ms: the board is then verifying hashes,
                # switching the pointer, resetting or booting the new version
                while points:
                    p = points[0]
                    all_sent = seen["next"] + WINDOW * CHUNK >= seen["total"]
                    if (p < total and seen["next"] < p) or (p >= total and not (
                            all_sent or seen["state"] == "switching")):
                        if seen["state"] in ("updated", "rolled_back", "timeout"):
                            return
                        time.sleep(0.005)
                        continue
                    points.pop(0)
                    if p >= total:
                        time.sleep((p - total) / (4 * 1024) * 0.2)
                    starts = board.starts
                    board.kill()
                    deadline = time.monotonic() + 10  # the restart, before the next kill
                    while board.starts == starts and time.monotonic() < deadline:
                        time.sleep(0.01)
                    kills.append((rnd, "switch" if p >= total else "transfer",
                                  _complete_version(d, *bundles)))
                    seen["next"] = 0  # until the board says where it stands again

            thread = threading.Thread(target=killer, daemon=True)
            thread.start()
            push = pusher(broker.port, prefix, on_progress=on_progress, chunk=CHUNK,
                          window=WINDOW)
            old = _complete_version(d, *bundles)
            o = push.push({"dev1": (new, keys.get("dev1"))}, timeout=120)["dev1"]
            thread.join(30)
            version = _complete_version(d, *bundles)
            assert version in (old, new.version)
            # a transfer resumes after each kill; a kill during the trial boots may roll back
            assert o.state in ("updated", "rolled_back"), (o.as_dict(), board.log()[-2000:])
        assert len(kills) >= 20, kills
        assert {k[1] for k in kills} == {"transfer", "switch"}, kills
        # whatever happened, the board is running one complete version and says which
        version = _complete_version(d, *bundles)
        status = collector.wait_status(lambda s: s.get("state") == "online"
                                       and s.get("fw") == version, timeout=30)
        assert status["fw"] == version
    finally:
        collector.close()
