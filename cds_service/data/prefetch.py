"""Prefetch semantics of CDS Hooks 2.0: a key present is used, null means no data, absent means fetch."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from cds_service.data.fetch import ByteBudget, FetchError, fetch_query
from cds_service.data.resources import Decoded, Resource, decode
from cds_service.data.upstream import Upstream
from cds_service.protocol.discovery import ServiceDefinition
from cds_service.protocol.request import HookRequest
from cds_service.protocol.templates import fill_template

_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class DataProblem:
    message: str
    expression: str | None = None  # where in the call, e.g. "prefetch.labs"
    code: str | None = None  # a FHIR issue-type code when the status's own does not say it


class DataError(Exception):
    """The call's data cannot be used; the face answers the caller (pipeline.py: 400 or 412)."""

    def __init__(self, problems: list[DataProblem]) -> None:
        super().__init__("; ".join(problem.message for problem in problems))
        self.problems = problems


class UnreadableData(DataError):
    """A prefetch value that is not FHIR, or a fhirServer the policy does not allow: the caller's to fix."""


class RequiredDataUnavailable(DataError):
    """Data a service requires could not be had (not prefetched, and the fetch failed or was impossible)."""


@dataclasses.dataclass(frozen=True)
class FetchSettings:
    deadline_seconds: float
    max_pages: int
    without_token: bool
    # What one answer, and all the answers to one call, may hold; reading stops there.
    max_answer_bytes: int = 8 * 1024 * 1024
    max_call_bytes: int = 32 * 1024 * 1024


@dataclasses.dataclass
class PatientData:
    # prefetch key -> resources of the template's type (OperationOutcomes removed)
    values: dict[str, list[Resource]]
    # problems with data that was had: server-reported issues, unreadable entries, truncated paging
    problems: list[str]
    # optional prefetch keys whose data could not be had -> why
    unavailable: dict[str, str]
    # keys that were fetched from the FHIR server (for the audit and for tests)
    fetched: list[str]


async def _inline(function: Callable[..., _T], *args: Any) -> _T:
    return function(*args)


async def gather_data(
    service: ServiceDefinition,
    request: HookRequest,
    upstream: Upstream,
    settings: FetchSettings,
    compute: Callable[..., Awaitable[Any]] = _inline,
) -> PatientData:
    """Resolve every prefetch key of `service`, fetching through `upstream` (the caller's pool and
    policy). Raises UnreadableData for unreadable prefetch values and a fhirServer the policy does
    not allow, and RequiredDataUnavailable when required data cannot be had.

    `compute(function, *args)` runs the decoding of what the EHR sent (megabytes of it, at the body
    limit): the pipeline passes its compute thread, so the event loop only waits on the network."""
    data, to_fetch = await compute(_read_prefetch, service, request, settings)
    # Refuse before fetching anything when required data is already known to be out of reach.
    _refuse_if_required_missing(service, data)
    if to_fetch:
        assert request.fhir_server is not None
        refusal = upstream.policy.refusal(request.fhir_server)
        if refusal:
            # Only when something must be fetched: a fhirServer that is never contacted harms no one.
            raise UnreadableData([DataProblem(refusal, expression="fhirServer", code="security")])
        await _fetch_all(data, to_fetch, request, upstream, settings, service)
        _refuse_if_required_missing(service, data)
    return data


def _read_prefetch(
    service: ServiceDefinition, request: HookRequest, settings: FetchSettings
) -> tuple[PatientData, dict[str, str]]:
    """The prefetch the EHR sent, decoded, and the query of each key that must be fetched instead."""
    data = PatientData(values={}, problems=[], unavailable={}, fetched=[])
    to_fetch: dict[str, str] = {}
    bad: list[DataProblem] = []
    carried = _carried_types(service)
    for key, item in service.prefetch.items():
        expected = _expected_type(item.query)
        if key in request.prefetch:
            raw = request.prefetch[key]
            if raw is None:
                data.values[key] = []
                continue
            try:
                decoded = decode(raw, f"prefetch.{key}")
            except ValueError as exc:
                bad.append(DataProblem(str(exc), expression=f"prefetch.{key}"))
                continue
            _keep(data, key, decoded, expected, carried)
            continue
        query = fill_template(item.query, request.context)
        reason = _why_not_fetchable(request, settings)
        if query is None:
            data.unavailable[key] = reason or "a context value its query needs is missing"
        elif reason:
            data.unavailable[key] = reason
        else:
            to_fetch[key] = query
    if bad:
        raise UnreadableData(bad)
    return data, to_fetch


