"""The systemd unit: valid for systemd, hardened, and pointing at the real command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import ApiSection, GatewayConfig
from gateway.system import render_unit

EXEC = Path("/opt/learnae/venv/bin/learnae-gateway")
UNIT_TEXT = render_unit(EXEC)


def settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_unit_has_restart_state_user_and_hardening() -> None:
    unit = settings(UNIT_TEXT)
    expected = {
        "Type": ["notify"], "Restart": ["on-failure"], "StateDirectory": ["learnae"],
        "User": ["learnae"], "Group": ["learnae"], "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"], "ProtectHome": ["yes"], "PrivateTmp": ["yes"],
        "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6"], "KillSignal": ["SIGTERM"],
        "RestartPreventExitStatus": ["2"],
    }
    for key, value in expected.items():
        assert unit.get(key) == value, key
    assert unit["ExecStart"] == [
        "/opt/learnae/venv/bin/learnae-gateway run --config /etc/learnae/gateway.toml"]
    # the default data_dir is the StateDirectory
    assert GatewayConfig().gateway.data_dir == Path("/var/lib/") / unit["StateDirectory"][0]
    assert ApiSection().host == "127.0.0.1"


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    script = Path(sys.executable).parent / "learnae-gateway"
    if not script.exists():
        pytest.skip(f"{script} is missing (install the project with pip -e)")
    # verify checks that ExecStart exists: point it at this checkout's console script
    copy = tmp_path / "learnae-gateway.service"
    copy.write_text(render_unit(script))
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
