"""Facts about the rest of the record: other medication orders, positive cultures, conditions."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from cds_service.data.resources import Resource
from cds_service.facts.coding import matches, raw_keys, raw_texts, struct_keys, struct_texts
from cds_service.facts.knowledge import (
    Conditions,
    ConditionSet,
    MedicationClass,
    Medications,
    Microbiology,
    MicroFinding,
    MicroResult,
    Specimen,
    ValueSet,
    duration_text,
    unavailable,
)
from cds_service.facts.model import Facts, LabValue
from cds_service.facts.named import Fact, FactSpec, missing
from cds_service.facts.orders import (
    Resolver,
    is_medication,
    medication_of,
    normalised,
    order_json,
    order_routes,
    quantities,
    resolver,
    route_in_text,
)
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
# Characters of a reported organism shown in a fact's detail: the card summary quotes it.
_SHOWN_VALUE = 40


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
                quantities(drug.dose_unit)["daily_dose"],
                f"daily dose of the newest active {drug.label} order",
            )
        )
    return specs


def medication_facts(medications: Medications, facts: Facts, units: Units, weight: Fact) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    gap = unavailable(facts.unavailable, medications.sources)
    active = (
        [(r, order_json(facts, r)) for r in facts.medication_orders if r.status == "active"]
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
        matching = [(r, raw) for r, raw in active if is_medication(raw, drug, medications, resolve)]
        orders, skipped, unplaced = _by_route(drug, medications, matching, resolve)
        note = f"not counted: {'; '.join(skipped)}" if skipped else None
        if not orders:
            absent = f"no active {drug.label} order"
            if unplaced:
                why = f"{absent} by a known route; {'; '.join(unplaced)}"
                refs = tuple(f"MedicationRequest/{r.id}" for r, _ in matching)
                out[f"{base}.active"] = missing(f"{base}.active", why, refs, note)
                out[f"{base}.daily_dose"] = missing(f"{base}.daily_dose", why, refs, note)
                continue
            out[f"{base}.active"] = Fact(
                f"{base}.active", False, detail=f"{absent} ({note})" if note else absent
            )
            out[f"{base}.daily_dose"] = missing(f"{base}.daily_dose", absent, detail=note)
            continue
        orders.sort(key=lambda pair: _authored(pair[0]), reverse=True)
        refs = tuple(f"MedicationRequest/{r.id}" for r, _ in orders)
        newest = normalised(facts, orders[0][1], drug, medications, units, weight)
        summary = f"{newest.summary}; {note}" if note else newest.summary
        out[f"{base}.active"] = Fact(f"{base}.active", True, evidence=refs, detail=summary)
        if "daily_dose" in newest.values:
            out[f"{base}.daily_dose"] = Fact(
                f"{base}.daily_dose",
                newest.values["daily_dose"],
                unit=quantities(drug.dose_unit)["daily_dose"],
                time=parse_datetime(orders[0][0].authoredOn),
                evidence=(newest.reference,),
                detail=newest.summary,
            )
        else:
            out[f"{base}.daily_dose"] = missing(
                f"{base}.daily_dose", newest.why["daily_dose"], (newest.reference,), newest.summary
            )
    return out


def _by_route(
    drug: MedicationClass,
    medications: Medications,
    orders: list[tuple[Resource, dict[str, Any]]],
    resolve: Resolver,
) -> tuple[list[tuple[Resource, dict[str, Any]]], list[str], list[str]]:
    """The orders that count for the class by their route; the others, named with their route (not
    counted); and the orders whose route cannot be placed (unplaced). Without a route filter every order
    counts.

    An order that gives no route (or one this service does not know) is read by the route its drug's text
    names ("oral capsule"); failing that it counts, unless an exception could apply to that drug (oral
    vancomycin), when it cannot be placed."""
    rule = drug.routes
    if rule is None:
        return list(orders), [], []
    counted, skipped, unplaced = [], [], []
    for resource, raw in orders:
        concepts = medication_of(raw, resolve)[1]
        texts = [t for c in concepts for t in raw_texts(c)]
        name = texts[0] if texts else "medication"
        ref = f"MedicationRequest/{resource.id}"
        excepted = {
            route
            for exception in rule.exceptions
            if any(
                matches(exception.matcher, raw_keys(c), raw_texts(c), medications.ndc_systems)
                for c in concepts
            )
            for route in exception.routes
        }
        routes = order_routes(raw, medications)
        known = [r for r in routes if r is not None and r != "other"]
        if len(known) < len(routes):
            named = route_in_text(texts, medications)
            known += [named] if named else []
        if any(r in rule.counted and r not in excepted for r in known):
            counted.append((resource, raw))
        elif known:
            labels = ", ".join(dict.fromkeys(medications.routes[r].label for r in known))
            skipped.append(f"{ref} ({name}, {labels})")
        elif excepted:
            said = "gives no route" if None in routes else "gives a route this service does not know"
            unplaced.append(f"{ref} ({name}) {said}, and by some routes it is not systemic")
        else:
            counted.append((resource, raw))
    return counted, skipped, unplaced


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
            # "organism (label, YYYY-MM-DD HH:MM)": the organism clipped to _SHOWN_VALUE, a short label.
            detail_width=_SHOWN_VALUE + 36,
        )
        for f in microbiology.findings.values()
    ]


def culture_facts(microbiology: Microbiology, facts: Facts) -> dict[str, Fact]:
    out: dict[str, Fact] = {}
    gap = unavailable(facts.unavailable, microbiology.sources)
    specimens = {f"Specimen/{s.id}": s for s in facts.other.get("Specimen", ()) if s.id}
    for finding in microbiology.findings.values():
        name = f"cultures.{finding.name}.positive"
        found = _results(finding, facts, specimens)
        if found.positives:
            found.positives.sort(key=lambda p: p[0].time or _NEVER, reverse=True)
            newest, label, organism = found.positives[0]
            assert newest.time is not None
            out[name] = Fact(
                name,
                True,
                time=newest.time,
                evidence=tuple(f"Observation/{lab.id}" for lab, _, _ in found.positives),
                detail=f"{_clip(organism)} ({label}, {newest.time:%Y-%m-%d %H:%M})",
            )
        elif gap is not None:
            out[name] = missing(name, gap)
        elif found.unknown:
            more = f" (and {len(found.unknown) - 2} more)" if len(found.unknown) > 2 else ""
            out[name] = missing(name, "; ".join(found.unknown[:2]) + more, tuple(found.evidence))
        else:
            detail = f"no {finding.label} in the last {duration_text(finding.window)}"
            if found.ruled_out:
                detail += f" ({'; '.join(found.ruled_out[:2])})"
            out[name] = Fact(name, False, evidence=tuple(found.evidence), detail=detail)
    return out


@dataclasses.dataclass
class _Found:
    positives: list[tuple[LabValue, str, str]] = dataclasses.field(default_factory=list)
    unknown: list[str] = dataclasses.field(default_factory=list)  # why a result could not be decided
    ruled_out: list[str] = dataclasses.field(default_factory=list)  # results read and found not to count
    evidence: list[str] = dataclasses.field(default_factory=list)


def _results(finding: MicroFinding, facts: Facts, specimens: dict[str, Resource]) -> _Found:
    start = facts.now - finding.window
    found = _Found()
    seen: set[int] = set()
    for result, lab, by_code in _candidates(finding, facts):
        if id(lab.resource) in seen:
            continue
        if lab.resource.valueCodeableConcept is None and not (lab.resource.valueString or "").strip():
            # What _classify calls "empty", without building its texts: most results are numbers, and
            # every one is a candidate for the kinds that accept any code on the specimen.
            continue
        kind, value = _classify(lab.resource, result)
        # A result coded as another kind, or not coded as this kind at all, is read only for a positive
        # value: its other values are not this kind's to judge.
        if kind == "empty" or (not by_code and kind != "positive"):
            continue
        seen.add(id(lab.resource))
        ref = f"Observation/{lab.id}"
        if lab.time is None:
            if kind in ("positive", "unrecognised"):
                found.unknown.append(f"{ref} ({value}) has no time")
                found.evidence.append(ref)
            continue
        if lab.time < start or lab.time > facts.now:
            continue
        if kind in ("other", "negative"):
            found.ruled_out.append(f"{ref}: {value}, {kind_text(kind)}")
            found.evidence.append(ref)
            continue
        on_specimen: bool | None
        if by_code and result.specimen_in_code:
            on_specimen, why = True, ""
        else:
            on_specimen, why = _on(lab.resource, finding.specimen, specimens, facts)
        if on_specimen is None:
            found.unknown.append(f"specimen of {ref} ({value}) unknown: {why}")
            found.evidence.append(ref)
        elif not on_specimen:
            found.ruled_out.append(f"{ref}: {value} on {why}, not {finding.specimen.label}")
            found.evidence.append(ref)
        elif kind == "positive":
            found.positives.append((lab, result.label, value))
        else:
            found.unknown.append(
                f"{ref} ({result.label}) reports '{value}', recognised neither as "
                f"{_labels(result.positive)} nor as {_labels(result.other + result.negative)}"
            )
            found.evidence.append(ref)
    return found


def _clip(text: str, width: int = _SHOWN_VALUE) -> str:
    """A reported value short enough for a card summary (the whole value is in the result itself)."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def kind_text(kind: str) -> str:
    return {"other": "not gram-negative", "negative": "no organism"}.get(kind, kind)


