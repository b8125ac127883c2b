"""``learnae-gateway install`` / ``uninstall`` into a staging root.

The staged tree is what a packager or the live install would write: it is
installed twice (same tree, "nothing to change"), its unit passes
``systemd-analyze verify``, its Mosquitto files work in a real Mosquitto with the
generated password, and uninstall removes what install added but not the data.
The live-only steps (useradd, chown, systemctl) are listed, not run: this
machine has no systemd running as PID 1.
"""

from __future__ import annotations

import getpass
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support import REPO

from gateway.config import load_config
from gateway.rigs.broker import free_port, wait_for_port
from gateway.system.devices import add_device

LIVE_ONLY = ("create system user learnae", "chown learnae:learnae /var/lib/learnae",
             "systemctl daemon-reload", "systemctl enable --now learnae-gateway.service")


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "gateway", *map(str, args)],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def install(root: Path, *args: str | Path) -> str:
    return cli("install", "--root", root, "--gateway-id", "greenhouse-1", *args).stdout


def tree(root: Path) -> dict[str, tuple[str, str]]:
    """path -> (mode, content hash) of everything under ``root``."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        mode = oct(path.stat().st_mode & 0o7777)
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        out[rel] = (mode, digest)
    return out


def secret(root: Path) -> str:
    env = (root / "etc/learnae/gateway.env").read_text()
    return env.split("LEARNAE_MQTT_PASSWORD=", 1)[1].split()[0]


def test_install_twice_gives_the_same_tree_and_says_nothing_to_change(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = install(root)
    assert "+ create /etc/learnae/gateway.toml (mode 0644)" in first
    assert "+ create /etc/learnae/gateway.env (mode 0600)" in first
    assert "+ create /etc/mosquitto/learnae/passwd (mode 0600)" in first
    for step in LIVE_ONLY:
        assert f"- not done with --root: {step}" in first
    before = tree(root)
    second = install(root)
    assert f"install: nothing to change in {root}" in second
    assert "+ " not in second
    assert tree(root) == before
    assert before["etc/learnae/gateway.env"][0] == "0o600"
    assert before["etc/mosquitto/learnae"][0] == "0o700"
    assert before["var/lib/learnae"][0] == "0o750"
    config = load_config(root / "etc/learnae/gateway.toml", env={})
    assert (config.gateway.id, config.mqtt.username) == ("greenhouse-1", "learnae-gateway")
    assert config.gateway.data_dir == Path("/var/lib/learnae")


def test_dry_run_prints_every_step_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    out = install(root, "--dry-run")
    assert list(root.iterdir()) == []
    for path in ("/etc/learnae/gateway.toml", "/etc/learnae/gateway.env",
                 "/etc/mosquitto/learnae/passwd", "/etc/mosquitto/learnae/acl",
                 "/etc/mosquitto/conf.d/learnae.conf",
                 "/etc/systemd/system/learnae-gateway.service"):
        assert f"would create {path}" in out
    assert "dry run: nothing was changed" in out


def test_a_different_file_is_backed_up_never_silently_overwritten(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(root)
    config = root / "etc/learnae/gateway.toml"
    config.write_text("# edited by hand\n")
    out = install(root)
    assert "+ replace /etc/learnae/gateway.toml (mode 0644)" in out
    backups = list(config.parent.glob("gateway.toml.bak-*"))
    assert [b.read_text() for b in backups] == ["# edited by hand\n"]
    assert "greenhouse-1" in config.read_text()


def test_devices_added_later_survive_a_second_install(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(root)
    mosq = root / "etc/mosquitto/learnae"
    add_device("sensor-1", mqtt_host="127.0.0.1", mqtt_port=1883, topic_prefix="learnae",
               password_file=mosq / "passwd", acl_file=mosq / "acl")
    passwd, acl = (mosq / "passwd").read_text(), (mosq / "acl").read_text()
    assert "sensor-1:" in passwd and "user sensor-1" in acl
    out = install(root)
    assert "nothing to change" in out
    assert ((mosq / "passwd").read_text(), (mosq / "acl").read_text()) == (passwd, acl)


def test_systemd_analyze_verify_accepts_the_installed_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing: `make test-deps` installs systemd"
    root = tmp_path / "root"
    install(root)
    unit = root / "etc/systemd/system/learnae-gateway.service"
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
    assert f"ExecStart={Path(sys.executable).parent / 'learnae-gateway'} run --config " \
           "/etc/learnae/gateway.toml" in unit.read_text()


def test_uninstall_removes_what_install_added_and_keeps_the_data(tmp_path: Path) -> None:
    root = tmp_path / "root"
    stock = root / "etc/mosquitto/mosquitto.conf"  # the distribution's file: not ours
    stock.parent.mkdir(parents=True)
    stock.write_text("include_dir /etc/mosquitto/conf.d\n")
    before = tree(root)
    install(root)
    data = root / "var/lib/learnae"
    (data / "gateway.sqlite3").write_bytes(b"readings")
    out = cli("uninstall", "--root", root).stdout
    assert "+ remove /etc/systemd/system/learnae-gateway.service" in out
    assert "- not done with --root: systemctl disable --now learnae-gateway.service" in out
    assert "kept /var/lib/learnae" in out
    after = tree(root)
    kept = {k: v for k, v in after.items() if not k.startswith("var")}
    assert kept == before
    assert (data / "gateway.sqlite3").read_bytes() == b"readings"
    assert "uninstall: nothing to remove" in cli("uninstall", "--root", root).stdout
    purged = cli("uninstall", "--root", root, "--purge").stdout
    assert "+ remove /var/lib/learnae and everything in it (--purge)" in purged
    assert not data.exists()


def test_the_tls_listener_renders(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(root, "--tls-port", "8883", "--cafile", "/etc/mosquitto/certs/ca.pem",
            "--certfile", "/etc/mosquitto/certs/broker.pem",
            "--keyfile", "/etc/mosquitto/certs/broker.key", "--require-certificate")
    snippet = (root / "etc/mosquitto/conf.d/learnae.conf").read_text()
    for line in ("listener 8883 0.0.0.0", "cafile /etc/mosquitto/certs/ca.pem",
                 "certfile /etc/mosquitto/certs/broker.pem",
                 "keyfile /etc/mosquitto/certs/broker.key", "require_certificate true"):
        assert line in snippet.splitlines()
    refused = subprocess.run([sys.executable, "-m", "gateway", "install", "--root", root,
                              "--tls-port", "8883"], capture_output=True, text=True, cwd=REPO,
                             timeout=60)
    assert refused.returncode == 2
    assert "--tls-port 8883 needs --cafile, --certfile and --keyfile" in refused.stderr


def test_the_staged_broker_files_work_in_a_real_mosquitto(tmp_path: Path) -> None:
    """Debian's layout: a main config with persistence and include_dir, our conf.d file."""
    root = tmp_path / "root"
    port = free_port()
    install(root, "--mqtt-port", str(port))
    staged_mosq = root / "etc/mosquitto/learnae"
    confd = tmp_path / "conf.d"
    confd.mkdir()
    snippet = (root / "etc/mosquitto/conf.d/learnae.conf").read_text()
    (confd / "learnae.conf").write_text(snippet.replace("/etc/mosquitto/learnae",
                                                        str(staged_mosq)))
    main = tmp_path / "mosquitto.conf"
    main.write_text(f"user {getpass.getuser()}\npersistence true\n"
                    f"persistence_location {tmp_path}/\nlog_dest file {tmp_path}/log\n"
                    f"include_dir {confd}\n")
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker = subprocess.Popen([binary, "-c", str(main)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        assert connect(port, "learnae-gateway", secret(root)) == 0
        assert connect(port, "learnae-gateway", "wrong") != 0
        assert connect(port, None, None) != 0
    finally:
        broker.terminate()
        broker.wait(10)


def connect(port: int, user: str | None, password: str | None) -> int:
    """The CONNACK reason code (0: accepted)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if user:
        client.username_pw_set(user, password)
    codes: list[int] = []
    client.on_connect = lambda _c, _u, _f, rc, _p: codes.append(rc.value)
    client.connect("127.0.0.1", port)
    deadline = 100
    while not codes and deadline:
        client.loop(0.1)
        deadline -= 1
    client.disconnect()
    if not codes:
        pytest.fail("no CONNACK within 10 s")
    return codes[0]


def test_a_dry_run_on_this_machine_plans_every_live_step_and_changes_nothing() -> None:
    etc = Path("/etc/learnae")
    existed = etc.exists()
    out = cli("install", "--dry-run", "--gateway-id", "greenhouse-1").stdout
    assert "would systemctl daemon-reload" in out or "would systemctl enable --now" in out
    assert "would create /etc/systemd/system/learnae-gateway.service" in out or \
        "would replace /etc/systemd/system/learnae-gateway.service" in out
    assert "dry run: nothing was changed" in out
    assert etc.exists() == existed


@pytest.mark.parametrize(("kind", "missing", "planned"), [
    ("iota-evm", "iota_sdk", True),
    ("iota-evm", None, False),  # the extra is installed: nothing to add
    (None, "iota_sdk", False),  # no ledger configured: the extra is not needed
])
def test_install_adds_the_ledger_extra_where_a_ledger_is_configured(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str | None,
        missing: str | None, planned: bool) -> None:
    from gateway import __version__
    from gateway.system.actions import Staging
    from gateway.system.install import Layout, Options, plan_install

    root = tmp_path / "root"
    env = root / "etc/learnae/gateway.env"
    env.parent.mkdir(parents=True)
    env.write_text("LEARNAE_MQTT_PASSWORD=x\n" + (f"LEARNAE_LEDGER_KIND={kind}\n" if kind else ""))
    if missing:
        monkeypatch.setitem(sys.modules, missing, None)  # as where the extra is not installed
    python = Path("/opt/learnae/venv/bin/python")
    actions = plan_install(Options(exec_path=python.with_name("learnae-gateway")),
                           Staging(root), Layout())
    pip = [a.text for a in actions if "pip install" in a.text]
    assert pip == ([f"{python} -m pip install 'learnae-edge[ledger]=={__version__}' "
                    f"(ledger.kind = 'iota-evm' needs iota_sdk)"] if planned else [])
    assert all(a.live for a in actions if "pip install" in a.text)
