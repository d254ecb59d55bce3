"""Reading what the EHR did not prefetch from its FHIR server (httpx, async, pooled).

The bearer token goes only to the EHR's own FHIR server: a `next` link that leaves it is not followed.
"""

from __future__ import annotations

import httpx

from cds_service.data.resources import Decoded, Resource, decode


class FetchError(Exception):
    """The data could not be had; the message is safe to show (it never holds the token)."""


def new_client(max_connections: int = 32) -> httpx.AsyncClient:
    # Pooled for the life of the process; the per-request deadline is applied by the caller.
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        timeout=httpx.Timeout(10.0),
        follow_redirects=False,
        headers={"Accept": "application/fhir+json, application/json"},
    )


async def fetch_query(
    client: httpx.AsyncClient, base: str, query: str, token: str | None, max_pages: int, where: str
) -> Decoded:
    """GET {base}/{query}, following Bundle `next` links on the same server for up to max_pages pages."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    url: str | None = f"{base}/{query}"
    resources: list[Resource] = []
    problems: list[str] = []
    read: set[str] = set()
    while url is not None:
        if len(read) == max_pages:
            problems.append(
                f"{where}: more than {max_pages} pages of results; only the first {max_pages} were read"
            )
            break
        page = await _get(client, url, headers, where)
        read.add(url)
        resources.extend(page.resources)
        problems.extend(page.problems)
        url = page.next_url
        if url is not None and not _same_server(url, base):
            problems.append(f"{where}: a next link left the FHIR server and was not followed")
            break
        if url in read:
            # Read again, the same page would count every result once more, up to the page cap.
            problems.append(f"{where}: a next link pointed back to a page already read; paging stopped")
            break
    return Decoded(resources=resources, problems=problems)


async def _get(client: httpx.AsyncClient, url: str, headers: dict[str, str] | None, where: str) -> Decoded:
    try:
        response = await client.get(url, headers=headers)
    except httpx.InvalidURL:
        # A next link (or an EHR's fhirServer) that is no usable URL: never a 500.
        raise FetchError(f"{where}: the URL to fetch is not a usable URL") from None
    except Exception as exc:  # noqa: BLE001 - httpx errors, and what they let through (a port > 65535)
        raise FetchError(f"{where}: the FHIR server could not be reached ({type(exc).__name__})") from None
    if response.status_code in (401, 403):
        raise FetchError(f"{where}: the FHIR server refused access (HTTP {response.status_code})")
    if response.status_code == 404:
        raise FetchError(f"{where}: not found on the FHIR server (HTTP 404)")
    if response.status_code != 200:
        raise FetchError(f"{where}: the FHIR server answered HTTP {response.status_code}")
    try:
        return decode(response.content, where)
    except ValueError as exc:
        raise FetchError(f"{where}: the FHIR server's answer could not be read ({exc})") from None


def _same_server(url: str, base: str) -> bool:
    return url == base or url.startswith((base + "/", base + "?"))