def _labels(sets: tuple[ValueSet, ...]) -> str:
    return " or ".join(dict.fromkeys(s.label for s in sets)) or "anything listed"


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


def _value_texts(resource: Resource) -> tuple[list[str], list[str]]:
    """The codings and the texts (text, displays, valueString) a result states its value with."""
    concept = resource.valueCodeableConcept
    keys = struct_keys(concept)
    texts = struct_texts(concept)
    if resource.valueString and resource.valueString.strip():
        texts.append(resource.valueString)
    return keys, [t for t in texts if t.strip()]


def _classify(resource: Resource, result: MicroResult) -> tuple[str, str]:
    """positive / other / negative / unrecognised / empty, and the value as the result states it.

    Positive values are looked for first, so a mixed growth that includes a gram-negative organism counts.
    """
    keys, texts = _value_texts(resource)
    if not keys and not texts:
        return "empty", ""
    shown = texts[0] if texts else f"code {keys[0]}"
    for kind, sets in (("positive", result.positive), ("other", result.other), ("negative", result.negative)):
        for value_set in sets:
            if value_set.find(keys, texts) is not None:
                # A value sent as a code only is shown by what it was recognised as.
                return kind, shown if texts else f"{value_set.label} ({keys[0].partition('|')[2]})"
    # An organism named only to be denied ("no Escherichia coli isolated") reports no organism.
    if any(value_set.denied(texts) for value_set in result.positive + result.other):
        return "negative", shown
    return "unrecognised", shown


