"""Where data may be fetched from (data/upstream.py): the fhirServer policy, the address check at connect
time, and one connection pool per issuer."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cds_service.data.fetch import FetchError, fetch_query
from cds_service.data.upstream import FetchPolicy, Upstream, Upstreams, under_base
from cds_service.security.trust import TrustedIssuer
from tests.fhirserver import FhirTestServer
from tests.threaded import ThreadedServer

PUBLIC = FetchPolicy()
LISTED = FetchPolicy(fhir_servers=("https://ehr.example.org/fhir", "https://ehr.example.org/r4/"))


@pytest.mark.parametrize(
    ("policy", "url"),
    [
        (PUBLIC, "https://ehr.example.org/fhir"),
        (PUBLIC, "https://93.184.216.34/fhir"),
        (FetchPolicy(allow_private=True), "http://127.0.0.1:8080/fhir"),
        (FetchPolicy(allow_private=True), "http://localhost/fhir"),
        (FetchPolicy(allow_private=True), "https://10.1.2.3/fhir"),
        (LISTED, "https://ehr.example.org/fhir"),
        (LISTED, "https://ehr.example.org/fhir/"),
        (LISTED, "https://ehr.example.org/fhir/tenant-7"),
        (LISTED, "https://ehr.example.org/r4"),
    ],
)
def test_allowed_fhir_servers(policy: FetchPolicy, url: str) -> None:
    assert policy.refusal(url) is None


@pytest.mark.parametrize(
    ("policy", "url", "why"),
    [
        (PUBLIC, "http://ehr.example.org/fhir", "must be https"),
        (PUBLIC, "https://127.0.0.1/fhir", "loopback"),
        (PUBLIC, "https://localhost:8443/fhir", "loopback"),
        (PUBLIC, "http://127.0.0.1:8080/fhir", "loopback"),
        (PUBLIC, "https://[::1]/fhir", "loopback"),
        (PUBLIC, "https://[::ffff:127.0.0.1]/fhir", "private or reserved"),
        (PUBLIC, "https://169.254.169.254/latest/meta-data", "private or reserved"),
        (PUBLIC, "https://10.0.0.1/fhir", "private or reserved"),
        (PUBLIC, "https://192.168.1.20/fhir", "private or reserved"),
        (PUBLIC, "https://100.64.0.1/fhir", "private or reserved"),
        (PUBLIC, "https://224.0.0.1/fhir", "private or reserved"),
        (PUBLIC, "https://0.0.0.0/fhir", "private or reserved"),
        (PUBLIC, "https://[fe80::1]/fhir", "private or reserved"),
        (FetchPolicy(allow_private=True), "http://10.0.0.1/fhir", "must be https"),
        (FetchPolicy(allow_private=True), "https://239.1.1.1/fhir", "private or reserved"),
        (PUBLIC, "https://user:pw@ehr.example.org/fhir", "base URL"),
        (PUBLIC, "https://ehr.example.org/fhir?x=1", "base URL"),
        (PUBLIC, "https://ehr.example.org/fhir/../admin", "'..' segments"),
        (PUBLIC, "ftp://ehr.example.org/fhir", "not an http(s) URL"),
        (LISTED, "https://ehr.example.org/fhir2", "not one of the FHIR servers trusted"),
        (LISTED, "https://ehr.example.org/", "not one of the FHIR servers trusted"),
        (LISTED, "https://evil.example/fhir", "not one of the FHIR servers trusted"),
        (LISTED, "https://ehr.example.org.evil.example/fhir", "not one of the FHIR servers trusted"),
        (LISTED, "http://ehr.example.org/fhir", "not one of the FHIR servers trusted"),
    ],
)
def test_refused_fhir_servers(policy: FetchPolicy, url: str, why: str) -> None:
    refusal = policy.refusal(url)
    assert refusal is not None and why in refusal


@pytest.mark.parametrize(
    ("address", "public", "private_allowed"),
    [
        ("93.184.216.34", True, True),
        ("2606:2800:220:1:248:1893:25c8:1946", True, True),
        ("127.0.0.1", False, True),
        ("::1", False, True),
        ("::ffff:10.0.0.1", False, True),
        ("10.0.0.1", False, True),
        ("172.16.5.4", False, True),
        ("169.254.169.254", False, True),
        ("fd00::1", False, True),
        ("224.0.0.251", False, False),
        ("ff02::1", False, False),
        ("0.0.0.0", False, False),
    ],
)
def test_address_classes(address: str, public: bool, private_allowed: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert PUBLIC.allows(ip) is public
    assert FetchPolicy(allow_private=True).allows(ip) is private_allowed
    assert LISTED.allows(ip)  # the trust file names the servers: internal ones too


def test_under_base() -> None:
    assert under_base("https://h/fhir/Patient/1", "https://h/fhir")
    assert under_base("https://h/fhir?page=2", "https://h/fhir")
    assert under_base("https://H:443/fhir/x", "https://h/fhir")
    assert not under_base("https://h/fhir/../x", "https://h/fhir")
    assert not under_base("https://h/fhirx", "https://h/fhir")
    assert not under_base("not a url at all", "https://h/fhir")


# At connect time: the address checked is the address connected to


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[str]]]:
    """Names resolved as the test says (other names as usual); each lookup is counted."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            answers.setdefault("_lookups", []).append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answers[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield answers


