"""One migration system for the whole database file, and a database made by an older
release opened by this code with every reading, model version and event kept.

``fixtures/main-schema4.sql`` was written by the code of commit e89076d
(``fixtures/make_database.py`` says how): store schema 4, and the model registry's
tables at registry schema 3 in their own version table, ``learning_schema``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from gateway.errors import RegistryError, StoreError
from gateway.learning.registry import ModelRegistry
from gateway.store import Store, schema
from gateway.store.anomaly_events import AnomalyEventLog
from gateway.store.db import connect

FIXTURE = Path(__file__).with_name("fixtures") / "main-schema4.sql"


def old_database(path: Path, *edits: str) -> Path:
    """The fixture's database at ``path``, with ``edits`` (SQL) applied after it."""
    conn = sqlite3.connect(path)
    conn.executescript(FIXTURE.read_text(encoding="utf-8"))
    for statement in edits:
        conn.execute(statement)
    conn.commit()
    conn.close()
    return path


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_the_fixture_is_what_the_older_release_wrote(tmp_path: Path) -> None:
    db = old_database(tmp_path / "old.sqlite3")
    assert rows(db, "SELECT MAX(version) FROM schema_version") == [(4,)]
    assert rows(db, "SELECT component, version FROM learning_schema") == [("registry", 3)]


def test_an_older_database_keeps_every_reading_version_and_event(tmp_path: Path) -> None:
    db = old_database(tmp_path / "gateway.sqlite3")
    tables = ("readings", "devices", "boots", "channel_sets", "quarantine", "counters",
              "anomaly_events", "anomaly_progress", "model_versions", "model_versions_pruned")
    before = {t: sorted(rows(db, f"SELECT * FROM {t}"), key=repr) for t in tables}
    assert len(before["readings"]) == 240 and len(before["model_versions"]) == 5

    with Store.open(db) as store:  # the writer's open migrates every table
        summary = store.summary()
        series = store.read_series("bed-2")
    assert summary["schema_version"] == schema.LATEST
    assert {d: s["stored"] for d, s in summary["devices"].items()} == {"bed-1": 120,
                                                                         "bed-2": 120}
    assert summary["rejected_by_reason"] == {"unknown_device": 1}
    assert series.channels == ["temp", "hum", "co2"] and len(series) == 120
    assert np.isclose(series.values[-1, 2], 519.0)

    after = {t: sorted(rows(db, f"SELECT * FROM {t}"), key=repr) for t in tables}
    assert after == before  # not one row changed, in any table
    names = {r[0] for r in rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "learning_schema" not in names  # one version table now: schema_version
    assert [r[0] for r in rows(db, "SELECT version FROM schema_version")] == list(
        range(1, schema.LATEST + 1))

    with ModelRegistry(db) as registry:
        assert [v.version for v in registry.versions("bed-1")] == [1, 3, 4, 5]
        assert registry.current("bed-1").version == 1
        assert registry.get(1).weights_cid == "bafkweights"
        assert registry.get(5).status == "rejected" and registry.get(5).reason
        assert registry.count_up_to("bed-1", 5) == 5  # the pruned one still counts
        assert set(registry.get(6).weights) == set(registry.get(1).weights)
    with AnomalyEventLog.open(db, readonly=True) as events:
        found = events.events("bed-1")
        assert [(e["kind"], e["open"], e["channels"]) for e in found] == [
            ("level_shift", True, ["temp", "hum"]), ("anomaly", False, ["hum"])]
        assert events.scored_until("bed-1") == 1_700_001_190.0


def test_every_module_opening_the_file_migrates_it_the_same_way(tmp_path: Path) -> None:
    for i, opener in enumerate((lambda p: Store.open(p), ModelRegistry,
                                lambda p: AnomalyEventLog.open(p))):
        db = old_database(tmp_path / f"gateway-{i}.sqlite3")
        opener(db).close()
        assert rows(db, "SELECT MAX(version) FROM schema_version") == [(schema.LATEST,)]


def test_registry_rows_of_schema_1_without_a_status_read_as_promoted(tmp_path: Path) -> None:
    # schema 1 had no status column: every version was served
    db = old_database(tmp_path / "gateway.sqlite3",
                      "UPDATE model_versions SET status = NULL, reason = NULL",
                      "UPDATE learning_schema SET version = 1")
    with ModelRegistry(db) as registry:
        assert {v.status for v in registry.versions()} == {"promoted"}
        assert registry.current("bed-1").version == 5


def test_a_registry_newer_than_this_code_is_refused(tmp_path: Path) -> None:
    db = old_database(tmp_path / "gateway.sqlite3", "UPDATE learning_schema SET version = 99")
    with pytest.raises(RegistryError, match="model registry schema 99 is newer than this code"):
        ModelRegistry(db)
    with pytest.raises(StoreError, match="schema 99"):
        Store.open(db)
    assert rows(db, "SELECT MAX(version) FROM schema_version") == [(4,)]  # left as it was


def test_a_reader_never_migrates_and_says_what_to_do(tmp_path: Path) -> None:
    db = old_database(tmp_path / "gateway.sqlite3")
    with pytest.raises(StoreError, match="start the gateway once to migrate it"):
        Store.open(db, readonly=True)
    with AnomalyEventLog.open(db, readonly=True) as events:  # schema 3 is enough for these
        assert len(events.events("bed-1")) == 2
    assert rows(db, "SELECT MAX(version) FROM schema_version") == [(4,)]


def test_a_new_file_gets_every_table_at_once(tmp_path: Path) -> None:
    conn = connect(tmp_path / "new" / "gateway.sqlite3")
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert {"readings", "anomaly_events", "model_versions", "model_versions_pruned"} <= names
    assert "learning_schema" not in names
