"""Reading a request body within limits: the service endpoints and the playground share these rules."""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect, Request

from cds_service.protocol.outcome import ProblemError

JSON = "application/json"


async def read_json_body(
    request: Request, limit: int, timeout: float, empty: str = "request body is empty"
) -> bytes:
    """The body of a JSON request: 415 for another media type, 413 past `limit` bytes (declared or
    streamed), 408 when it takes longer than `timeout` seconds to arrive (a slow client holds its
    connection and our memory), 400 when the client hangs up mid-body or sends nothing (`empty` says
    what to do)."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != JSON and not media_type.endswith("+json"):
        raise ProblemError.single(415, f"Content-Type must be {JSON}, not {content_type or 'missing'!r}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProblemError.single(413, f"request body is {declared} bytes; the limit is {limit}")
    chunks = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ProblemError.single(413, f"request body exceeds the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        problem = ProblemError.single(
            408, f"the request body did not arrive within {timeout:g} s ({size} bytes came)"
        )
        # The rest of the body may still be on its way: the connection cannot carry another request.
        problem.headers["Connection"] = "close"
        raise problem from None
    except ClientDisconnect:
        # The caller gave up (e.g. its own timeout) before sending the whole body: nobody will read an
        # answer, but the call is logged and audited as what it was, not as a server error.
        raise ProblemError.single(
            400, "the client closed the connection before sending the whole body"
        ) from None
    body = b"".join(chunks)
    if not body.strip():
        raise ProblemError.single(400, empty)
    try:
        # JSON is UTF-8 (RFC 8259). Checked once here, so that no decoder further in meets other bytes
        # in a string (msgspec raises UnicodeDecodeError there, which no one expects).
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemError.single(
            400, f"request body is not UTF-8: byte {exc.object[exc.start]:#04x} at offset {exc.start}"
        ) from None
    return body
