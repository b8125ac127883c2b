"""The live system as ``install`` changes it: users, ownership, systemd.

Each function runs one ordinary tool (``useradd``, ``userdel``, ``systemctl``)
and turns its failure into ``HostError`` naming the command and its message.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from gateway.errors import HostError

__all__ = ["HostError", "chown", "create_system_user", "delete_user", "owner_of",
           "pip_install", "systemctl", "unit_state", "user_exists"]


def _run(*command: str) -> str:
    if shutil.which(command[0]) is None:
        raise HostError(f"{command[0]} is not installed (needed for: {' '.join(command)})")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HostError(f"{' '.join(command)}: {exc}") from exc
    if done.returncode != 0:
        raise HostError(f"{' '.join(command)} exited {done.returncode}: "
                        f"{(done.stderr or done.stdout).strip()[-500:]}")
    return done.stdout


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def create_system_user(name: str, home: Path) -> None:
    """A system user with its own group, no login shell and ``home`` (not created here)."""
    _run("useradd", "--system", "--user-group", "--home-dir", str(home), "--no-create-home",
         "--shell", "/usr/sbin/nologin", name)


def delete_user(name: str) -> None:
    _run("userdel", name)


def owner_of(path: Path) -> tuple[str, str]:
    info = path.stat()
    try:
        user = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        user = str(info.st_uid)
    try:
        group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = str(info.st_gid)
    return user, group


def chown(path: Path, user: str, group: str) -> None:
    try:
        shutil.chown(path, user, group)
    except (OSError, LookupError) as exc:
        raise HostError(f"chown {user}:{group} {path}: {exc}") from exc


def systemctl(*args: str) -> None:
    _run("systemctl", *args)


def unit_state(unit: str) -> tuple[str, str]:
    """(``systemctl is-enabled``, ``systemctl is-active``), e.g. ("enabled", "active")."""
    if shutil.which("systemctl") is None:
        return "unknown", "unknown"
    out = []
    for verb in ("is-enabled", "is-active"):
        done = subprocess.run(["systemctl", verb, unit], capture_output=True, text=True,
                              timeout=30, check=False, env={**os.environ, "LC_ALL": "C"})
        out.append(done.stdout.strip() or "unknown")
    return out[0], out[1]


def pip_install(python: Path, requirement: str) -> None:
    """``python -m pip install requirement`` (the gateway's own environment)."""
    _run(str(python), "-m", "pip", "install", "--quiet", requirement)
