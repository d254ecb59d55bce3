"""Request + patient data -> Facts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cds_service.data.prefetch import PatientData
from cds_service.data.resources import Resource
from cds_service.facts.model import DraftOrder, Facts, LabValue
from cds_service.facts.time import parse_date, parse_datetime
from cds_service.protocol.discovery import ServiceDefinition
from cds_service.protocol.request import HookRequest

# Results in these states are real results; entered-in-error, cancelled, registered... are not.
USABLE_STATUS = frozenset({"final", "amended", "corrected", "preliminary"})
_EPOCH = datetime.min.replace(tzinfo=UTC)


def build_facts(
    service: ServiceDefinition, request: HookRequest, data: PatientData, now: datetime | None = None
) -> Facts:
    facts = Facts(
        now=now or datetime.now(UTC),
        hook=request.hook,
        hook_instance=request.hook_instance,
        patient_id=request.patient_id,
        problems=list(data.problems),
    )
    for key, why in data.unavailable.items():
        item = service.prefetch[key]
        facts.unavailable[item.label or key] = why
        if not item.announce:
            facts.unannounced.add(item.label or key)

    observations: list[Resource] = []
    # A resource may arrive under two keys (a Procedure with the Conditions and under its own key):
    # read it once.
    seen: set[tuple[str, str]] = set()
    for resources in data.values.values():
        for resource in resources:
            kind = resource.resourceType
            if resource.id:
                if (kind, resource.id) in seen:
                    continue
                seen.add((kind, resource.id))
            if kind == "Observation":
                observations.append(resource)
            elif kind == "Patient":
                _patient(facts, resource)
            elif kind == "MedicationRequest":
                facts.medication_orders.append(resource)
            elif kind == "Condition":
                facts.conditions.append(resource)
            else:
                facts.other.setdefault(kind, []).append(resource)
    _labs(facts, observations)

    # Only hooks that define draftOrders / selections have them checked by the protocol layer.
    ordering = request.hook in ("order-sign", "order-select")
    draft_orders = request.context.get("draftOrders")
    if ordering and isinstance(draft_orders, dict):
        facts.draft_orders = _draft_orders(draft_orders, facts.problems)
    selections = request.context.get("selections")
    if request.hook == "order-select" and isinstance(selections, list):
        facts.selections = [s for s in selections if isinstance(s, str)]
        drafted = {f"{o.resource_type}/{o.id}" for o in facts.draft_orders}
        for selection in facts.selections:
            if selection not in drafted:
                facts.problems.append(f"context.selections names {selection}, which is not in draftOrders")
    return facts


def _patient(facts: Facts, patient: Resource) -> None:
    if facts.patient_id and patient.id and patient.id != facts.patient_id:
        facts.problems.append(
            f"prefetch holds Patient/{patient.id}, not the patient in context; it was ignored"
        )
        return
    facts.birth_date = parse_date(patient.birthDate)
    if patient.birthDate and facts.birth_date is None:
        facts.problems.append(f"Patient.birthDate {patient.birthDate!r} is not a date")
    facts.gender = patient.gender


def _labs(facts: Facts, observations: Iterable[Resource]) -> None:
    by_code: dict[str, list[LabValue]] = {}
    for obs in observations:
        status = obs.status or ""
        if status not in USABLE_STATUS:
            facts.excluded[f"status {status or 'missing'}"] = (
                facts.excluded.get(f"status {status or 'missing'}", 0) + 1
            )
            continue
        quantity = obs.valueQuantity
        time = parse_datetime(
            obs.effectiveDateTime
            or (obs.effectivePeriod.start if obs.effectivePeriod else None)
            or obs.issued
        )
        value = quantity.value if quantity else None
        comparator = quantity.comparator if quantity else None
        unit = (quantity.code or quantity.unit) if quantity else None
        # One result may carry several codings (LOINC and a local code): file it under each.
        for coding in obs.code.coding or () if obs.code else ():
            if coding.code:
                code = f"{coding.system or ''}|{coding.code}"
                lab = LabValue(obs.id, code, value, comparator, unit, time, status, obs)
                by_code.setdefault(code, []).append(lab)
    for series in by_code.values():
        series.sort(key=lambda v: v.time or _EPOCH, reverse=True)
    facts.labs = by_code


def _draft_orders(bundle: dict[str, Any], problems: list[str]) -> list[DraftOrder]:
    orders = []
    for index, entry in enumerate(bundle.get("entry") or ()):
        raw = entry.get("resource")
        if not isinstance(raw, dict) or not isinstance(raw.get("resourceType"), str):
            problems.append(f"draftOrders entry {index} holds no FHIR resource")
            continue
        # The order is read from its JSON, element by element, by what needs each element (orders.py):
        # a wrong shape elsewhere (the sandbox's `category` object) is no reason to doubt the order, and
        # one in an element that is needed makes that fact missing, with the reason.
        orders.append(
            DraftOrder(
                id=raw.get("id") if isinstance(raw.get("id"), str) else None,
                resource_type=raw["resourceType"],
                raw=raw,
            )
        )
    return orders
