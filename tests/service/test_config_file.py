"""``toml_text`` writes what ``load_config`` reads back (the demo, benchmarks and tests
write their gateways' configs with it)."""

from __future__ import annotations

from pathlib import Path

from gateway.config import load_config, toml_text


def test_a_written_config_reads_back_with_every_value(tmp_path: Path) -> None:
    text = toml_text({
        "gateway": {"id": "site-1", "data_dir": tmp_path / "data"},
        "mqtt": {"port": 1884, "topic_prefix": "site1"},
        "training": {"enabled": True, "period_s": 0.1, "min_windows": 256},
        "peer": {"enabled": True, "udp_peers": "127.0.0.1:1,127.0.0.1:2",
                 "session": 'a "quoted" one'},
    }, header="written by a test\nsecond line")
    assert text.startswith("# written by a test\n# second line\n[gateway]\n")
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    config = load_config(path, env={})
    assert (config.gateway.id, config.gateway.data_dir) == ("site-1", tmp_path / "data")
    assert (config.mqtt.port, config.mqtt.topic_prefix) == (1884, "site1")
    assert config.training.enabled and config.training.period_s == 0.1
    assert config.training.min_windows == 256
    assert config.peer.udp_peers == "127.0.0.1:1,127.0.0.1:2"
    assert config.peer.session == 'a "quoted" one'
