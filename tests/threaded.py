"""An ASGI app served by uvicorn on 127.0.0.1 and a free port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

STARTUP_TIMEOUT_SECONDS = 20.0
SHUTDOWN_TIMEOUT_SECONDS = 10.0


class ThreadedServer:
    def __init__(self, app: Any, name: str, sock: socket.socket | None = None, **config: Any) -> None:
        self._app = app
        self._name = name
        self._config = config
        self._sock = sock
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    def start(self) -> int:
        sock, self._sock = self._sock or bound_socket(), None
        # log_config=None leaves the test process's logging alone; warnings still reach pytest.
        config = uvicorn.Config(
            self._app, log_level="warning", log_config=None, access_log=False, **self._config
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=self._name, daemon=True)
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(SHUTDOWN_TIMEOUT_SECONDS)
                sock.close()
                raise RuntimeError(f"{self._name} did not start")
            time.sleep(0.01)
        self._server, self._thread, self.port = server, thread, sock.getsockname()[1]
        return self.port

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(SHUTDOWN_TIMEOUT_SECONDS)
        if self._thread.is_alive():
            raise RuntimeError(f"{self._name} did not shut down")
        self._server = self._thread = self.port = None


def bound_socket() -> socket.socket:
    """A listening-ready socket on 127.0.0.1 and a free port: binding port 0 ourselves gives a free port
    with no race between choosing and listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Inherited by accepted connections: without it a response written in two segments waits ~40 ms
    # for the client's delayed ACK (uvicorn's own serve sets this on the sockets it makes).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock
