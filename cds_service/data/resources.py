"""Typed, lenient views of the FHIR R4 resources we read, decoded with msgspec.

One `Resource` struct covers every type we read (Observation, Patient, MedicationRequest, Condition,
Procedure, Encounter, Specimen, Medication, OperationOutcome): msgspec skips unknown fields without building them,
which keeps a 200-Observation prefetch to a few thousand small objects instead of a pydantic tree.
Full FHIR validation (fhir.resources) is kept for the resources we emit.

`Resource` lists only the elements the facts read, so an element it leaves out (an Observation's
`category`, a `subject`) is never looked at, whatever its shape. A resource whose listed elements have the
wrong JSON shape is read as far as it can be (`_salvage`): an object where FHIR has an array is read as a
one-item array (the CDS Hooks sandbox sends `category` so), and an element that still cannot be read is
left out and named in a problem, because something the rules need is then missing.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from msgspec import inspect

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


class OutcomeIssue(msgspec.Struct, frozen=True):
    severity: str | None = None
    code: str | None = None
    diagnostics: str | None = None
    details: CodeableConcept | None = None


class Resource(msgspec.Struct, frozen=True):
    # Only what the facts read: every element here that cannot be read is a problem worth a card.
    resourceType: str
    id: str | None = None
    status: str | None = None
    code: CodeableConcept | None = None
    # Observation
    effectiveDateTime: str | None = None
    effectivePeriod: Period | None = None
    issued: str | None = None
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    # An organism or finding sent as text only.
    valueString: str | None = None
    interpretation: list[CodeableConcept] | None = None
    referenceRange: list[ReferenceRange] | None = None
    specimen: Reference | None = None
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
    # A verified infusion order names its bag as a contained Medication (docs/clinical/order-representation.md, Shape B).
    contained: list[dict[str, Any]] | None = None
    # MedicationRequest: the orders this one replaces or fulfils (an order being revised is no duplicate)
    priorPrescription: Reference | None = None
    basedOn: list[Reference] | None = None
    # Condition, Procedure
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    onsetDateTime: str | None = None
    recordedDate: str | None = None
    performedDateTime: str | None = None
    performedPeriod: Period | None = None
    # Specimen (one concept) and Encounter (a list of concepts): read with coding.struct_keys, which takes both
    type: CodeableConcept | list[CodeableConcept] | None = None
    # Encounter
    period: Period | None = None
    serviceType: CodeableConcept | None = None
    reasonCode: list[CodeableConcept] | None = None
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
    # Prefetch values are mostly Bundles: decode as one straight away, and look at resourceType first
    # (a pass over the whole value, a fifth of the decode) only when that does not work out.
    try:
        bundle = _BUNDLE.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        pass
    else:
        if bundle.resourceType == "Bundle":
            return _read_bundle(bundle, [(e.resource, e.search) for e in bundle.entry or ()], [], where, detail)
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
            return _sorted([_RESOURCE.decode(data)], where)
        except msgspec.ValidationError as exc:
            # _KIND read it, so it is JSON: only its shape is wrong somewhere.
            single, left_out = _salvaged(msgspec.json.decode(data), where)
            if single is None:
                why = f": {exc}" if detail else ""
                raise ValueError(f"{where} ({kind}) could not be read{why}") from None
        result = _sorted([single], where, detail)
        result.problems[:0] = left_out
        return result
    # A Bundle that did not decode in one go: some entry is malformed. Decode entry by entry to keep
    # the good ones.
    try:
        raw = _RAW_BUNDLE.decode(data)
    except msgspec.ValidationError as exc:
        raise ValueError(f"{where} is not a readable Bundle: {exc}") from None
    pairs, problems = _entries_one_by_one(raw, where, detail)
    return _read_bundle(_Bundle(resourceType=raw.resourceType, link=raw.link), pairs, problems, where, detail)


def _read_bundle(
    bundle: _Bundle,
    pairs: list[tuple[Resource | None, _EntrySearch | None]],
    problems: list[str],
    where: str,
    detail: bool,
) -> Decoded:
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
            try:
                document = msgspec.json.decode(data)
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                document = None
            resource, salvage = _salvaged(
                document.get("resource") if isinstance(document, dict) else None, where
            )
            if resource is None or not isinstance(document, dict):
                why = f" ({exc})" if detail else ""
                problems.append(f"{where}: entry {index} could not be read and was skipped{why}")
                continue
            problems.extend(salvage)
            search = document.get("search")
            mode = search.get("mode") if isinstance(search, dict) else None
            entry = _Entry(resource, _EntrySearch(mode) if isinstance(mode, str) else None)
        pairs.append((entry.resource, entry.search))
    return pairs, problems


_SHAPE = inspect.type_info(Resource)


def _salvaged(document: Any, where: str) -> tuple[Resource | None, list[str]]:
    """A resource read element by element (the slow path, for one whose shape msgspec refused): what
    can be read is kept; each element left out is named in the problems. None when there is no resource
    at all (not an object, no resourceType)."""
    left_out: list[str] = []
    fits, kept = _salvage(document, _SHAPE, "", left_out)
    if not fits:
        return None, []
    try:
        resource = msgspec.convert(kept, Resource)
    except msgspec.ValidationError:
        return None, []
    if not left_out:
        return resource, []
    name = f"{resource.resourceType}/{resource.id}" if resource.id else resource.resourceType
    elements = ", ".join(left_out)
    return resource, [
        f"{where}: {name}: {elements} could not be read and {'was' if len(left_out) == 1 else 'were'} left out"
    ]


def _salvage(value: Any, shape: inspect.Type, path: str, left_out: list[str]) -> tuple[bool, Any]:
    """(fits, value as far as it fits `shape`); the paths of what did not fit go to `left_out`."""
    if isinstance(shape, inspect.UnionType):
        if value is None:
            return True, None
        # Resource only has `X | None` unions.
        (shape,) = [t for t in shape.types if not isinstance(t, inspect.NoneType)]
    if isinstance(shape, inspect.StructType):
        if not isinstance(value, dict):
            left_out.append(path or "the resource")
            return False, None
        kept = {}
        for field in shape.fields:
            if field.encode_name in value:
                where = f"{path}.{field.encode_name}" if path else field.encode_name
                fits, item = _salvage(value[field.encode_name], field.type, where, left_out)
                if fits:
                    kept[field.encode_name] = item
                elif field.required:
                    return False, None
            elif field.required:
                left_out.append(f"{path}.{field.encode_name}" if path else field.encode_name)
                return False, None
        return True, kept
    if isinstance(shape, inspect.ListType):
        # An object where FHIR has an array is what a sloppy client means by a one-item array.
        items = [value] if isinstance(value, dict) else value
        if not isinstance(items, list):
            left_out.append(path)
            return False, None
        kept_items = []
        for index, item in enumerate(items):
            fits, kept_item = _salvage(item, shape.item_type, f"{path}[{index}]", left_out)
            if fits:
                kept_items.append(kept_item)
        return True, kept_items
    if _leaf_fits(value, shape):
        return True, value
    left_out.append(path)
    return False, None


def _leaf_fits(value: Any, shape: inspect.Type) -> bool:
    if isinstance(shape, inspect.StrType):
        return isinstance(value, str)
    if isinstance(shape, inspect.FloatType):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(shape, inspect.IntType):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(shape, inspect.BoolType):
        return isinstance(value, bool)
    if isinstance(shape, inspect.DictType):
        return isinstance(value, dict)
    return isinstance(shape, inspect.AnyType)


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
