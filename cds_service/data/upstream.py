"""Where the service may fetch FHIR data from, and the connection pools it fetches through.

A hook call names its FHIR server (`fhirServer`), so without limits any signed caller could make the
service GET any URL, loopback and the cloud metadata address included, with a bearer token, and read
the outcome back. So:

- an issuer whose trust-file entry lists `fhir_servers` is fetched from only under those base URLs
  (the request's fhirServer equals one, or starts with one followed by `/`): anything else is refused
  with 400 before connecting;
- for an issuer without that list (and with authentication off), fhirServer must be https (http only
  for loopback), and every connection is checked after DNS resolution: loopback, private, link-local,
  multicast and reserved addresses are refused unless CDS_FETCH_ALLOW_PRIVATE=1 (local development).
  The address checked is the address connected to (the pool's network backend resolves and connects
  in one step), so DNS rebinding between a check and the connection cannot swap it;
- each issuer has its own connection pool with its own limit, so that one tenant's slow FHIR server
  cannot take the connections another tenant's calls need (key fetches have their own client too).

Environment proxies (HTTP_PROXY...) are not used for FHIR fetches: the address check would see the
proxy, not the server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import socket
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpcore
import httpx
from httpcore import AsyncNetworkBackend, AsyncNetworkStream
from httpcore._backends.auto import AutoBackend

from cds_service.security.trust import TrustedIssuer

log = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOW_PRIVATE_WARNING = (
    "CDS_FETCH_ALLOW_PRIVATE is on: FHIR servers on loopback and private addresses may be fetched from "
    "for issuers without fhir_servers; local development only"
)
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


class DestinationRefused(httpcore.ConnectError):
    """A connection the policy does not allow; raised by the pool before any packet is sent."""


@dataclasses.dataclass(frozen=True)
class FetchPolicy:
    # Base URLs from the issuer's trust-file entry; None: any https server on a public address.
    fhir_servers: tuple[str, ...] | None = None
    allow_private: bool = False

    def refusal(self, fhir_server: str) -> str | None:
        """Why `fhir_server` may not be fetched from (a sentence for a 400), or None."""
        parts = urlsplit(fhir_server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"fhirServer {fhir_server!r} is not an http(s) URL"
        if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
            return f"fhirServer {fhir_server!r} must be a base URL: no credentials, query or fragment"
        if any(segment in (".", "..") for segment in parts.path.split("/")) or "\\" in parts.path:
            return f"fhirServer {fhir_server!r} has '.' or '..' segments"
        if self.fhir_servers is not None:
            if not any(under_base(fhir_server, base) for base in self.fhir_servers):
                return (
                    f"fhirServer {fhir_server!r} is not one of the FHIR servers trusted for this issuer "
                    "(fhir_servers in the trust file)"
                )
            return None
        host = parts.hostname.lower()
        literal = _address(host)
        loopback = host in _LOOPBACK_NAMES or (literal is not None and literal.is_loopback)
        if parts.scheme != "https" and not loopback:
            return f"fhirServer {fhir_server!r} must be https (http only on loopback)"
        if loopback and not self.allow_private:
            return f"fhirServer {fhir_server!r} is on a loopback address; it is not fetched from"
        if literal is not None and not self.allows(literal):
            return f"fhirServer {fhir_server!r} is on a private or reserved address; it is not fetched from"
        return None

    def allows(self, address: Address) -> bool:
        """Whether a connection to `address` may be made (checked on every new connection)."""
        if self.fhir_servers is not None:
            return True  # the trust file names the servers; they may well be internal
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.is_multicast or address.is_unspecified:
            return False
        if self.allow_private:
            return True
        return address.is_global and not (
            address.is_private or address.is_loopback or address.is_link_local or address.is_reserved
        )


def under_base(url: str, base: str) -> bool:
    """Whether `url` is `base` or below it: same scheme, host and port, and a path under base's path,
    with no dot segment, encoded slash or backslash that a server might read as leaving it."""
    try:
        target, root = httpx.URL(url), httpx.URL(base)
    except (httpx.InvalidURL, TypeError, ValueError):
        return False
    if target.userinfo or (target.scheme, target.host, target.port) != (root.scheme, root.host, root.port):
        return False
    raw = target.raw_path.split(b"?", 1)[0].lower()
    if b"\\" in raw or b"%2f" in raw or b"%5c" in raw:
        return False
    if any(segment in (".", "..") for segment in target.path.split("/")):
        return False  # percent-encoded dots, which httpx leaves alone and a server may not
    base_path = root.path.rstrip("/")
    return target.path == base_path or target.path.startswith(base_path + "/") or target.path == root.path


def _address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class _CheckedBackend(AsyncNetworkBackend):
    """Resolves, checks every address against the policy, and connects to an allowed one: the address
    checked is the address used."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self._inner = AutoBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} could not be resolved ({exc.strerror})") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = [a for a in addresses if self.policy.allows(ipaddress.ip_address(a.split("%")[0]))]
        if not allowed:
            log.warning("refused to connect to %s: it resolves to %s", host, ", ".join(addresses))
            raise DestinationRefused(f"{host} resolves to a loopback, private or reserved address")
        error: Exception | None = None
        for address in allowed:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> AsyncNetworkStream:
        raise DestinationRefused("unix sockets are never fetched from")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _ReclaimingPool(httpcore.AsyncConnectionPool):
    """httpcore's pool, reclaiming the connections that a cancelled request leaves behind.

    httpcore 1.0.9 (encode/httpcore#1093, open): a request cancelled after the pool assigned it a new
    connection, but before that connection connected, leaves the connection in the pool for ever:
    neither closed, idle nor expired, and never available. Every fetch cancelled at the prefetch deadline
    while others wait for a slot can leave one; once `max_connections` of them pile up, every later
    fetch of that issuer waits out its deadline against a healthy FHIR server. Such a connection (never
    connected, and held by no live request) is dropped here before requests are assigned."""

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        held = {id(request.connection) for request in self._requests if request.connection is not None}
        for connection in list(self._connections):
            if id(connection) not in held and _never_connected(connection):
                self._connections.remove(connection)
        return super()._assign_requests_to_connections()


