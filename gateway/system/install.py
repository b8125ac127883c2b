"""The gateway installed as a system service: files, user, Mosquitto, systemd.

``plan_install`` returns the actions that bring a machine (or a staging root)
to the installed state; ``plan_uninstall`` those that take it back, keeping the
data directory unless purged. What install creates is recorded in
``/etc/learnae/installed.json`` so uninstall removes exactly that.

A ledger configured for the service (``LEARNAE_LEDGER_KIND`` in the secrets file) needs
the ``ledger`` extra: when its packages are missing, install adds them with pip to the
environment that runs the gateway.

Secrets are generated once: the gateway's MQTT password lives in the secrets
file (``/etc/learnae/gateway.env``, 0600, read by systemd) and is reused by
later runs, and the password file keeps a hash that already matches it, so a
second install changes nothing.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

from gateway import __version__
from gateway.runtime.extras import missing_modules
from gateway.system import host
from gateway.system.actions import Action, Staging, plan_dir, plan_file, plan_remove
from gateway.system.passwords import password_hash, verify_password
from gateway.system.render import render_acl, render_broker_snippet, render_unit

__all__ = ["Layout", "Options", "plan_install", "plan_uninstall"]

SERVICE = "learnae-gateway.service"


@dataclass(frozen=True)
class Layout:
    """Where everything goes on the live system (the unit's paths)."""

    config_dir: Path = Path("/etc/learnae")
    data_dir: Path = Path("/var/lib/learnae")
    mosquitto_dir: Path = Path("/etc/mosquitto/learnae")
    mosquitto_conf_d: Path = Path("/etc/mosquitto/conf.d")
    unit_dir: Path = Path("/etc/systemd/system")
    user: str = "learnae"
    mosquitto_user: str = "mosquitto"

    # one property a path: the unit, the config and Mosquitto's files read them by name
    @property
    def config(self) -> Path:
        return self.config_dir / "gateway.toml"

    @property
    def secrets(self) -> Path:
        return self.config_dir / "gateway.env"

    @property
    def manifest(self) -> Path:
        return self.config_dir / "installed.json"

    @property
    def password_file(self) -> Path:
        return self.mosquitto_dir / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.mosquitto_dir / "acl"

    @property
    def broker_snippet(self) -> Path:
        return self.mosquitto_conf_d / "learnae.conf"

    @property
    def unit(self) -> Path:
        return self.unit_dir / SERVICE


@dataclass(frozen=True)
class Options:
    """The choices of ``learnae-gateway install`` (its flags)."""

    exec_path: Path
    gateway_id: str = field(default_factory=lambda: _host_id(socket.gethostname()))
    prefix: str = "learnae"
    mqtt_user: str = "learnae-gateway"
    mqtt_port: int = 1883
    mqtt_bind: str = "127.0.0.1"
    api_port: int = 8000
    tls_port: int | None = None
    tls_bind: str = "0.0.0.0"
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    require_certificate: bool = False


def _host_id(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower())[:32]
    return cleaned.strip("-") or "gateway"


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a TOML basic string is a JSON string for these values


def render_gateway_toml(options: Options, layout: Layout) -> str:
    return "\n".join([
        "# Written by `learnae-gateway install`; run it again after editing its flags, or edit",
        "# here and restart the service. Secrets are in gateway.env, never here.",
        "[gateway]",
        f"id = {_toml_str(options.gateway_id)}",
        f"data_dir = {_toml_str(str(layout.data_dir))}",
        "",
        "[mqtt]",
        'host = "127.0.0.1"',
        f"port = {options.mqtt_port}",
        f"topic_prefix = {_toml_str(options.prefix)}",
        f"username = {_toml_str(options.mqtt_user)}  # password: LEARNAE_MQTT_PASSWORD",
        "",
        "[api]",
        'host = "127.0.0.1"',
        f"port = {options.api_port}",
        "",
    ])


def _env_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _mqtt_password(staging: Staging, layout: Layout) -> tuple[str, bytes]:
    """The gateway's MQTT password (the secrets file's, else a new one) and that file."""
    lines = _env_lines(staging.path(layout.secrets))
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "LEARNAE_MQTT_PASSWORD" and value.strip():
            return value.strip(), "".join(f"{ln}\n" for ln in lines).encode()
    password = secrets.token_urlsafe(24)
    lines = [*lines, f"LEARNAE_MQTT_PASSWORD={password}"]
    return password, "".join(f"{ln}\n" for ln in lines).encode()


def _password_file(staging: Staging, layout: Layout, user: str, password: str) -> bytes:
    """The password file with ``user``'s line kept if it matches, else replaced; the
    other users (devices added with ``device add``) are kept."""
    path = staging.path(layout.password_file)
    lines = [ln for ln in _env_lines(path) if ln.strip()]
    for line in lines:
        name, _, hashed = line.partition(":")
        if name == user and verify_password(hashed, password):
            return "".join(f"{ln}\n" for ln in lines).encode()
    kept = [ln for ln in lines if ln.partition(":")[0] != user]
    return "".join(f"{ln}\n" for ln in [*kept, f"{user}:{password_hash(password)}"]).encode()


def _acl_file(staging: Staging, layout: Layout, options: Options) -> bytes:
    """The rendered ACL, or the existing file if it already holds every rule of it
    (``device add`` appends per-device blocks); other users' blocks are kept."""
    rendered = render_acl(options.prefix, options.mqtt_user)
    path = staging.path(layout.acl_file)
    if not path.exists():
        return rendered.encode()
    existing = path.read_text(encoding="utf-8")
    rules = [ln.strip() for ln in rendered.splitlines() if ln.strip() and not ln.startswith("#")]
    present = {ln.strip() for ln in existing.splitlines()}
    if all(rule in present for rule in rules):
        return existing.encode()
    others, keep = [], False
    for line in existing.splitlines():
        if line.startswith("user "):
            keep = line[5:].strip() != options.mqtt_user
        if keep:
            others.append(line)
    return (rendered + ("\n" + "\n".join(others).strip() + "\n" if others else "")).encode()


def plan_install(options: Options, staging: Staging, layout: Layout = Layout()) -> list[Action]:
    """Every action install takes, in order; empty when everything is in place."""
    actions: list[Action] = []
    if not host.user_exists(layout.user) or not staging.live:
        actions.append(Action(f"create system user {layout.user} (home {layout.data_dir}, "
                              "no login shell)",
                              lambda: host.create_system_user(layout.user, layout.data_dir),
                              live=True))
    for directory, mode in ((layout.config_dir, 0o755), (layout.data_dir, 0o750),
                            (layout.mosquitto_conf_d, 0o755), (layout.mosquitto_dir, 0o700),
                            (layout.unit_dir, 0o755)):
        actions += plan_dir(staging, directory, mode)
    password, secrets_text = _mqtt_password(staging, layout)
    config_actions = [
        *plan_file(staging, layout.config, render_gateway_toml(options, layout).encode(), 0o644),
        *plan_file(staging, layout.secrets, secrets_text, 0o600),
    ]
    broker_actions = [
        *plan_file(staging, layout.password_file,
                   _password_file(staging, layout, options.mqtt_user, password), 0o600),
        *plan_file(staging, layout.acl_file, _acl_file(staging, layout, options), 0o600),
        *plan_file(staging, layout.broker_snippet, render_broker_snippet(
            password_file=layout.password_file, acl_file=layout.acl_file,
            port=options.mqtt_port, bind=options.mqtt_bind, tls_port=options.tls_port,
            tls_bind=options.tls_bind, cafile=options.cafile, certfile=options.certfile,
            keyfile=options.keyfile, require_certificate=options.require_certificate,
        ).encode(), 0o644),
    ]
    unit_actions = plan_file(staging, layout.unit,
                             render_unit(options.exec_path, layout.config).encode(), 0o644)
    actions += config_actions + broker_actions + unit_actions
    actions += _ledger_extra(staging, layout, options)
    actions += _ownership(staging, layout)
    actions += _manifest(staging, layout, actions)
    actions += _services(staging, bool(broker_actions), bool(unit_actions),
                         bool(config_actions or unit_actions))
    return actions


def configured_ledger(staging: Staging, layout: Layout) -> str:
    """The ledger kind the service will run with: ``LEARNAE_LEDGER_KIND`` in the secrets
    file (the config file install writes sets none), else "none"."""
    for line in _env_lines(staging.path(layout.secrets)):
        key, _, value = line.partition("=")
        if key.strip() == "LEARNAE_LEDGER_KIND" and value.strip():
            return value.strip().strip('"')
    return "none"


def _ledger_extra(staging: Staging, layout: Layout, options: Options) -> list[Action]:
    """pip install of the ``ledger`` extra when a ledger is configured and it is missing."""
    kind = configured_ledger(staging, layout)
    missing = missing_modules("ledger") if kind != "none" else []
    if not missing:
        return []
    python = options.exec_path.parent / "python"
    requirement = f"learnae-edge[ledger]=={__version__}"
    return [Action(f"{python} -m pip install '{requirement}' (ledger.kind = {kind!r} needs "
                   f"{', '.join(missing)})",
                   lambda: host.pip_install(python, requirement), live=True)]


def _ownership(staging: Staging, layout: Layout) -> list[Action]:
    """The data directory for the service user; Mosquitto's files for Mosquitto."""
    wanted = [(layout.data_dir, layout.user)] + [
        (p, layout.mosquitto_user) for p in (layout.mosquitto_dir, layout.password_file,
                                             layout.acl_file)]
    actions = []
    for path, user in wanted:
        target = staging.path(path)
        if staging.live and target.exists() and host.owner_of(target) == (user, user):
            continue

        def change(path: Path = path, user: str = user) -> None:
            host.chown(path, user, user)

        actions.append(Action(f"chown {user}:{user} {path}", change, live=True))
    return actions


def _manifest(staging: Staging, layout: Layout, actions: list[Action]) -> list[Action]:
    """``installed.json``: every path install created, for uninstall."""
    target = staging.path(layout.manifest)
    recorded: set[str] = set()
    if target.exists():
        try:
            recorded = set(json.loads(target.read_text(encoding="utf-8")).get("created", []))
        except (ValueError, AttributeError):
            recorded = set()
    recorded |= {str(path) for a in actions for path in a.created}
    recorded.add(str(layout.manifest))
    text = json.dumps({"created": sorted(recorded)}, indent=1) + "\n"
    return plan_file(staging, layout.manifest, text.encode(), 0o644)


def _services(staging: Staging, broker_changed: bool, unit_changed: bool,
              service_changed: bool) -> list[Action]:
    actions = []
    if unit_changed or not staging.live:
        actions.append(Action("systemctl daemon-reload", lambda: host.systemctl("daemon-reload"),
                              live=True))
    if broker_changed or not staging.live:
        actions.append(Action("systemctl restart mosquitto (new config, ACL, passwords)",
                              lambda: host.systemctl("restart", "mosquitto"), live=True))
    enabled, active = host.unit_state(SERVICE) if staging.live else ("", "")
    if enabled != "enabled" or active != "active" or not staging.live:
        actions.append(Action(f"systemctl enable --now {SERVICE}",
                              lambda: host.systemctl("enable", "--now", SERVICE), live=True))
    elif service_changed:
        actions.append(Action(f"systemctl restart {SERVICE} (new config or unit)",
                              lambda: host.systemctl("restart", SERVICE), live=True))
    return actions


def plan_uninstall(staging: Staging, layout: Layout = Layout(), *,
                   purge: bool = False) -> list[Action]:
    """Undo install: stop and remove the unit, Mosquitto's and the gateway's files; the
    data directory and the service user stay unless ``purge``."""
    actions: list[Action] = []
    unit_present = staging.path(layout.unit).exists()
    if unit_present:
        actions.append(Action(f"systemctl disable --now {SERVICE}",
                              lambda: host.systemctl("disable", "--now", SERVICE), live=True))
    created = _recorded(staging, layout)
    removed: set[Path] = set()
    data = layout.data_dir
    for path in sorted(created, key=lambda p: (-len(p.parts), str(p))):
        if path == data or data in path.parents:
            continue
        actions += plan_remove(staging, path, removed)
    if unit_present:
        actions.append(Action("systemctl daemon-reload", lambda: host.systemctl("daemon-reload"),
                              live=True))
    if removed & {layout.broker_snippet, layout.password_file, layout.acl_file}:
        actions.append(Action("systemctl restart mosquitto (without the gateway's config)",
                              lambda: host.systemctl("restart", "mosquitto"), live=True))
    if purge:
        target = staging.path(data)
        if target.exists():
            actions.append(Action(f"remove {data} and everything in it (--purge)",
                                  lambda: shutil.rmtree(target)))
        if not staging.live or host.user_exists(layout.user):
            actions.append(Action(f"remove system user {layout.user} (--purge)",
                                  lambda: host.delete_user(layout.user), live=True))
    return actions


def _recorded(staging: Staging, layout: Layout) -> list[Path]:
    """What install recorded as created; without a record, the files it writes."""
    target = staging.path(layout.manifest)
    try:
        return [Path(p) for p in json.loads(target.read_text(encoding="utf-8"))["created"]]
    except (OSError, ValueError, KeyError, TypeError):
        return [layout.config, layout.secrets, layout.manifest, layout.password_file,
                layout.acl_file, layout.broker_snippet, layout.unit, layout.mosquitto_dir]
