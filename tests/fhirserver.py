"""A small FHIR R4 server over the synthetic fixture Bundles, served over real HTTP for tests.

It implements only the reads and searches the CDS service issues, but with the behaviour of a real
server where clients tend to get it wrong: paging with absolute ``next`` links, prefixed date
searches against timezone-aware instants, and token searches with or without a system. Knob
attributes (``required_token``, ``delay_seconds``, ``fail_status``, ``include_outcome``,
``garbage``, ``raw_body``, ``stall_body``, ``padded_body``, ``wrong_type``, ``next_link``) let a test
make the server misbehave at runtime; ``requests`` records what was sent.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.threaded import ThreadedServer

Resource = dict[str, Any]
Predicate = Callable[[Resource], bool]

BASE_PATH = "/fhir"
FHIR_JSON = "application/fhir+json"
DEFAULT_FIXTURE_DIR = Path(__file__).resolve().parent.parent / "fhir_fixtures" / "patients"
DEFAULT_PAGE_SIZE = 50
DELAY_POLL_SECONDS = 0.05

# The element each resource type's `date` search parameter (and `_sort=date`) reads, first present wins.
DATE_ELEMENTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Observation": (("effectiveDateTime",), ("effectivePeriod", "start"), ("issued",)),
    "MedicationRequest": (("authoredOn",),),
    "Condition": (("recordedDate",), ("onsetDateTime",)),
    "Procedure": (("performedDateTime",), ("performedPeriod", "start")),
    "Encounter": (("period", "start"),),
}
# Besides `code`, MedicationRequest carries its coded drug here; token searches look in both.
CODE_ELEMENTS: dict[str, tuple[str, ...]] = {"MedicationRequest": ("code", "medicationCodeableConcept")}
DATE_PREFIXES = frozenset({"eq", "ge", "gt", "le", "lt"})


class LoggedRequest(NamedTuple):
    method: str
    path: str
    query: str
    authorization: str | None


class SearchError(ValueError):
    """A search parameter the server cannot interpret; answered with 400 like a real server."""


class ResourceStore:
    """Resources indexed by type and id, in fixture file order."""

    def __init__(self, resources: Iterable[Resource]) -> None:
        self._by_type: dict[str, dict[str, Resource]] = {}
        for resource in resources:
            by_id = self._by_type.setdefault(resource["resourceType"], {})
            if resource["id"] in by_id:
                raise ValueError(f"duplicate fixture resource {resource['resourceType']}/{resource['id']}")
            by_id[resource["id"]] = resource

    @classmethod
    def from_directory(cls, directory: Path) -> ResourceStore:
        return cls(_bundle_resources(directory))

    def read(self, resource_type: str, resource_id: str) -> Resource | None:
        return self._by_type.get(resource_type, {}).get(resource_id)

    def of_type(self, resource_type: str) -> list[Resource]:
        return list(self._by_type.get(resource_type, {}).values())


def _bundle_resources(directory: Path) -> Iterator[Resource]:
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"no fixture bundles in {directory}")
    for path in paths:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        for entry in bundle.get("entry", []):
            yield entry["resource"]


@dataclass(frozen=True)
class _Span:
    """The inclusive range of instants a FHIR date or dateTime of some precision stands for."""

    start: datetime
    end: datetime


def _parse_fhir_date(text: str) -> _Span:
    if "T" in text:
        instant = datetime.fromisoformat(text)
        # FHIR requires a zone on times; a zoneless one is read as UTC rather than local server time.
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=UTC)
        return _Span(instant, instant)
    parts = [int(part) for part in text.split("-")]
    year = parts[0]
    match len(parts):
        case 1:
            start, after = datetime(year, 1, 1), datetime(year + 1, 1, 1)
        case 2:
            month = parts[1]
            start, after = datetime(year, month, 1), datetime(year + month // 12, month % 12 + 1, 1)
        case 3:
            start = datetime(year, parts[1], parts[2])
            after = start + timedelta(days=1)
        case _:
            raise ValueError(f"not a FHIR date: {text}")
    return _Span(start.replace(tzinfo=UTC), (after - timedelta(microseconds=1)).replace(tzinfo=UTC))


def _element(resource: Resource, path: tuple[str, ...]) -> Any:
    value: Any = resource
    for name in path:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def resource_date(resource: Resource) -> datetime | None:
    """The instant the `date` search parameter compares for this resource, if it has one."""
    for path in DATE_ELEMENTS.get(resource["resourceType"], ()):
        value = _element(resource, path)
        if isinstance(value, str):
            return _parse_fhir_date(value).start
    return None


def _patient_predicate(value: str) -> Predicate:
    reference = value if value.startswith("Patient/") else f"Patient/{value}"

    def matches(resource: Resource) -> bool:
        return reference in (
            _element(resource, ("subject", "reference")),
            _element(resource, ("patient", "reference")),
        )

    return matches


def _token_matches_coding(token: str, coding: dict[str, Any]) -> bool:
    if "|" not in token:
        return coding.get("code") == token
    system, code = token.split("|", 1)
    # `|code` means "coded without a system"; `system|` means "any code from that system".
    system_matches = coding.get("system") == system if system else "system" not in coding
    return system_matches and (not code or coding.get("code") == code)


def _code_predicate(resource_type: str, value: str) -> Predicate:
    tokens = [token for token in value.split(",") if token]
    elements = CODE_ELEMENTS.get(resource_type, ("code",))

    def matches(resource: Resource) -> bool:
        codings = [
            coding for element in elements for coding in (_element(resource, (element, "coding")) or [])
        ]
        return any(_token_matches_coding(token, coding) for token in tokens for coding in codings)

    return matches


def _date_predicate(value: str) -> Predicate:
    prefix, text = (value[:2], value[2:]) if value[:2].isalpha() else ("eq", value)
    if prefix not in DATE_PREFIXES:
        raise SearchError(f"unsupported date prefix '{prefix}'")
    try:
        span = _parse_fhir_date(text)
    except ValueError as error:
        raise SearchError(f"invalid date '{text}'") from error

    def matches(resource: Resource) -> bool:
        instant = resource_date(resource)
        if instant is None:
            return False
        match prefix:
            case "ge":
                return instant >= span.start
            case "gt":
                return instant > span.end
            case "le":
                return instant <= span.end
            case "lt":
                return instant < span.start
            case _:
                return span.start <= instant <= span.end

    return matches


def _in_set_predicate(field: str, value: str) -> Predicate:
    allowed = set(value.split(","))
    return lambda resource: resource.get(field) in allowed


def _predicates(resource_type: str, params: list[tuple[str, str]]) -> list[Predicate]:
    predicates: list[Predicate] = []
    for name, value in params:
        match name:
            case "patient" | "subject":
                predicates.append(_patient_predicate(value))
            case "_id":
                predicates.append(_in_set_predicate("id", value))
            case "code":
                predicates.append(_code_predicate(resource_type, value))
            case "date":
                predicates.append(_date_predicate(value))
            case "status":
                predicates.append(_in_set_predicate("status", value))
    return predicates


def _sorted(resources: list[Resource], sort: str | None) -> list[Resource]:
    key = (sort or "").split(",")[0]
    if key not in ("date", "-date"):
        return resources
    dated = [(instant, r) for r in resources if (instant := resource_date(r)) is not None]
    undated = [r for r in resources if resource_date(r) is None]
    dated.sort(key=lambda pair: pair[0], reverse=key == "-date")
    # Undated resources trail in both directions, as HAPI does with missing sort values.
    return [r for _, r in dated] + undated


def _non_negative_int(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise SearchError(f"{name} must be a non-negative integer, got '{raw}'")
    return int(raw)


def operation_outcome(severity: str, code: str, diagnostics: str) -> Resource:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def _fhir_response(body: Resource, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status_code, headers=headers, media_type=FHIR_JSON)


def _error_response(
    status_code: int, code: str, diagnostics: str, headers: dict[str, str] | None = None
) -> Response:
    return _fhir_response(operation_outcome("error", code, diagnostics), status_code, headers)


def _server_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + BASE_PATH


def _page_url(request: Request, offset: int) -> str:
    query = [(name, value) for name, value in request.query_params.multi_items() if name != "_offset"]
    return str(request.url.replace(query=urlencode(query + [("_offset", str(offset))])))


class FhirApp:
    """The ASGI application: fixture resources behind `/fhir`, plus the misbehaviour knobs.

    Knobs are plain attributes read once per request, so a test may flip them while the server runs.
    Order of effect per request: log, delay, `fail_status`, token check, `garbage`, `raw_body`,
    `stall_body`, real answer (with `wrong_type` and `next_link` applied).
    """

    def __init__(self, fixture_dir: Path = DEFAULT_FIXTURE_DIR) -> None:
        self.store = ResourceStore.from_directory(fixture_dir)
        self.requests: list[LoggedRequest] = []
        self._stopping = threading.Event()
        self.reset()
        self._app = Starlette(
            routes=[
                Route(BASE_PATH + "/{resource_type}", self._search, methods=["GET"]),
                Route(BASE_PATH + "/{resource_type}/{resource_id}", self._read, methods=["GET"]),
            ],
            exception_handlers={HTTPException: self._http_error},
        )

    def reset(self) -> None:
        """Restore well-behaved defaults and forget logged requests."""
        self.required_token: str | None = None
        self.delay_seconds: float = 0.0
        self.fail_status: int | None = None
        self.include_outcome: bool = False
        self.garbage: bool = False
        # Answered with 200 instead of the real answer: HTML from a proxy, truncated JSON, random bytes.
        self.raw_body: bytes | None = None
        self.raw_content_type: str = FHIR_JSON
        # Send the headers and the start of a Bundle, then nothing more until this is reset or the
        # server stops: a server that hangs mid-answer.
        self.stall_body: bool = False
        # Answer a Bundle padded to this many bytes, streamed without a Content-Length; -1: never ending
        # (until this is reset or the server stops).
        self.padded_body: int | None = None
        # A read answers a resource of this type instead, a search a Bundle holding one of this type.
        self.wrong_type: str | None = None
        # The `next` link of every search page: "self" (the same page again, forever) or this URL.
        self.next_link: str | None = None
        self.requests.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        override = await self._misbehaviour(Request(scope))
        if override is None:
            await self._app(scope, receive, send)
        else:
            await override(scope, receive, send)

    async def _misbehaviour(self, request: Request) -> Response | None:
        authorization = request.headers.get("authorization")
        self.requests.append(
            LoggedRequest(request.method, request.url.path, request.url.query, authorization)
        )
        await self._delay(self.delay_seconds)
        fail_status = self.fail_status
        if fail_status is not None:
            return _error_response(fail_status, "transient", f"simulated failure {fail_status}")
        token = self.required_token
        if token is not None and authorization != f"Bearer {token}":
            return _error_response(
                401, "login", "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"}
            )
        if self.garbage:
            return Response(b"not json{", media_type=FHIR_JSON)
        if self.raw_body is not None:
            return Response(self.raw_body, media_type=self.raw_content_type)
        if self.stall_body:
            return StreamingResponse(self._stalled_body(), media_type=FHIR_JSON)
        if self.padded_body is not None:
            return StreamingResponse(self._padded(self.padded_body), media_type=FHIR_JSON)
        return None

    async def _padded(self, size: int) -> AsyncIterator[bytes]:
        head, tail = b'{"resourceType": "Bundle", "type": "searchset", "padding": "', b'"}'
        yield head
        piece = b"x" * 65536
        left = size - len(head) - len(tail)
        while (size < 0 or left > 0) and self.padded_body is not None and not self._stopping.is_set():
            chunk = piece if size < 0 else piece[: max(0, min(left, len(piece)))]
            left -= len(chunk)
            yield chunk
            await asyncio.sleep(0)  # let a reset, or the server's shutdown, be seen
        yield tail

    async def _stalled_body(self) -> AsyncIterator[bytes]:
        yield b'{"resourceType": "Bundle", "type": "searchset", "entry": ['
        while self.stall_body and not self._stopping.is_set():
            await asyncio.sleep(DELAY_POLL_SECONDS)
        yield b"]}"

    async def _delay(self, seconds: float) -> None:
        # Cut short on shutdown: a client that timed out on a long delay must not stall or
        # noisily cancel the server's graceful exit.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self._stopping.is_set() and (remaining := deadline - loop.time()) > 0:
            await asyncio.sleep(min(remaining, DELAY_POLL_SECONDS))

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = "not-found" if exc.status_code == 404 else "not-supported"
        return _error_response(exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}")

    async def _read(self, request: Request) -> Response:
        resource_type = request.path_params["resource_type"]
        resource_id = request.path_params["resource_id"]
        if self.wrong_type is not None:
            return _fhir_response({"resourceType": self.wrong_type, "id": resource_id})
        resource = self.store.read(resource_type, resource_id)
        if resource is None:
            return _error_response(404, "not-found", f"{resource_type}/{resource_id} is not known")
        return _fhir_response(resource)

    async def _search(self, request: Request) -> Response:
        resource_type = request.path_params["resource_type"]
        params = request.query_params
        try:
            predicates = _predicates(resource_type, params.multi_items())
            count = _non_negative_int(params, "_count", DEFAULT_PAGE_SIZE)
            offset = _non_negative_int(params, "_offset", 0)
        except SearchError as error:
            return _error_response(400, "invalid", str(error))
        matches = [r for r in self.store.of_type(resource_type) if all(p(r) for p in predicates)]
        matches = _sorted(matches, params.get("_sort"))
        page = matches[offset : offset + count]
        links = [{"relation": "self", "url": str(request.url)}]
        # With _count=0 the client asked only for the total; a next link would never advance.
        if self.next_link is not None:
            links.append(
                {"relation": "next", "url": str(request.url) if self.next_link == "self" else self.next_link}
            )
        elif count > 0 and offset + count < len(matches):
            links.append({"relation": "next", "url": _page_url(request, offset + count)})
        base = _server_base(request)
        entries: list[Resource] = [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in page
        ]
        if self.wrong_type is not None:
            wrong = {"resourceType": self.wrong_type, "id": "wrong-type-1"}
            entries = [{"fullUrl": f"{base}/{self.wrong_type}/wrong-type-1", "resource": wrong}]
        if self.include_outcome:
            # First, not last: clients must not assume every entry is a match.
            outcome = operation_outcome("warning", "incomplete", "search truncated")
            entries.insert(0, {"resource": outcome, "search": {"mode": "outcome"}})
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "link": links,
            "entry": entries,
        }
        return _fhir_response(bundle)


class FhirTestServer(FhirApp):
    """`FhirApp` served by uvicorn on 127.0.0.1 and a free port, in a background thread.

    Use as a context manager; `base_url` (e.g. ``http://127.0.0.1:54321/fhir``) is valid inside it.
    """

    def __init__(self, fixture_dir: Path = DEFAULT_FIXTURE_DIR) -> None:
        super().__init__(fixture_dir)
        self._server = ThreadedServer(
            self,
            "fhir-test-server",
            loop="asyncio",
            http="h11",
            lifespan="off",
            # Bounds shutdown when a test left a delayed request in flight.
            timeout_graceful_shutdown=2,
        )

    @property
    def base_url(self) -> str:
        if self._server.port is None:
            raise RuntimeError("FhirTestServer is not running")
        return f"http://127.0.0.1:{self._server.port}{BASE_PATH}"

    def start(self) -> None:
        self._stopping.clear()
        self._server.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
