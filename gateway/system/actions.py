"""What ``install`` and ``uninstall`` do, as a list of actions decided before any is run.

A plan compares what should be with what is: an action exists only for a
difference, so a second run finds none ("nothing to change"). Files are written
whole (temporary file, fsync, rename) with their mode; a file that exists with
other content is first moved aside to ``<name>.bak-<UTC time>`` and the action
says so: nothing is overwritten silently. Every path is the live one
(``/etc/learnae/...``); ``root`` maps it into a staging tree for packaging and tests.
Actions that need the live system (users, ownership, systemctl) are marked
``live`` and are listed but not run with a staging root.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

__all__ = ["Action", "Staging", "backup_name", "execute", "plan_dir", "plan_file", "plan_remove"]


@dataclass(frozen=True)
class Action:
    """One change: ``text`` says it in a line, ``run`` does it."""

    text: str
    run: Callable[[], None]
    live: bool = False  # touches the running system: not done with a staging root
    created: tuple[Path, ...] = ()  # live paths this action creates (recorded for uninstall)


@dataclass(frozen=True)
class Staging:
    """Maps live paths under ``root`` (``/`` on the real system)."""

    root: Path = Path("/")

    @property
    def live(self) -> bool:
        return self.root == Path("/")

    def path(self, live_path: Path) -> Path:
        return self.root / live_path.relative_to("/")


def backup_name(path: Path) -> Path:
    """``<path>.bak-<UTC time>``, with a counter if that exists too."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.bak-{stamp}-{n}")
    return candidate


def _write(target: Path, content: bytes, mode: int) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def plan_dir(staging: Staging, live_path: Path, mode: int) -> list[Action]:
    target = staging.path(live_path)
    if target.is_dir():
        if target.stat().st_mode & 0o7777 != mode:
            return [Action(f"chmod {mode:04o} {live_path}",
                           lambda: os.chmod(target, mode))]
        return []

    missing = [live_path, *(p for p in live_path.parents if not staging.path(p).exists())]

    def make() -> None:
        target.mkdir(parents=True, exist_ok=True)
        os.chmod(target, mode)

    return [Action(f"create directory {live_path} (mode {mode:04o})", make,
                   created=tuple(missing))]


def plan_file(staging: Staging, live_path: Path, content: bytes, mode: int) -> list[Action]:
    """Create ``live_path`` with ``content``, or back up a different one and replace it."""
    target = staging.path(live_path)
    if not target.exists():
        return [Action(f"create {live_path} (mode {mode:04o})",
                       lambda: _write(target, content, mode), created=(live_path,))]
    if target.read_bytes() == content:
        if target.stat().st_mode & 0o7777 != mode:
            return [Action(f"chmod {mode:04o} {live_path}", lambda: os.chmod(target, mode))]
        return []

    def replace() -> None:
        backup = backup_name(target)
        shutil.copy2(target, backup)
        print(f"  backed up {live_path} to {backup.name}", flush=True)
        _write(target, content, mode)

    return [Action(f"replace {live_path} (mode {mode:04o}); the old one is kept as "
                   f"{live_path.name}.bak-<time>", replace)]


def plan_remove(staging: Staging, live_path: Path, removed: set[Path]) -> list[Action]:
    """Remove a file or symlink, or a directory once everything in it is in ``removed``
    (the live paths that earlier actions of the plan remove); adds what it removes."""
    target = staging.path(live_path)
    if target.is_symlink() or target.is_file():
        removed.add(live_path)
        return [Action(f"remove {live_path}", target.unlink)]
    if target.is_dir():
        if any(live_path / child.name not in removed for child in target.iterdir()):
            return []
        removed.add(live_path)
        return [Action(f"remove directory {live_path}", target.rmdir)]
    return []


def execute(actions: list[Action], staging: Staging, *, dry_run: bool, out: TextIO,
            verb: str = "install", idle: str = "nothing to change") -> int:
    """Run (or with ``dry_run`` only print) every action; returns how many were done.

    Each action is printed before it runs (``+``; ``would`` in a dry run). With a
    staging root, live actions are printed as not done, with the reason.
    """
    done = 0
    for action in actions:
        if action.live and not staging.live:
            print(f"- not done with --root: {action.text}", file=out, flush=True)
        elif dry_run:
            print(f"would {action.text}", file=out, flush=True)
            done += 1
        else:
            print(f"+ {action.text}", file=out, flush=True)
            action.run()
            done += 1
    where = "" if staging.live else f" in {staging.root}"
    if done == 0:
        print(f"{verb}: {idle}{where}", file=out, flush=True)
    elif dry_run:
        print(f"{verb}: {done} steps would run{where} (dry run: nothing was changed)", file=out)
    else:
        print(f"{verb}: {done} steps done{where}", file=out, flush=True)
    return done
