"""uvicorn in a thread of the service, on a socket the service binds itself.

The socket is bound before uvicorn starts, so a taken port fails the start with
an error that names the setting (``api.host``, ``api.port``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from gateway.errors import ServiceError

__all__ = ["ApiServer"]


class ApiServer:
    """uvicorn in a thread, on a socket we bind ourselves so errors name the setting."""

    def __init__(self, app: Any, host: str, port: int,
                 on_stop: Callable[[], None] | None = None) -> None:
        import uvicorn

        self._on_stop = on_stop
        # IPPROTO_TCP named explicitly: asyncio turns Nagle's algorithm off (TCP_NODELAY)
        # only on sockets whose proto is IPPROTO_TCP, and accepted sockets inherit the
        # listener's; with proto 0 a response written as head + body waited for the
        # client's delayed ACK (about 40 ms per request on Linux)
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                   socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise ServiceError(
                f"api.host = {host!r}, api.port = {port}: cannot listen ({exc.strerror})"
            ) from exc
        self._sock.listen(128)
        self.host = host
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            # httptools when it is installed (about 2.5 times the requests/s of h11 on the
            # device list, docs/benchmarks.md "API"), else h11
            http="auto",
            lifespan="off",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="api", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _serve(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop(0.5)  # the service never lists a part that failed: release it here
                raise ServiceError(f"the API server did not start on {self.url}")
            time.sleep(0.01)

    def request_stop(self) -> None:
        self._server.should_exit = True

    def stop(self, timeout: float = 5.0) -> None:
        self.request_stop()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(0.5)
        with contextlib.suppress(OSError):
            self._sock.close()
        if self._on_stop is not None:
            self._on_stop()