def _never_connected(connection: httpcore.AsyncConnectionInterface) -> bool:
    # AsyncHTTPConnection before its first connect: no inner connection and no failure recorded.
    return (
        isinstance(connection, httpcore.AsyncHTTPConnection)
        and getattr(connection, "_connection", True) is None
        and getattr(connection, "_connect_failed", True) is False
    )


class _CheckedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: FetchPolicy, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        # httpx takes no network backend; the httpcore pool it drives does. Same settings as httpx's own.
        self._pool = _ReclaimingPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_CheckedBackend(policy),
        )


class Upstream:
    """The connection pool one issuer's fetches go through, and the policy it enforces."""

    def __init__(self, policy: FetchPolicy, max_connections: int = 16) -> None:
        self.policy = policy
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        # The per-request deadline is applied by the caller (prefetch.py); redirects are never followed.
        self.client = httpx.AsyncClient(
            transport=_CheckedTransport(policy, limits),
            timeout=httpx.Timeout(10.0),
            follow_redirects=False,
            headers={
                "Accept": "application/fhir+json, application/json",
                # Only encodings fetch.py inflates within the size cap.
                "Accept-Encoding": "gzip, deflate",
            },
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class Upstreams:
    """One Upstream per trusted issuer, and one for calls without a verified caller (auth off, the CLI),
    each made on first use."""

    def __init__(self, allow_private: bool = False, max_connections: int = 16) -> None:
        self.allow_private = allow_private
        self.max_connections = max_connections
        self._pools: dict[str, Upstream] = {}

    def for_issuer(self, issuer: TrustedIssuer | None) -> Upstream:
        key = issuer.iss if issuer is not None else ""
        upstream = self._pools.get(key)
        if upstream is None:
            policy = FetchPolicy(issuer.fhir_servers if issuer else None, self.allow_private)
            upstream = self._pools[key] = Upstream(policy, self.max_connections)
        return upstream

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for upstream in pools:
            await upstream.aclose()
