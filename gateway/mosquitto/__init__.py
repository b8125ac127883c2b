"""Mosquitto configuration templates for a locked-down broker, and their renderer."""

from gateway.mosquitto.render import render_acl, render_broker_config, write_broker_files

__all__ = ["render_acl", "render_broker_config", "write_broker_files"]
