"""The gateway as a system service: Mosquitto's files, the systemd unit, and
``learnae-gateway install`` / ``uninstall`` (docs/operations.md)."""

from gateway.system.install import Layout, Options, plan_install, plan_uninstall
from gateway.system.passwords import (
    password_hash,
    verify_password,
    write_acl,
    write_password_file,
)
from gateway.system.render import (
    render_acl,
    render_broker_config,
    render_broker_snippet,
    render_unit,
    write_broker_files,
)

__all__ = [
    "Layout",
    "Options",
    "password_hash",
    "plan_install",
    "plan_uninstall",
    "render_acl",
    "render_broker_config",
    "render_broker_snippet",
    "render_unit",
    "verify_password",
    "write_acl",
    "write_broker_files",
    "write_password_file",
]