def _on(
    resource: Resource, specimen: Specimen, specimens: dict[str, Resource], facts: Facts
) -> tuple[bool | None, str]:
    """Whether the result is on `specimen` (True), on another known specimen (False, with its type), or
    cannot be told (None, with why): never a silent yes or no."""
    reference = resource.specimen
    if reference is None:
        return None, "the result names no specimen"
    why = "no Specimen.type"
    target: tuple[list[str], list[str]] | None = None
    if reference.reference:
        target = _specimen_type(reference.reference, resource, specimens)
        if target is None:
            gap = unavailable(facts.unavailable, specimen.sources)
            why = gap or f"{reference.reference} is not among the specimens sent or fetched"
    if target is not None:
        decided = _kind_of_specimen(specimen, *target)
        if decided is not None:
            return decided
        if target[0] or target[1]:
            why = f"type '{(target[1] or target[0])[0]}' of {reference.reference} is not recognised"
    if reference.display:
        decided = _kind_of_specimen(specimen, [], [reference.display])
        if decided is not None:
            return decided
        why += f"; its display '{reference.display}' is not recognised"
    return None, why


def _specimen_type(
    reference: str, resource: Resource, specimens: dict[str, Resource]
) -> tuple[list[str], list[str]] | None:
    """The codings and texts of the referenced Specimen's type; None when that Specimen is not here."""
    if reference.startswith("#"):
        for contained in resource.contained or ():
            if contained.get("resourceType") == "Specimen" and contained.get("id") == reference[1:]:
                kind = contained.get("type")
                return raw_keys(kind), raw_texts(kind)
        return None
    target = specimens.get("/".join(reference.rstrip("/").split("/")[-2:]))
    if target is None:
        return None
    return struct_keys(target.type), struct_texts(target.type)


def _kind_of_specimen(specimen: Specimen, keys: list[str], texts: list[str]) -> tuple[bool, str] | None:
    """(True, type) for the specimen, (False, type) for one known not to be it, None when undecided (no
    type, an unrecognised type, or a type that names both)."""
    shown = texts[0] if texts else keys[0] if keys else ""
    is_it = any(k in specimen.codes for k in keys) or any(specimen.names.find(t) for t in texts)
    is_not = any(k in specimen.other_codes for k in keys) or any(specimen.other_names.find(t) for t in texts)
    if is_it and not is_not:
        return True, shown
    if is_not and not is_it:
        return False, shown
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
