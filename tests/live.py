"""Our service over real HTTP, with its real lifespan (rules, database, GC freeze)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Self

from cds_service.app import create_app
from cds_service.config import Settings
from tests.threaded import ThreadedServer


class LiveService:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        app = create_app(settings, clock=clock)
        self._server = ThreadedServer(app, "cds-service", loop="asyncio", http="httptools")

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
