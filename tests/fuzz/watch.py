"""Fuzzing support: the app in process with its lifespan, and the log watched for failures that are only
logged while the answer is still 200 (a chart that could not be made, an audit row that could not be
written)."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from anyio.from_thread import start_blocking_portal
from fastapi import FastAPI

CHART_PATH = re.compile(r"^https?://[^/]+(/charts/[A-Za-z0-9_-]{43})$")


class LogWatch(logging.Handler):
    """Every record at ERROR or above, and every record carrying a traceback, since the last clear()."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    def clear(self) -> None:
        self.records = []

    def problems(self) -> list[str]:
        return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.records]


Call = Callable[..., httpx.Response]


@contextmanager
def in_process(app: FastAPI) -> Iterator[tuple[Call, LogWatch]]:
    """call(method, path, **httpx arguments) against `app` with its lifespan, and the log watch.

    In process (httpx ASGITransport on an event loop thread) rather than over TCP: the suite's threaded
    server answers each call ~40 ms late (docs/fuzzing.md); real HTTP is tested in test_found_over_http.py.
    """
    watch = LogWatch()
    root = logging.getLogger()
    root.addHandler(watch)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a crash is a 500 to assert on
    try:
        with (
            start_blocking_portal() as portal,
            portal.wrap_async_context_manager(app.router.lifespan_context(app)),
        ):
            client = httpx.AsyncClient(transport=transport, base_url="http://cds.test")

            def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
                return portal.call(functools.partial(client.request, method, path, **kwargs))

            yield call, watch
            portal.call(client.aclose)
    finally:
        root.removeHandler(watch)


def chart_paths(answer: dict[str, Any]) -> list[str]:
    """The path of every distinct chart link on the answer's cards."""
    paths = []
    for card in answer.get("cards", ()):
        for link in card.get("links", ()):
            match = CHART_PATH.match(link.get("url", ""))
            if match and match.group(1) not in paths:
                paths.append(match.group(1))
    return paths
