"""Facts about the other medication orders of the record (medications.*): active, and the daily dose."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cds_service.data.resources import Resource
from cds_service.facts.coding import matches, raw_keys, raw_texts
from cds_service.facts.knowledge import (
    MedicationClass,
    Medications,
    unavailable,
)
from cds_service.facts.model import Facts
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

_NEVER = datetime.min.replace(tzinfo=UTC)


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
