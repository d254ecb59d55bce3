"""Facts about the rest of the record: other medication orders, positive cultures, conditions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec

from cds_service.data.resources import Resource
from cds_service.facts.coding import matches, struct_keys, struct_texts
from cds_service.facts.knowledge import (
    Conditions,
    ConditionSet,
    Medications,
    Microbiology,
    MicroFinding,
    MicroResult,
    Specimen,
    duration_text,
    unavailable,
)
from cds_service.facts.model import Facts, LabValue
from cds_service.facts.named import Fact, FactSpec, missing
from cds_service.facts.orders import is_medication, normalise, resolver
from cds_service.facts.time import parse_datetime
from cds_service.facts.units import Units

# FHIR status codes (Condition clinical/verification status, Procedure.status, Encounter.status), not
# clinical knowledge.
_ACTIVE = {"active", "recurrence", "relapse"}
_PERFORMED = {"completed", "in-progress"}
_ONGOING = "in-progress"
_ENCOUNTERED = {"arrived", "triaged", "in-progress", "onleave", "finished"}
_ENCOUNTER_ONGOING = {"arrived", "triaged", "in-progress", "onleave"}
STATUSES = ("present", "refuted")
_NEVER = datetime.min.replace(tzinfo=UTC)


# --- medication orders ------------------------------------------------------------------------------


def medication_specs(medications: Medications) -> list[FactSpec]:
    specs = []
    for drug in medications.classes.values():
        base = f"medications.{drug.name}"
        specs.append(FactSpec(f"{base}.active", "boolean", None, f"an active order for {drug.label}"))
        specs.append(
            FactSpec(
                f"{base}.daily_dose",
                "quantity",
                "mg/d",
                f"daily dose of the newest active {drug.label} order",
            )
        )
    return specs


def medication_facts(medications: Medications, facts: Facts, units: Units, weight: Fact) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    gap = unavailable(facts.unavailable, medications.sources)
    active = (
        [(r, msgspec.to_builtins(r)) for r in facts.medication_orders if r.status == "active"]
        if not gap
        else []
    )
    resolve = resolver(facts)
    for drug in medications.classes.values():
        base = f"medications.{drug.name}"
        if gap is not None:
            out[f"{base}.active"] = missing(f"{base}.active", gap)
            out[f"{base}.daily_dose"] = missing(f"{base}.daily_dose", gap)
            continue
        orders = [(r, raw) for r, raw in active if is_medication(raw, drug, medications, resolve)]
        if not orders:
            out[f"{base}.active"] = Fact(f"{base}.active", False, detail=f"no active {drug.label} order")
            out[f"{base}.daily_dose"] = missing(f"{base}.daily_dose", f"no active {drug.label} order")
            continue
        orders.sort(key=lambda pair: _authored(pair[0]), reverse=True)
        refs = tuple(f"MedicationRequest/{r.id}" for r, _ in orders)
        newest = normalise(orders[0][1], drug, medications, units, resolve, weight)
        out[f"{base}.active"] = Fact(f"{base}.active", True, evidence=refs, detail=newest.summary)
        if "daily_dose" in newest.values:
            out[f"{base}.daily_dose"] = Fact(
                f"{base}.daily_dose",
                newest.values["daily_dose"],
                unit="mg/d",
                time=parse_datetime(orders[0][0].authoredOn),
                evidence=(newest.reference,),
                detail=newest.summary,
            )
        else:
            out[f"{base}.daily_dose"] = missing(
                f"{base}.daily_dose", newest.why["daily_dose"], (newest.reference,), newest.summary
            )
    return out


def _authored(resource: Resource) -> datetime:
    return parse_datetime(resource.authoredOn) or _NEVER


# --- microbiology -----------------------------------------------------------------------------------


def culture_specs(microbiology: Microbiology) -> list[FactSpec]:
    return [
        FactSpec(
            f"cultures.{f.name}.positive",
            "boolean",
            None,
            f"{f.label} resulted in the last {duration_text(f.window)}",
        )
        for f in microbiology.findings.values()
    ]


def culture_facts(microbiology: Microbiology, facts: Facts) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    gap = unavailable(facts.unavailable, microbiology.sources)
    specimens = {f"Specimen/{s.id}": s for s in facts.other.get("Specimen", ()) if s.id}
    for finding in microbiology.findings.values():
        name = f"cultures.{finding.name}.positive"
        positives, unknown = _positives(finding, facts, specimens)
        if positives:
            positives.sort(key=lambda p: p[0].time or _NEVER, reverse=True)
            newest, label, organism = positives[0]
            assert newest.time is not None
            out[name] = Fact(
                name,
                True,
                time=newest.time,
                evidence=tuple(f"Observation/{lab.id}" for lab, _, _ in positives),
                detail=f"{organism} ({label}, {newest.time:%Y-%m-%d %H:%M})",
            )
        elif gap is not None:
            out[name] = missing(name, gap)
        elif unknown:
            out[name] = missing(name, "; ".join(unknown[:2]))
        else:
            out[name] = Fact(
                name, False, detail=f"no {finding.label} in the last {duration_text(finding.window)}"
            )
    return out


def _positives(
    finding: MicroFinding, facts: Facts, specimens: dict[str, Resource]
) -> tuple[list[tuple[LabValue, str, str]], list[str]]:
    start = facts.now - finding.window
    positives: list[tuple[LabValue, str, str]] = []
    unknown: list[str] = []
    seen: set[int] = set()
    for result, lab, by_code in _candidates(finding, facts):
        if id(lab.resource) in seen:
            continue
        organism = _value_in(lab.resource, result.values)
        if organism is None:
            continue
        seen.add(id(lab.resource))
        ref = f"Observation/{lab.id}"
        if lab.time is None:
            unknown.append(f"{ref} ({organism}) has no time")
            continue
        if lab.time < start:
            continue
        on_specimen = (
            True if by_code and result.specimen_in_code else _on(lab.resource, finding.specimen, specimens)
        )
        if on_specimen is None:
            unknown.append(f"specimen of {ref} unknown")
        elif on_specimen:
            positives.append((lab, result.label, organism))
    return positives, unknown


def _candidates(finding: MicroFinding, facts: Facts) -> Iterator[tuple[MicroResult, LabValue, bool]]:
    """Results coded as one of the finding's kinds (True) first, so a Gram stain is read as a Gram stain;
    then every other result, for the kinds that also accept any code on the specimen (False)."""
    coded: set[str] = set()
    for result in finding.results:
        coded |= result.codes
        for code in result.codes:
            for lab in facts.labs.get(code, ()):
                yield result, lab, True
    for result in finding.results:
        if result.any_code_on_specimen:
            for code, labs in facts.labs.items():
                if code not in coded:
                    for lab in labs:
                        yield result, lab, False


def _value_in(resource: Resource, values: frozenset[str]) -> str | None:
    """The organism or finding named by the result, when it is one of `values`."""
    concept = resource.valueCodeableConcept
    if concept is None:
        return None
    for coding in concept.coding or ():
        if coding.code and f"{coding.system or ''}|{coding.code}" in values:
            return concept.text or coding.display or coding.code
    return None


def _on(resource: Resource, specimen: Specimen, specimens: dict[str, Any]) -> bool | None:
    """Whether the result is on `specimen`; None when that cannot be told (never a silent yes or no)."""
    reference = resource.specimen
    if reference is None:
        return None
    if reference.reference:
        target = specimens.get("/".join(reference.reference.rstrip("/").split("/")[-2:]))
        if target is not None and target.type is not None:
            keys, texts = struct_keys(target.type), struct_texts(target.type)
            if any(k in specimen.codes for k in keys) or any(
                t.strip().lower() in specimen.text for t in texts
            ):
                return True
            if keys or texts:
                return False
    if reference.display and reference.display.strip().lower() in specimen.text:
        return True
    return None


# --- conditions and procedures ----------------------------------------------------------------------


def condition_specs(conditions: Conditions) -> list[FactSpec]:
    specs = []
    for s in conditions.sets.values():
        if s.resource == "Condition":
            text = f"{s.label}: present (active, not refuted) or refuted (an explicit negative)"
        else:
            assert s.window is not None
            text = (
                f"{s.label}: present when a {s.resource} is in progress or took place in the last "
                f"{duration_text(s.window)}"
            )
        specs.append(FactSpec(f"conditions.{s.name}.status", "text", None, text, STATUSES))
    return specs


def condition_facts(conditions: Conditions, facts: Facts) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    for s in conditions.sets.values():
        name = f"conditions.{s.name}.status"
        gap = unavailable(facts.unavailable, s.sources)
        if s.resource == "Condition":
            out[name] = _condition_status(s, facts.conditions, gap)
        else:
            out[name] = _event_status(s, facts, gap)
    return out


def _codes(concept: Any) -> list[str]:
    return [c.partition("|")[2] for c in struct_keys(concept)]


def _status_codes(concept: Any) -> set[str]:
    return set(_codes(concept)) if concept is not None else set()


def _condition_status(s: ConditionSet, resources: list[Resource], gap: str | None) -> Fact:
    name = f"conditions.{s.name}.status"
    present, refuted, other = [], [], []
    for r in resources:
        if not matches(s.matcher, struct_keys(r.code), ()):
            continue
        verification = _status_codes(r.verificationStatus)
        clinical = _status_codes(r.clinicalStatus)
        if "entered-in-error" in verification:
            continue
        if "refuted" in verification:
            refuted.append(r)
        elif not clinical or clinical & _ACTIVE:
            present.append(r)
        else:
            other.append((r, ", ".join(sorted(clinical))))
    if present:
        return Fact(
            name,
            "present",
            time=parse_datetime(present[0].recordedDate or present[0].onsetDateTime),
            evidence=tuple(f"Condition/{r.id}" for r in present),
            detail=_display(present[0]) or s.label,
        )
    if refuted:
        return Fact(
            name,
            "refuted",
            time=parse_datetime(refuted[0].recordedDate),
            evidence=tuple(f"Condition/{r.id}" for r in refuted),
            detail=f"{_display(refuted[0]) or s.label} refuted",
        )
    if other:
        resource, status = other[0]
        return missing(name, f"{s.label} is recorded only as {status} (Condition/{resource.id})")
    return missing(name, gap or f"no Condition coded as {s.label}")


def _event_status(s: ConditionSet, facts: Facts, gap: str | None) -> Fact:
    """A Procedure or Encounter set: present when one is in progress now or ended within the window."""
    name = f"conditions.{s.name}.status"
    window = s.window
    assert window is not None  # the catalog requires a window for procedure and encounter sets
    start = facts.now - window
    done: list[tuple[datetime, bool, Resource]] = []
    for r in facts.other.get(s.resource, ()):
        placed = _placed(r, facts.now) if _coded(s, r) else None
        if placed is None:
            continue
        time, ongoing = placed
        if ongoing or start <= time <= facts.now:
            done.append((time, ongoing, r))
    if done:
        # An ongoing one first (CRRT still running), then the most recent.
        done.sort(key=lambda item: (item[1], item[0]), reverse=True)
        time, ongoing, newest = done[0]
        when = f"in progress since {time:%Y-%m-%d %H:%M}" if ongoing else f"{time:%Y-%m-%d %H:%M}"
        return Fact(
            name,
            "present",
            time=time,
            evidence=tuple(f"{s.resource}/{r.id}" for _, _, r in done),
            detail=f"{_display(newest) or s.label} ({when})",
        )
    kind = s.resource
    return missing(
        name, gap or f"no {kind} coded as {s.label} in progress or in the last {duration_text(window)}"
    )


def _coded(s: ConditionSet, r: Resource) -> bool:
    if s.resource == "Procedure":
        return matches(s.matcher, struct_keys(r.code), ())
    keys = [*struct_keys(r.type), *struct_keys(r.serviceType), *struct_keys(r.reasonCode)]
    return matches(s.matcher, keys, ())


def _placed(r: Resource, now: datetime) -> tuple[datetime, bool] | None:
    """When a Procedure or Encounter took place, and whether it is still going on; None when it did not
    take place (not done, cancelled, planned, entered in error) or has no time."""
    period = r.period if r.resourceType == "Encounter" else r.performedPeriod
    if r.resourceType == "Encounter":
        if r.status not in _ENCOUNTERED:
            return None
        ongoing_status = r.status in _ENCOUNTER_ONGOING
    else:
        if r.status not in _PERFORMED:
            return None
        ongoing_status = r.status == _ONGOING
    begun = parse_datetime(period.start) if period else None
    ended = parse_datetime(period.end) if period else None
    if begun is None and r.resourceType == "Procedure":
        begun = parse_datetime(r.performedDateTime)
    if ended is not None and ended <= now:
        return ended, False
    if begun is None or begun > now:
        return None
    # Begun and not ended by now: still running when its status says so or its end is still to come
    # (CRRT started days ago is going on now); a completed one with a start only took place then.
    return begun, ongoing_status or ended is not None


def _display(resource: Resource) -> str | None:
    texts = struct_texts(resource.code) or struct_texts(resource.type) or struct_texts(resource.reasonCode)
    return texts[0] if texts else None
