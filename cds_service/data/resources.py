"""Typed, lenient views of the FHIR R4 resources we read, decoded with msgspec.

One `Resource` struct covers every type we read (Observation, Patient, MedicationRequest, Condition,
Procedure, Specimen, Medication, OperationOutcome): msgspec skips unknown fields without building them,
which keeps a 200-Observation prefetch to a few thousand small objects instead of a pydantic tree.
Full FHIR validation (fhir.resources) is kept for the resources we emit.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec

log = logging.getLogger(__name__)


class Coding(msgspec.Struct, frozen=True):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class CodeableConcept(msgspec.Struct, frozen=True):
    coding: list[Coding] | None = None
    text: str | None = None


class Quantity(msgspec.Struct, frozen=True):
    value: float | None = None
    comparator: str | None = None
    unit: str | None = None
    system: str | None = None
    code: str | None = None


class Reference(msgspec.Struct, frozen=True):
    reference: str | None = None
    display: str | None = None


class Period(msgspec.Struct, frozen=True):
    start: str | None = None
    end: str | None = None


class ReferenceRange(msgspec.Struct, frozen=True):
    low: Quantity | None = None
    high: Quantity | None = None
    text: str | None = None


class Component(msgspec.Struct, frozen=True):
    code: CodeableConcept | None = None
    valueQuantity: Quantity | None = None


class OutcomeIssue(msgspec.Struct, frozen=True):
    severity: str | None = None
    code: str | None = None
    diagnostics: str | None = None
    details: CodeableConcept | None = None


class Resource(msgspec.Struct, frozen=True):
    resourceType: str
    id: str | None = None
    status: str | None = None
    code: CodeableConcept | None = None
    category: list[CodeableConcept] | None = None
    subject: Reference | None = None
    patient: Reference | None = None
    # Observation
    effectiveDateTime: str | None = None
    effectivePeriod: Period | None = None
    issued: str | None = None
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueString: str | None = None
    interpretation: list[CodeableConcept] | None = None
    referenceRange: list[ReferenceRange] | None = None
    specimen: Reference | None = None
    component: list[Component] | None = None
    # Patient
    gender: str | None = None
    birthDate: str | None = None
    # MedicationRequest and Medication
    intent: str | None = None
    authoredOn: str | None = None
    medicationCodeableConcept: CodeableConcept | None = None
    medicationReference: Reference | None = None
    dosageInstruction: list[dict[str, Any]] | None = None
    ingredient: list[dict[str, Any]] | None = None
    # A verified infusion order names its bag as a contained Medication (order-representation.md, Shape B).
    contained: list[dict[str, Any]] | None = None
    # Condition, Procedure
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    onsetDateTime: str | None = None
    recordedDate: str | None = None
    performedDateTime: str | None = None
    performedPeriod: Period | None = None
    # Specimen
    type: CodeableConcept | None = None
    # OperationOutcome
    issue: list[OutcomeIssue] | None = None


class BundleLink(msgspec.Struct, frozen=True):
    relation: str | None = None
    url: str | None = None


class _EntrySearch(msgspec.Struct, frozen=True):
    mode: str | None = None


class _Entry(msgspec.Struct, frozen=True):
    resource: Resource | None = None
    search: _EntrySearch | None = None


class _Bundle(msgspec.Struct, frozen=True):
    resourceType: str
    entry: list[_Entry] | None = None
    link: list[BundleLink] | None = None


class _RawBundle(msgspec.Struct, frozen=True):
    resourceType: str
    entry: list[msgspec.Raw] | None = None
    link: list[BundleLink] | None = None


class _Kind(msgspec.Struct, frozen=True):
    resourceType: str | None = None


_RESOURCE = msgspec.json.Decoder(Resource)
_BUNDLE = msgspec.json.Decoder(_Bundle)
_RAW_BUNDLE = msgspec.json.Decoder(_RawBundle)
_ENTRY = msgspec.json.Decoder(_Entry)
_KIND = msgspec.json.Decoder(_Kind)


class Decoded(msgspec.Struct):
    """What one prefetch value or fetched page held."""

    resources: list[Resource]
    # Human-readable problems with the data itself (OperationOutcome entries, undecodable entries).
    problems: list[str]
    next_url: str | None = None


def decode(data: bytes, where: str, detail: bool = True) -> Decoded:
    """Decode a resource or a Bundle. A bad entry is reported and skipped; it never spoils the rest.

    Without `detail` (an answer fetched from a FHIR server), problems do not quote what the server
    sent: its OperationOutcome diagnostics go to the log, never into a card.
    Raises ValueError when the value is not JSON or not a FHIR resource at all.
    """
    try:
        kind = _KIND.decode(data).resourceType
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"{where} is not a FHIR resource: {exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{where} is not usable JSON: a string is not UTF-8") from None
    except RecursionError:
        raise ValueError(f"{where} is not usable JSON: nested too deeply") from None
    if kind is None:
        raise ValueError(f"{where} is not a FHIR resource: no resourceType")
    if kind != "Bundle":
        try:
            single = _RESOURCE.decode(data)
        except msgspec.ValidationError as exc:
            raise ValueError(f"{where} ({kind}) could not be read: {exc}") from None
        return _sorted([single], where, detail)
    pairs: list[tuple[Resource | None, _EntrySearch | None]]
    try:
        bundle = _BUNDLE.decode(data)
        pairs = [(e.resource, e.search) for e in bundle.entry or ()]
        problems: list[str] = []
    except msgspec.ValidationError:
        # Slow path, only when some entry is malformed: decode entry by entry to keep the good ones.
        try:
            raw = _RAW_BUNDLE.decode(data)
        except msgspec.ValidationError as exc:
            raise ValueError(f"{where} is not a readable Bundle: {exc}") from None
        bundle = _Bundle(resourceType=raw.resourceType, link=raw.link)
        pairs, problems = _entries_one_by_one(raw, where, detail)
    next_url = next((link.url for link in bundle.link or () if link.relation == "next" and link.url), None)
    resources: list[Resource] = []
    for resource, search in pairs:
        if resource is None:
            continue
        if search is not None and search.mode == "outcome" and resource.resourceType != "OperationOutcome":
            problems.append(f"{where}: entry marked as search outcome but is a {resource.resourceType}")
            continue
        resources.append(resource)
    result = _sorted(resources, where, detail)
    result.problems[:0] = problems
    result.next_url = next_url
    return result


def _entries_one_by_one(
    raw: _RawBundle, where: str, detail: bool
) -> tuple[list[tuple[Resource | None, _EntrySearch | None]], list[str]]:
    pairs: list[tuple[Resource | None, _EntrySearch | None]] = []
    problems = []
    for index, data in enumerate(raw.entry or ()):
        try:
            entry = _ENTRY.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
            why = f" ({exc})" if detail else ""
            problems.append(f"{where}: entry {index} could not be read and was skipped{why}")
            continue
        pairs.append((entry.resource, entry.search))
    return pairs, problems


_SEVERITIES = {"fatal", "error", "warning", "information"}
_ISSUE_CODE = re.compile(r"^[a-z][a-z-]{0,39}$")


def _sorted(resources: list[Resource], where: str, detail: bool = True) -> Decoded:
    """Split OperationOutcomes (data problems, never data) from the resources."""
    kept = []
    problems = []
    for resource in resources:
        if resource.resourceType == "OperationOutcome":
            for issue in resource.issue or ():
                text = (
                    issue.diagnostics or (issue.details.text if issue.details else None) or issue.code or "?"
                )
                severity = issue.severity if issue.severity in _SEVERITIES else "an issue"
                if not detail:
                    log.info("%s: the FHIR server reported %s: %.300r", where, severity, text)
                    code = issue.code if issue.code and _ISSUE_CODE.match(issue.code) else "unknown"
                    text = f"issue code {code} (details in the service log)"
                problems.append(f"{where}: the FHIR server reported {severity}: {text}")
            if not resource.issue:
                problems.append(f"{where}: the FHIR server returned an empty OperationOutcome")
        else:
            kept.append(resource)
    return Decoded(resources=kept, problems=problems)
