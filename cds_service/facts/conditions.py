"""Facts about the conditions, procedures and encounters of the record (conditions.*)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cds_service.data.resources import Resource
from cds_service.facts.coding import matches, struct_keys, struct_texts
from cds_service.facts.knowledge import (
    Conditions,
    ConditionSet,
    duration_text,
    unavailable,
)
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, FactSpec, missing
from cds_service.facts.time import parse_datetime

# FHIR status codes (Condition clinical/verification status, Procedure.status, Encounter.status), not
# clinical knowledge.
_ACTIVE = {"active", "recurrence", "relapse"}
_PERFORMED = {"completed", "in-progress"}
_ONGOING = "in-progress"
_ENCOUNTERED = {"arrived", "triaged", "in-progress", "onleave", "finished"}
_ENCOUNTER_ONGOING = {"arrived", "triaged", "in-progress", "onleave"}
STATUSES = ("present", "refuted")


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
