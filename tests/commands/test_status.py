"""``python -m gateway status``: JSON and table, read-only, with or without a database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ingest.helpers import REPO, db_path, status, write_config

from gateway.rigs.broker import PrivateBroker
from gateway.store import Changes, Reject, StatusUpdate, Store, pack_values


def run_status(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "status", "--config", str(config),
                           *extra], capture_output=True, text=True, cwd=REPO, timeout=60)


def test_status_without_a_database(tmp_path: Path, broker: PrivateBroker) -> None:
    config = write_config(tmp_path, broker, "px")
    doc = status(config)
    assert doc["devices"] == {} and doc["rejected"] == 0 and doc["stored"] == 0


def test_status_json_and_table(tmp_path: Path, broker: PrivateBroker) -> None:
    config = write_config(tmp_path, broker, "px")
    with Store.open(db_path(config)) as store:
        key = store.register_device("dev-7")
        cset = store.channel_set(("temp",))
        changes = Changes()
        changes.rows[key] = [(key, 2, s, 1000.0 + s, cset, pack_values([20.0]), 0)
                             for s in range(12)]
        changes.boots[(key, 2)] = 1000.0
        changes.seen[key] = 1011.0
        changes.statuses[key] = StatusUpdate(1011.0, True, '{"state": "online"}', "1.4")
        changes.rejects.append(Reject(1012.0, "px/dev-7/data", "dev-7", "decode", "bad", b"zz"))
        changes.device_rejects[key] = 1
        store.commit(changes)
        doc = status(config)  # while the writer has the database open
    assert doc["devices"] == {"dev-7": {"stored": 12, "boots": 1, "last_seen": 1011.0,
                                        "online": True, "duplicates": 0, "rejected": 1,
                                        "firmware": "1.4"}}
    assert (doc["rejected"], doc["rejected_by_reason"], doc["quarantine"]) == (1, {"decode": 1},
                                                                             1)
    table = run_status(config, "--quarantine", "5")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["device", "online", "stored", "boots", "dups", "rejected",
                                "firmware", "last", "seen"]
    assert lines[1].split()[:7] == ["dev-7", "yes", "12", "1", "0", "1", "1.4"]
    assert any("px/dev-7/data" in ln and "decode: bad" in ln for ln in lines)
    with_q = json.loads(run_status(config, "--json", "--quarantine", "1").stdout.splitlines()[-1])
    assert with_q["quarantined"][0]["head"] == "7a7a"


def test_status_config_error_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[store]\nsynchronous = \"SOMETIMES\"\n")
    result = run_status(config, "--json")
    assert result.returncode == 2
    assert "store.synchronous" in result.stderr and "SOMETIMES" in result.stderr
