"""Reading what the EHR did not prefetch from its FHIR server (httpx, async, pooled per issuer).

The bearer token goes only to the EHR's own FHIR server, under its base path: a `next` link that
leaves it is not followed. Answers are read as a stream and stopped at a size cap per answer and per
call (the caller's deadline stops them too); what the server says about its failures stays in our log,
never in a card.
"""

from __future__ import annotations

import asyncio
import logging
import re
import zlib

import httpx

from cds_service.data.resources import Decoded, decode
from cds_service.data.upstream import DestinationRefused, under_base

log = logging.getLogger(__name__)

# Above this, an answer is decoded in a worker thread, so that the event loop keeps serving.
OFF_LOOP_BYTES = 256 * 1024


class FetchError(Exception):
    """The data could not be had; the message is safe to show (it never holds the token, nor what the
    FHIR server said)."""


class ByteBudget:
    """How many bytes the FHIR server may still send: per answer, and for the whole call."""

    def __init__(self, per_answer: int, per_call: int) -> None:
        self.per_answer = per_answer
        self.per_call = per_call
        self.left = per_call

    def take(self, size: int, where: str) -> None:
        self.left -= size
        if self.left < 0:
            raise FetchError(
                f"{where}: the FHIR server's answers to this call passed {self.per_call} bytes; reading stopped"
            )


async def fetch_query(
    client: httpx.AsyncClient,
    base: str,
    query: str,
    token: str | None,
    max_pages: int,
    where: str,
    budget: ByteBudget | None = None,
) -> Decoded:
    """GET {base}/{query}, following Bundle `next` links under `base` for up to max_pages pages."""
    budget = budget or ByteBudget(8 * 1024 * 1024, 32 * 1024 * 1024)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    first = f"{base.rstrip('/')}/{query}"
    if not under_base(first, base):
        # A context value can carry '..' into a read's path (Patient/{{context.patientId}}).
        raise FetchError(f"{where}: the query leaves the FHIR server's base URL; it was not sent")
    url: str | None = first
    resources = []
    problems: list[str] = []
    read: set[str] = set()
    while url is not None:
        if len(read) == max_pages:
            problems.append(
                f"{where}: more than {max_pages} pages of results; only the first {max_pages} were read"
            )
            break
        page = await _get(client, url, headers, where, budget)
        read.add(url)
        resources.extend(page.resources)
        problems.extend(page.problems)
        url = page.next_url
        if url is not None and not _usable(url):
            raise FetchError(f"{where}: the URL to fetch is not a usable URL")
        if url is not None and not under_base(url, base):
            problems.append(f"{where}: a next link left the FHIR server and was not followed")
            break
        if url in read:
            # Read again, the same page would count every result once more, up to the page cap.
            problems.append(f"{where}: a next link pointed back to a page already read; paging stopped")
            break
    return Decoded(resources=resources, problems=problems)


async def _get(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None, where: str, budget: ByteBudget
) -> Decoded:
    try:
        async with client.stream("GET", url, headers=headers) as response:
            _check_status(response, where)
            content = await _read_capped(response, where, budget)
    except httpx.InvalidURL:
        # A next link (or an EHR's fhirServer) that is no usable URL: never a 500.
        raise FetchError(f"{where}: the URL to fetch is not a usable URL") from None
    except httpx.ConnectError as exc:
        if isinstance(exc.__cause__, DestinationRefused):
            raise FetchError(
                f"{where}: the FHIR server's address is loopback, private or reserved; it is not fetched "
                "from (see fhir_servers in docs/security.md)"
            ) from None
        log.info("%s: could not connect: %s", where, exc)
        raise FetchError(f"{where}: the FHIR server could not be reached") from None
    except (FetchError, asyncio.CancelledError):
        raise
    except Exception as exc:  # noqa: BLE001 - httpx errors, and what they let through (a port > 65535)
        log.info("%s: fetch failed: %s: %s", where, type(exc).__name__, exc)
        raise FetchError(f"{where}: the FHIR server could not be reached") from None
    try:
        if len(content) > OFF_LOOP_BYTES:
            return await asyncio.to_thread(decode, content, where, False)
        return decode(content, where, detail=False)
    except ValueError:
        raise FetchError(
            f"{where}: the FHIR server's answer could not be read: it is no FHIR resource or Bundle"
        ) from None


def _usable(url: str) -> bool:
    try:
        httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return False
    return True


def _check_status(response: httpx.Response, where: str) -> None:
    status = response.status_code
    if status == 200:
        return
    # The body is not read: what the server says about its failure is for its own logs, not our cards.
    log.info("%s: the FHIR server answered HTTP %d", where, status)
    if status in (401, 403):
        raise FetchError(f"{where}: the FHIR server refused access (HTTP {status})")
    if status == 404:
        raise FetchError(f"{where}: not found on the FHIR server (HTTP 404)")
    raise FetchError(f"{where}: the FHIR server answered HTTP {status}")


async def _read_capped(response: httpx.Response, where: str, budget: ByteBudget) -> bytes:
    cap = budget.per_answer
    too_large = FetchError(f"{where}: the FHIR server's answer is larger than {cap} bytes; reading stopped")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise too_large
    if response.is_stream_consumed:
        # A transport that read the whole body already (httpx's MockTransport, in tests).
        if len(response.content) > cap:
            raise too_large
        budget.take(len(response.content), where)
        return response.content
    inflater = _inflater(response.headers.get("content-encoding", ""), where)
    parts = []
    size = 0
    async for raw in response.aiter_raw():
        if inflater is not None:
            # Never more than the cap from one compressed chunk: a small chunk can inflate a thousandfold.
            data = inflater.decompress(raw, cap - size + 1)
            if inflater.unconsumed_tail:
                raise too_large
        else:
            data = raw
        size += len(data)
        if size > cap:
            raise too_large
        budget.take(len(data), where)
        parts.append(data)
    return b"".join(parts)


_ENCODING = re.compile(r"^\s*(identity)?\s*$", re.IGNORECASE)


def _inflater(encoding: str, where: str) -> zlib._Decompress | None:
    name = encoding.strip().lower()
    if _ENCODING.match(name):
        return None
    if name in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    raise FetchError(f"{where}: the FHIR server's answer has an encoding that was not asked for")
