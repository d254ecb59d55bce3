"""The HTTP server's limits over real sockets (cds_service/http_server.py, protocol/body.py): oversized and
slow headers, slow bodies, and that ordinary keep-alive, pipelining and slow answers are not cut.

Timeouts are set to fractions of a second here so that the waits stay short; the figures a flood costs
are in bench/header_flood.py, not asserted.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.fhirserver import FhirTestServer
from tests.test_app import ORDER_SIGN, sandbox_order_sign

FAST = {"header_timeout_seconds": 0.5, "body_timeout_seconds": 0.5}


@pytest.fixture
def limited(service_with: Callable[..., httpx.Client]) -> Iterator[httpx.Client]:
    with service_with(**FAST) as client:
        yield client


def _connect(client: httpx.Client) -> socket.socket:
    url = client.base_url
    sock = socket.create_connection((url.host, url.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or 10 s pass: a test failure)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_a_40_mb_header_is_refused_early_and_does_not_stall_healthz(limited: httpx.Client) -> None:
    sock = _connect(limited)
    sent = 0
    errors: list[BaseException] = []

    def flood() -> None:
        nonlocal sent
        try:
            sock.sendall(b"GET /cds-services HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
            piece = b"e" * (1024 * 1024)
            for _ in range(40):
                sock.sendall(piece)
                sent += len(piece)
        except OSError as exc:  # the server closed the connection: what should happen
            errors.append(exc)

    sender = threading.Thread(target=flood)
    sender.start()
    health = limited.get("/healthz", timeout=5)
    sender.join(30)
    assert health.status_code == 200
    answer = _read_all(sock)
    sock.close()
    assert _status(answer) == 431, answer[:200]
    assert b"connection: close" in answer.lower()
    assert errors and sent < 40 * 1024 * 1024  # the server stopped reading long before the end


def test_a_header_just_under_the_limit_reaches_the_app(limited: httpx.Client) -> None:
    response = limited.get("/healthz", headers={"X-Padding": "p" * 30_000})
    assert response.status_code == 200


def test_a_request_line_past_the_limit_is_refused(limited: httpx.Client) -> None:
    sock = _connect(limited)
    sock.sendall(b"GET /healthz?" + b"q" * 40_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = _read_all(sock)
    sock.close()
    assert _status(answer) == 431


def test_too_many_headers_are_refused(limited: httpx.Client) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    sock = _connect(limited)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    answer = _read_all(sock)
    sock.close()
    assert _status(answer) == 431


def test_headers_sent_a_byte_at_a_time_are_cut_off(limited: httpx.Client) -> None:
    sock = _connect(limited)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    started = time.monotonic()
    closed = False
    answer = b""
    # Keep dribbling well past the 0.5 s header deadline; the server must cut the connection.
    while time.monotonic() - started < 5:
        try:
            sock.sendall(b"a")
        except OSError:
            closed = True
            break
        sock.settimeout(0.1)
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            closed = True
            break
        answer += chunk
        if not chunk:
            closed = True
            break
    sock.close()
    assert closed
    assert not answer or _status(answer) == 408


def test_an_idle_connection_is_closed(limited: httpx.Client) -> None:
    sock = _connect(limited)
    answer = _read_all(sock)  # returns once the server closes (after the 0.5 s header deadline)
    sock.close()
    assert answer == b""


def test_a_slow_body_gets_408_and_the_connection_closes(limited: httpx.Client) -> None:
    body = orjson.dumps(sandbox_order_sign())
    sock = _connect(limited)
    head = (
        f"POST {ORDER_SIGN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body[:10])
    answer = _read_all(sock)
    sock.close()
    assert _status(answer) == 408, answer[:300]
    assert b"connection: close" in answer.lower()
    outcome = orjson.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "timeout"


def test_keep_alive_and_pipelining_still_work(limited: httpx.Client) -> None:
    sock = _connect(limited)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    sock.sendall(request * 3)  # pipelined
    time.sleep(0.2)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = _read_all(sock)
    sock.close()
    assert answer.count(b"HTTP/1.1 200 OK") == 4


def test_an_answer_slower_than_the_header_deadline_is_not_cut(
    service_with: Callable[..., httpx.Client], fhir_server: FhirTestServer
) -> None:
    fhir_server.delay_seconds = 1.0  # each fetch waits a second: twice the header deadline
    body: dict[str, Any] = sandbox_order_sign()
    body["prefetch"].pop("labs")
    body["fhirServer"] = fhir_server.base_url
    body["fhirAuthorization"] = {
        "access_token": "t",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }
    with service_with(fetch_deadline_seconds=3.0, fetch_allow_private=True, **FAST) as client:
        response = client.post(ORDER_SIGN, json=body)
        assert response.status_code == 200, response.text
        assert fhir_server.requests
        again = client.get("/healthz")  # the same keep-alive connection goes on serving
        assert again.status_code == 200