def _refuse_if_required_missing(service: ServiceDefinition, data: PatientData) -> None:
    missing = [
        DataProblem(
            f"prefetch.{key} ({service.prefetch[key].query}) could not be obtained: {why}", code="incomplete"
        )
        for key, why in data.unavailable.items()
        if service.prefetch[key].required
    ]
    if missing:
        raise RequiredDataUnavailable(missing)


def _why_not_fetchable(request: HookRequest, settings: FetchSettings) -> str | None:
    if not request.fhir_server:
        return "it was not prefetched and no fhirServer was given"
    if request.fhir_authorization is None and not settings.without_token:
        return "it was not prefetched and no fhirAuthorization was given"
    return None


async def _fetch_all(
    data: PatientData,
    queries: dict[str, str],
    request: HookRequest,
    upstream: Upstream,
    settings: FetchSettings,
    service: ServiceDefinition,
) -> None:
    assert request.fhir_server is not None
    token = request.fhir_authorization.access_token if request.fhir_authorization else None
    budget = ByteBudget(settings.max_answer_bytes, settings.max_call_bytes)
    tasks = {
        key: asyncio.ensure_future(
            fetch_query(
                upstream.client,
                request.fhir_server,
                query,
                token,
                settings.max_pages,
                f"prefetch.{key}",
                budget,
            )
        )
        for key, query in queries.items()
    }
    _, pending = await asyncio.wait(tasks.values(), timeout=settings.deadline_seconds)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    for key, task in tasks.items():
        data.fetched.append(key)
        if task in pending:
            data.unavailable[key] = (
                f"the FHIR server did not answer within the {settings.deadline_seconds:g} s deadline"
            )
            continue
        error = task.exception()
        if isinstance(error, FetchError):
            data.unavailable[key] = str(error).removeprefix(f"prefetch.{key}: ")
        elif error is not None:
            raise error
        else:
            decoded, expected = task.result(), _expected_type(service.prefetch[key].query)
            wrong = sorted({r.resourceType for r in decoded.resources if r.resourceType != expected})
            if wrong and all(r.resourceType != expected for r in decoded.resources):
                # Nothing of the type asked for, only others: the answer is not an answer to the query,
                # so the data could not be had (412 when required), as with an unreadable answer.
                data.problems.extend(decoded.problems)
                data.unavailable[key] = (
                    f"the FHIR server answered with a {' and a '.join(wrong)} where {expected} was asked for"
                )
            else:
                _keep(data, key, decoded, expected, _carried_types(service))


def _keep(
    data: PatientData, key: str, decoded: Decoded, expected: str, carried: frozenset[str] = frozenset()
) -> None:
    """Keep the resources of the key's type, and those of a type another key of the service asks for.

    EHRs do not always sort what they send by key: a Procedure sent with the Conditions is still a
    Procedure of this patient, and the facts are read by resource type, so it is used as if it had come
    under its own key. A type no search key asks for (a Patient among the Conditions) is reported and
    dropped.
    """
    kept = []
    for resource in decoded.resources:
        if resource.resourceType == expected or resource.resourceType in carried:
            kept.append(resource)
        else:
            data.problems.append(
                f"prefetch.{key}: a {resource.resourceType} was sent where {expected} was asked for"
            )
    data.values[key] = kept
    data.problems.extend(decoded.problems)


def _carried_types(service: ServiceDefinition) -> frozenset[str]:
    """The resource types the service's prefetch searches ask for. A read (Patient/{{context.patientId}})
    names one resource: one of its type sent under another key is not taken for it."""
    return frozenset(_expected_type(item.query) for item in service.prefetch.values() if "?" in item.query)


def _expected_type(query: str) -> str:
    return query.partition("?")[0].partition("/")[0]
