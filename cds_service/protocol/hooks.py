"""What each supported hook puts in `context` (CDS Hooks 2.0.1 hook definitions)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# FHIR ids are [A-Za-z0-9-.]{1,64}; a little slack (underscore, length) for EHRs that stretch it.
_ID = re.compile(r"^[A-Za-z0-9\-._]{1,128}$")
_USER = re.compile(r"^(Practitioner|PractitionerRole|Patient|RelatedPerson)/[A-Za-z0-9\-._]{1,128}$")
_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-._]{1,128}$")


def _fhir_id(value: Any) -> str | None:
    if not isinstance(value, str) or not _ID.match(value):
        return "must be a FHIR id (letters, digits, '-', '.')"
    return None


def _user(value: Any) -> str | None:
    if not isinstance(value, str) or not _USER.match(value):
        return "must be a reference such as 'Practitioner/123'"
    return None


def _bundle(value: Any) -> str | None:
    # Real clients omit Bundle.type; only the shape we read is required.
    if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
        return "must be a FHIR Bundle"
    entries = value.get("entry", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return "entry must be a list of objects"
    return None


def _references(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return "must be a non-empty list of references such as 'MedicationRequest/123'"
    if not all(isinstance(v, str) and _REFERENCE.match(v) for v in value):
        return "must hold references such as 'MedicationRequest/123'"
    return None


@dataclass(frozen=True)
class ContextField:
    name: str
    required: bool
    check: Callable[[Any], str | None]
    # May appear as {{context.<name>}} in a prefetch template.
    token: bool


HOOK_CONTEXT: dict[str, tuple[ContextField, ...]] = {
    "patient-view": (
        ContextField("userId", True, _user, True),
        ContextField("patientId", True, _fhir_id, True),
        ContextField("encounterId", False, _fhir_id, True),
    ),
    "order-select": (
        ContextField("userId", True, _user, True),
        ContextField("patientId", True, _fhir_id, True),
        ContextField("encounterId", False, _fhir_id, True),
        ContextField("selections", True, _references, False),
        ContextField("draftOrders", True, _bundle, False),
    ),
    "order-sign": (
        ContextField("userId", True, _user, True),
        ContextField("patientId", True, _fhir_id, True),
        ContextField("encounterId", False, _fhir_id, True),
        ContextField("draftOrders", True, _bundle, False),
    ),
}


def prefetch_tokens(hook: str) -> frozenset[str]:
    """Every token a prefetch template for `hook` may use."""
    tokens = {f"context.{f.name}" for f in HOOK_CONTEXT.get(hook, ()) if f.token}
    tokens |= {"userPractitionerId", "userPractitionerRoleId", "userPatientId", "userRelatedPersonId"}
    return frozenset(tokens)
