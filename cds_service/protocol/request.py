"""The hook request: decode the body once with msgspec, then check it against the spec and the service.

Prefetch values stay as raw JSON slices here; the data layer decodes them into typed records, so the
bulk of the body (often hundreds of Observations) is walked exactly once.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any
from urllib.parse import urlsplit

import msgspec

from cds_service.protocol.hooks import HOOK_CONTEXT, ContextField
from cds_service.protocol.outcome import Issue, ProblemError
from cds_service.store import limits


class _Wire(msgspec.Struct):
    hook: str
    hookInstance: str
    context: dict[str, Any]
    fhirServer: str | None = None
    fhirAuthorization: dict[str, Any] | None = None
    prefetch: dict[str, msgspec.Raw] | None = None
    extension: dict[str, Any] | None = None


_DECODER = msgspec.json.Decoder(_Wire)
# JSON nesting the service reads in context, fhirAuthorization and extension (a draft order's dose is
# about a dozen levels down). What decodes deeper would be copied and validated recursively later on, so
# it is refused here with a clear reason rather than wherever the stack runs out.
MAX_DEPTH = 100


@dataclasses.dataclass(frozen=True)
class FhirAuthorization:
    # repr=False keeps the token out of every log line, traceback and error message.
    access_token: str = dataclasses.field(repr=False)
    token_type: str
    scope: str | None = None
    subject: str | None = None
    patient: str | None = None
    expires_in: int | None = None


@dataclasses.dataclass(frozen=True)
class HookRequest:
    hook: str
    hook_instance: str
    context: dict[str, Any]
    fhir_server: str | None
    fhir_authorization: FhirAuthorization | None
    # key -> raw JSON of the prefetched value; None means the EHR sent null (no data, do not fetch).
    prefetch: dict[str, bytes | None]

    @property
    def patient_id(self) -> str | None:
        value = self.context.get("patientId")
        return value if isinstance(value, str) else None


def parse_hook_request(body: bytes, expected_hook: str) -> HookRequest:
    """Decode and validate a hook call for a service registered on `expected_hook`.

    Raises ProblemError(400) naming every problem found, not only the first.
    """
    try:
        wire = _DECODER.decode(body)
    except msgspec.ValidationError as exc:
        raise ProblemError.single(400, f"Request does not follow CDS Hooks 2.0: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ProblemError.single(400, f"Request body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise ProblemError.single(400, "Request body is not valid JSON: a string is not UTF-8") from None
    except RecursionError:
        raise ProblemError.single(400, "Request body is not usable JSON: nested too deeply") from None

    decoded = {
        "context": wire.context,
        "fhirAuthorization": wire.fhirAuthorization,
        "extension": wire.extension,
    }
    for name, value in decoded.items():
        if _deeper_than(value, MAX_DEPTH):
            raise ProblemError.single(400, f"{name} is nested more than {MAX_DEPTH} levels deep", name)

    issues: list[Issue] = []
    if wire.hook != expected_hook:
        issues.append(
            Issue(
                f"hook {_shown(wire.hook)} does not match this service, which answers '{expected_hook}'",
                expression="hook",
            )
        )
    if not _is_uuid(wire.hookInstance):
        issues.append(Issue("hookInstance must be a UUID", expression="hookInstance"))
    issues.extend(_unstorable(wire))

    fields = HOOK_CONTEXT.get(wire.hook)
    if fields is not None:
        issues.extend(_context_issues(wire.context, fields))

    auth: FhirAuthorization | None = None
    if wire.fhirAuthorization is not None:
        if not wire.fhirServer:
            issues.append(Issue("fhirAuthorization was sent without fhirServer", expression="fhirServer"))
        auth, auth_issues = _authorization(wire.fhirAuthorization)
        issues.extend(auth_issues)
    if wire.fhirServer is not None and not _is_http_url(wire.fhirServer):
        issues.append(Issue("fhirServer must be an absolute http(s) URL", expression="fhirServer"))

    if issues:
        raise ProblemError(400, issues)

    prefetch: dict[str, bytes | None] = {}
    for key, raw in (wire.prefetch or {}).items():
        data = bytes(raw)
        prefetch[key] = None if data == b"null" else data

    return HookRequest(
        hook=wire.hook,
        hook_instance=wire.hookInstance,
        context=wire.context,
        fhir_server=wire.fhirServer.rstrip("/") if wire.fhirServer else None,
        fhir_authorization=auth,
        prefetch=prefetch,
    )


def _unstorable(wire: _Wire) -> list[Issue]:
    """Values kept in the database that its columns could not hold (store/limits.py): uuid.UUID reads
    braces, a urn: prefix and any number of hyphens, so a "UUID" can be longer than its column."""
    stored = {"hookInstance": wire.hookInstance, "context.patientId": wire.context.get("patientId")}
    issues = []
    for field, value in stored.items():
        why = limits.problem(field, value) if isinstance(value, str) else None
        if why:
            issues.append(Issue(f"{field} {why}", expression=field))
    return issues


def _context_issues(context: dict[str, Any], fields: tuple[ContextField, ...]) -> list[Issue]:
    issues = []
    for spec in fields:
        value = context.get(spec.name)
        where = f"context.{spec.name}"
        if value is None:
            if spec.required:
                issues.append(Issue(f"{where} is required for this hook", expression=where))
            continue
        problem = spec.check(value)
        if problem:
            issues.append(Issue(f"{where} {problem}", expression=where))
    return issues


def _authorization(raw: dict[str, Any]) -> tuple[FhirAuthorization | None, list[Issue]]:
    token = raw.get("access_token")
    token_type = raw.get("token_type")
    issues = []
    if not isinstance(token, str) or not token:
        issues.append(
            Issue("fhirAuthorization.access_token is required", expression="fhirAuthorization.access_token")
        )
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        issues.append(
            Issue("fhirAuthorization.token_type must be 'Bearer'", expression="fhirAuthorization.token_type")
        )
    expires_in = raw.get("expires_in")
    if expires_in is not None and (not isinstance(expires_in, int) or isinstance(expires_in, bool)):
        issues.append(
            Issue(
                "fhirAuthorization.expires_in must be an integer", expression="fhirAuthorization.expires_in"
            )
        )
        expires_in = None
    if issues:
        return None, issues

    def text(name: str) -> str | None:
        value = raw.get(name)
        return value if isinstance(value, str) else None

    return (
        FhirAuthorization(
            access_token=str(token),
            token_type=str(token_type),
            scope=text("scope"),
            subject=text("subject"),
            patient=text("patient"),
            expires_in=expires_in,
        ),
        [],
    )


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests objects and arrays more than `limit` levels deep; without recursion."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _shown(value: str, limit: int = 64) -> str:
    """A client's value echoed in an error: quoted, and short even when the value is not."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)
