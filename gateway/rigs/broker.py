"""A private Mosquitto on a free loopback port, for tests, benchmarks and the demo.

Debian's packaged service does not start here, and a shared broker would mix
runs, so each user gets its own config, data directory and port. Started as
root, Mosquitto drops to the ``user`` named in its config: we name the current
user so the directories we create stay writable.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from gateway.errors import BrokerError, RigError
from gateway.rigs.ports import free_port, wait_for_port


class PrivateBroker:
    """Run ``mosquitto`` bound to 127.0.0.1 with its own directory.

    ``password_file``/``acl_file`` switch from anonymous access to the
    locked-down mode; ``persistence`` keeps QoS 1 sessions across restarts.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        port: int | None = None,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        persistence: bool = True,
        extra_config: str = "",
    ) -> None:
        binary = shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()),
            None,
        )
        if binary is None:
            raise BrokerError("mosquitto is not installed; run `make setup`")
        self.binary = binary
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="learnae-broker-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.password_file = password_file
        self.acl_file = acl_file
        self.persistence = persistence
        self.extra_config = extra_config
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def log_path(self) -> Path:
        return self.directory / "mosquitto.log"

    def config_text(self) -> str:
        lines = [
            f"user {getpass.getuser()}",
            f"listener {self.port} 127.0.0.1",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.directory}/",
            "autosave_interval 1",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 1000000",
            "max_inflight_messages 1000",
        ]
        if self.password_file:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl_file:
            lines.append(f"acl_file {self.acl_file}")
        if self.extra_config:
            lines.append(self.extra_config)
        return "\n".join(lines) + "\n"

    def start(self) -> PrivateBroker:
        if self.process and self.process.poll() is None:
            return self
        conf = self.directory / "mosquitto.conf"
        conf.write_text(self.config_text())
        self.process = subprocess.Popen(
            [self.binary, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port)
        except RigError as exc:
            # a config or bind error goes to stderr before the log file is open
            err = b""
            if self.process.poll() is not None and self.process.stderr:
                err = self.process.stderr.read()
            self.stop()
            log = self.log_path.read_text() if self.log_path.exists() else ""
            raise BrokerError(f"{exc}; mosquitto stderr: {err.decode(errors='replace')[-2000:]}"
                              f"; mosquitto log: {log[-2000:]}") from exc
        return self

    def stop(self, kill: bool = False) -> None:
        """Stop the broker (SIGTERM lets it save persistence; ``kill`` skips that)."""
        if not self.process:
            return
        if self.process.poll() is None:
            (self.process.kill if kill else self.process.terminate)()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PrivateBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
