"""Fill in the templates next to this module: Mosquitto's (broker.conf for a broker of
its own, conf.d.conf for the distribution's, tls.conf, acl.conf) and the systemd unit.

`device add` (gateway/commands/device.py) adds one user block per device to
the same password and ACL files; the ``pattern`` lines here already confine
every device user to its own topics, so a device missing its block is still
locked in.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from shared.topics import check_prefix

HERE = Path(__file__).resolve().parent


def _template(name: str) -> Template:
    return Template((HERE / name).read_text())


def render_broker_config(*, directory: Path, port: int = 1883, bind: str = "127.0.0.1",
                         password_file: Path | None = None, acl_file: Path | None = None,
                         max_queued: int = 100000, tls_port: int | None = None,
                         tls_bind: str = "0.0.0.0", cafile: Path | None = None,
                         certfile: Path | None = None, keyfile: Path | None = None,
                         require_certificate: bool = False, run_as: str | None = None) -> str:
    """The broker config; ``tls_port`` adds a TLS listener (``cafile``/``certfile``/
    ``keyfile`` required). Paths default to files under ``directory``. Started as root,
    Mosquitto drops to ``run_as`` (default: the ``mosquitto`` user)."""
    tls_block = _tls_block(tls_port, tls_bind, cafile, certfile, keyfile, require_certificate)
    return _template("broker.conf").substitute(
        password_file=password_file or directory / "passwd",
        acl_file=acl_file or directory / "acl",
        persistence_dir=directory, log_file=directory / "mosquitto.log",
        max_queued=max_queued, port=port, bind=bind, tls_block=tls_block,
        user_line=f"user {run_as}" if run_as else "")


def _tls_block(tls_port: int | None, tls_bind: str, cafile: Path | None,
               certfile: Path | None, keyfile: Path | None, require_certificate: bool) -> str:
    if tls_port is None:
        return ""
    missing = [n for n, v in (("cafile", cafile), ("certfile", certfile),
                              ("keyfile", keyfile)) if v is None]
    if missing:
        raise ValueError(f"a TLS listener on port {tls_port} needs {', '.join(missing)}")
    return _template("tls.conf").substitute(
        tls_port=tls_port, tls_bind=tls_bind, cafile=cafile, certfile=certfile,
        keyfile=keyfile, require_certificate="true" if require_certificate else "false")


def render_broker_snippet(*, password_file: Path, acl_file: Path, port: int = 1883,
                          bind: str = "127.0.0.1", max_queued: int = 100000,
                          tls_port: int | None = None, tls_bind: str = "0.0.0.0",
                          cafile: Path | None = None, certfile: Path | None = None,
                          keyfile: Path | None = None, require_certificate: bool = False) -> str:
    """The ``conf.d`` file for the distribution's Mosquitto (which keeps its own
    persistence, log and user settings); ``tls_port`` adds a TLS listener."""
    return _template("conf.d.conf").substitute(
        password_file=password_file, acl_file=acl_file, max_queued=max_queued, port=port,
        bind=bind, tls_block=_tls_block(tls_port, tls_bind, cafile, certfile, keyfile,
                                        require_certificate))


def render_unit(exec_path: Path, config_path: Path = Path("/etc/learnae/gateway.toml")) -> str:
    """The systemd unit running ``exec_path run --config config_path``."""
    return _template("learnae-gateway.service").substitute(exec_path=exec_path,
                                                           config_path=config_path)


def render_acl(prefix: str, gateway_user: str) -> str:
    if not gateway_user or any(c in gateway_user for c in " \n+#/"):
        raise ValueError(f"gateway MQTT user {gateway_user!r} must be one word without wildcards")
    return _template("acl.conf").substitute(prefix=check_prefix(prefix),
                                            gateway_user=gateway_user)


def write_broker_files(directory: Path, *, prefix: str, gateway_user: str,
                       **config: object) -> tuple[Path, Path]:
    """Write ``mosquitto.conf`` and (if absent) ``acl`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "mosquitto.conf"
    conf.write_text(render_broker_config(directory=directory, **config))  # type: ignore[arg-type]
    acl = directory / "acl"
    if not acl.exists():
        acl.write_text(render_acl(prefix, gateway_user))
    return conf, acl
