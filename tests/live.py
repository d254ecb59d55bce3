"""Our service over real HTTP, with its real lifespan (rules, database, GC freeze)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Self

from cds_service.app import create_app
from cds_service.config import Settings
from cds_service.http_server import LimitedHttpToolsProtocol
from tests.threaded import ThreadedServer, bound_socket


class LiveService:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] | None = None) -> None:
        sock = bound_socket()
        if settings.public_url is None:
            # Links on cards and pages point at the configured address, never the Host header: make it
            # the address this server really listens on.
            settings = dataclasses.replace(settings, host="127.0.0.1", port=sock.getsockname()[1])
        self.settings = settings
        self._server = ThreadedServer(
            create_app(settings, clock=clock),
            "cds-service",
            sock=sock,
            loop="asyncio",
            http=LimitedHttpToolsProtocol.for_settings(settings),
            timeout_keep_alive=settings.keep_alive_seconds,
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
