"""The release: ``python -m build`` makes an sdist and a wheel that run without the source tree.

The wheel is installed into a fresh virtualenv outside the checkout and run from
a directory that holds no source: the demo (broker, three gateways, the firmware
under the MicroPython unix port) and ``install --root DIR --dry-run`` (templates
and unit read from the installed package).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from support import REPO

from gateway import __version__

pytestmark = pytest.mark.slow

# what the gateway reads at run time, beside its Python modules
RUNTIME_FILES = (
    "edge_firmware/main.py", "edge_firmware/host/machine.py", "edge_firmware/host/network.py",
    "shared/config.py", "hardware/boards/esp32-devkitc.json", "hardware/boards/pico-w.json",
    "gateway/api/static/index.html", "gateway/api/static/app.js",
    "gateway/api/static/app.css", "gateway/api/static/apidocs.html",
    "gateway/data/airquality.csv.gz", "gateway/system/learnae-gateway.service",
    "gateway/system/broker.conf", "gateway/system/conf.d.conf", "gateway/system/acl.conf",
    "gateway/system/tls.conf",
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
                            capture_output=True, text=True, timeout=600, cwd=out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def clean_env() -> dict[str, str]:
    """The environment without anything that points Python at the checkout."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}


def test_the_wheel_and_the_sdist_carry_every_runtime_file(dist: Path) -> None:
    (wheel,) = dist.glob("learnae_edge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [f for f in RUNTIME_FILES if f not in names] == []
    assert f"learnae_edge-{__version__}.dist-info/entry_points.txt" in names
    (sdist,) = dist.glob("learnae_edge-*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = {m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name}
    assert [f for f in RUNTIME_FILES if f not in members] == []


def test_the_installed_wheel_runs_the_demo_and_install_outside_the_checkout(
        dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("learnae_edge-*.whl")
    venv = tmp_path / "venv"
    env = clean_env()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=env)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[demo]"],
                         capture_output=True, text=True, timeout=900, env=env)
    assert pip.returncode == 0, pip.stderr[-3000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    assert not (work / "gateway").exists() and REPO not in work.parents

    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import gateway, edge_firmware, hardware.boards, shared; "
         "print(gateway.__file__, edge_firmware.__file__, hardware.boards.__file__)"],
        capture_output=True, text=True, timeout=60, cwd=work, env=env, check=True)
    for path in where.stdout.split():
        assert Path(path).is_relative_to(venv), path

    cli = str(venv / "bin" / "learnae-gateway")
    demo = subprocess.run([cli, "demo", "--duration", "20"], capture_output=True, text=True,
                          timeout=300, cwd=work, env=env)
    assert demo.returncode == 0, demo.stderr[-4000:]
    summary = json.loads(demo.stdout.strip().splitlines()[-1])
    assert len(summary["gateways"]) >= 2
    for name, gateway in summary["gateways"].items():
        assert gateway["readings"] > 0, name
        assert gateway["exit_code"] == 0, name

    staged = tmp_path / "root"
    dry = subprocess.run([cli, "install", "--root", str(staged), "--dry-run"],
                         capture_output=True, text=True, timeout=120, cwd=work, env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would create /etc/systemd/system/learnae-gateway.service" in dry.stdout
    assert "would create /etc/mosquitto/conf.d/learnae.conf" in dry.stdout
    assert not any(staged.rglob("*")), "a dry run wrote files"
    real = subprocess.run([cli, "install", "--root", str(staged)], capture_output=True,
                          text=True, timeout=120, cwd=work, env=env)
    assert real.returncode == 0, real.stderr
    unit = (staged / "etc/systemd/system/learnae-gateway.service").read_text()
    assert f"ExecStart={venv}/bin/learnae-gateway run --config /etc/learnae/gateway.toml" in unit
