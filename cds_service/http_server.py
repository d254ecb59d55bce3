"""The HTTP server's own limits, which uvicorn's httptools protocol does not have.

uvicorn with httptools reads a request line and headers of any size and for any time: llhttp sets no
limit, and httptools joins a header's pieces by copying, so a 40 MB header is megabytes of copies on the
event loop before the application even sees it, and a client sending one header byte a second holds its
connection for ever (uvicorn's keep-alive timeout only runs between requests). This protocol adds:

- a bound on the request line and headers together (431 past it), and on the number of headers;
- a deadline for the headers of each request, counted from the connection's opening or the previous
  response (408 and close past it, or a plain close when nothing was sent).

Bodies are bounded by the application (protocol/body.py: size and read deadline). The limits come from
Settings; in worker processes, which uvicorn starts by importing this class, from the CDS_* environment
that `cds-service serve` writes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cds_service.config import Settings


@dataclasses.dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int
    max_headers: int
    header_timeout_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> HttpLimits:
        return cls(settings.max_header_bytes, settings.max_headers, settings.header_timeout_seconds)


@functools.cache
def _limits_from_environment() -> HttpLimits:
    return HttpLimits.of(Settings.from_env())


class _TooLarge(Exception):
    pass


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the limits above. Use `for_settings` in process; the class
    itself reads the environment (uvicorn's worker processes import it by name)."""

    limits: ClassVar[HttpLimits | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = self.limits or _limits_from_environment()
        self._header_bytes = 0
        self._reading_headers = True
        # Requests whose headers were read, and responses completed: equal when the connection waits
        # for the next request's headers.
        self._headers_read = 0
        self._responses_done = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._refusing: int | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> type[LimitedHttpToolsProtocol]:
        return type(cls.__name__, (cls,), {"limits": HttpLimits.of(settings)})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        super().data_received(data)
        if self._reading_headers and not self.transport.is_closing():
            # At most one read (a few hundred KB) past the limit is ever buffered by the parser.
            self._header_bytes += len(data)
            if self._header_bytes > self._limits.max_header_bytes:
                self._refuse(431, "request line and headers are too large")

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers 400 to any exception raised in a parser callback: ours say 431.
        if self._refusing == 431:
            self._refuse(431, "request line and headers are too large, or too many")
        else:
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        self._header_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= self._limits.max_headers:
            self._refusing = 431
            raise _TooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        # Headers that came in one read were not counted chunk by chunk: count what was parsed.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self._limits.max_header_bytes:
            self._refusing = 431
            raise _TooLarge
        self._reading_headers = False
        self._headers_read += 1
        self._stop_header_clock()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        self._responses_done += 1
        super().on_response_complete()
        if not self.transport.is_closing() and self._headers_read == self._responses_done:
            self._start_header_clock()

    def _start_header_clock(self) -> None:
        self._stop_header_clock()
        self._header_timer = self.loop.call_later(self._limits.header_timeout_seconds, self._headers_late)

    def _stop_header_clock(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self._headers_read != self._responses_done:
            return
        if self._header_bytes:
            self._refuse(408, "the request headers did not arrive in time")
        else:
            self.transport.close()  # an idle connection: nothing to answer

    def _refuse(self, status: int, message: str) -> None:
        if self.transport.is_closing():
            return
        phrase = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
        body = message.encode("ascii")
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, phrase, len(body), body)
        )
        self.logger.warning("refused a request: %s", message)
        self.transport.close()