async def test_a_name_resolving_to_loopback_is_refused_before_any_packet(
    fhir_server: FhirTestServer, resolver: dict[str, list[str]]
) -> None:
    resolver["ehr.internal.example"] = ["127.0.0.1"]
    port = httpx.URL(fhir_server.base_url).port
    async with Upstream(PUBLIC) as upstream:
        with pytest.raises(FetchError, match="loopback, private or reserved"):
            await fetch_query(
                upstream.client,
                f"http://ehr.internal.example:{port}/fhir",
                "Patient/mas-f1",
                "t",
                1,
                "patient",
            )
    assert fhir_server.requests == []


async def test_only_the_allowed_addresses_of_a_name_are_connected_to(
    fhir_server: FhirTestServer, resolver: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rebinding resolver answering a private and a public address: only the public one is dialled,
    # and the name is resolved once per connection, by the code that connects.
    from httpcore._backends.auto import AutoBackend

    dialled: list[str] = []

    async def connect_tcp(self: Any, host: str, port: int, **kwargs: Any) -> Any:
        dialled.append(host)
        raise httpcore.ConnectError("no network in tests")

    monkeypatch.setattr(AutoBackend, "connect_tcp", connect_tcp)
    resolver["ehr.rebind.example"] = ["127.0.0.1", "93.184.216.34"]
    async with Upstream(PUBLIC) as upstream:
        with pytest.raises(FetchError, match="could not be reached"):
            await fetch_query(
                upstream.client, "https://ehr.rebind.example/fhir", "Patient/x", "t", 1, "patient"
            )
    assert dialled == ["93.184.216.34"]
    assert resolver["_lookups"] == ["ehr.rebind.example"]
    assert fhir_server.requests == []


async def test_loopback_is_fetched_from_when_allowed(fhir_server: FhirTestServer) -> None:
    async with Upstream(FetchPolicy(allow_private=True)) as upstream:
        decoded = await fetch_query(
            upstream.client, fhir_server.base_url, "Patient/mas-f1", None, 1, "patient"
        )
    assert [r.id for r in decoded.resources] == ["mas-f1"]


async def test_a_listed_server_on_loopback_is_fetched_from(fhir_server: FhirTestServer) -> None:
    async with Upstream(FetchPolicy(fhir_servers=(fhir_server.base_url,))) as upstream:
        decoded = await fetch_query(
            upstream.client, fhir_server.base_url, "Patient/mas-f1", None, 1, "patient"
        )
    assert [r.id for r in decoded.resources] == ["mas-f1"]


async def test_environment_proxies_are_not_used(
    fhir_server: FhirTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    async with Upstream(FetchPolicy(allow_private=True)) as upstream:
        decoded = await fetch_query(
            upstream.client, fhir_server.base_url, "Patient/mas-f1", None, 1, "patient"
        )
    assert [r.id for r in decoded.resources] == ["mas-f1"]


# One pool per issuer


def _issuer(iss: str, fhir_servers: tuple[str, ...] | None = None) -> TrustedIssuer:
    return TrustedIssuer(iss, None, "https://keys.example/jwks", (), None, fhir_servers=fhir_servers)


async def test_each_issuer_has_its_own_pool_and_policy() -> None:
    upstreams = Upstreams(allow_private=False, max_connections=3)
    a, b = _issuer("https://a.example", ("https://a.example/fhir",)), _issuer("https://b.example")
    try:
        first = upstreams.for_issuer(a)
        assert upstreams.for_issuer(a) is first  # made once, then kept
        assert upstreams.for_issuer(a) is not upstreams.for_issuer(b)
        assert upstreams.for_issuer(a).policy.fhir_servers == ("https://a.example/fhir",)
        assert upstreams.for_issuer(b).policy == FetchPolicy()
        assert upstreams.for_issuer(None).policy == FetchPolicy()
    finally:
        await upstreams.aclose()


@pytest.fixture
def slow_and_fast() -> Iterator[str]:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(3)
        return Response('{"resourceType": "Patient", "id": "slow"}', media_type="application/fhir+json")

    async def fast(request: Request) -> Response:
        return Response('{"resourceType": "Patient", "id": "fast"}', media_type="application/fhir+json")

    server = ThreadedServer(
        Starlette(routes=[Route("/fhir/Patient/slow", slow), Route("/fhir/Patient/fast", fast)]),
        "slow-and-fast",
        loop="asyncio",
    )
    server.start()
    yield f"http://127.0.0.1:{server.port}/fhir"
    server.stop()


async def test_one_issuers_busy_pool_does_not_hold_up_another(slow_and_fast: str) -> None:
    upstreams = Upstreams(allow_private=True, max_connections=1)
    busy = upstreams.for_issuer(_issuer("https://busy.example"))
    other = upstreams.for_issuer(_issuer("https://other.example"))
    try:
        hogging = asyncio.ensure_future(busy.client.get(slow_and_fast + "/Patient/slow"))
        await asyncio.sleep(0.2)  # the busy issuer's only connection is taken
        quick = httpx.Timeout(5.0, pool=0.3)
        with pytest.raises(httpx.PoolTimeout):
            await busy.client.get(slow_and_fast + "/Patient/fast", timeout=quick)
        answer = await other.client.get(slow_and_fast + "/Patient/fast", timeout=quick)
        assert answer.json()["id"] == "fast"
        hogging.cancel()
    finally:
        await upstreams.aclose()


async def _stalling_then_answering(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stall: asyncio.Event
) -> None:
    """A tiny HTTP/1.1 origin: while `stall` is set, starts a chunked body and never ends it."""
    body = b'{"resourceType":"Patient","id":"p1"}'
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            if stall.is_set():
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n")
                await writer.drain()
                while stall.is_set():
                    await asyncio.sleep(0.02)
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        return
    finally:
        writer.close()


@pytest.mark.integration
async def test_fetches_cancelled_at_the_deadline_leave_no_connection_behind() -> None:
    """httpcore 1.0.9 (encode/httpcore#1093): a request cancelled while it waits for a connection it
    was just given leaves that connection in the pool for ever, never connected. Calls cancelled at the
    prefetch deadline against a stalling server filled the pool with them, and every later fetch timed
    out against a healthy server (tests/faults/test_fhir_faults.py, under load)."""
    stall = asyncio.Event()
    stall.set()
    server = await asyncio.start_server(lambda r, w: _stalling_then_answering(r, w, stall), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/fhir/Patient/p1"

    async def fetch(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", url) as response:
            async for _ in response.aiter_raw():
                pass

    async def call(client: httpx.AsyncClient, fetches: int = 7) -> int:
        # As prefetch.gather_data does: fetches at once, the unfinished cancelled at the deadline.
        tasks = [asyncio.create_task(fetch(client)) for _ in range(fetches)]
        done, pending = await asyncio.wait(tasks, timeout=0.3)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return sum(1 for task in done if task.exception() is None)

    try:
        async with Upstream(FetchPolicy(allow_private=True), max_connections=4) as upstream:
            for _ in range(3):  # each round cancels many fetches queued for the 4 connections
                await asyncio.gather(*(call(upstream.client) for _ in range(10)))
            stall.clear()
            pool = upstream.client._transport._pool  # type: ignore[attr-defined]
            stuck = [c for c in pool.connections if "CONNECTING" in repr(c)]
            assert stuck == [], pool
            assert await call(upstream.client) == 7
    finally:
        server.close()
        await server.wait_closed()
