"""The `therapy` calculation: every order for one medication class that is in force or being signed, so
that two of them (an infusion already running and a new subcutaneous draft, or two drafts signed
together) are seen as duplicate therapy, and their doses are added up against the maximum.

An active order is not counted when a counted order says it replaces or fulfils it
(MedicationRequest.priorPrescription or basedOn), or when it is the draft itself being revised (same id).
Orders whose intent is only a proposal, plan or option are no orders.

Facts:
- therapy.drafts: how many orders for the drug are being signed (known even when the record is not).
- therapy.orders: how many distinct orders are counted; the detail lists them.
- therapy.routes: how many different routes they are given by (an order without a route counts as one).
- therapy.total_daily_dose: the sum of their daily doses; missing, naming the order, when one has none.
- therapy.total_dose_rate_per_kg: that sum per kg of body weight per hour.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from cds_service.clinical.base import Configured, Params, require_dose_unit
from cds_service.facts.catalog import FactCatalog
from cds_service.facts.coding import raw_list
from cds_service.facts.knowledge import MedicationClass, Medications, unavailable
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, FactSpec, missing
from cds_service.facts.orders import (
    Json,
    Normalised,
    being_ordered,
    is_medication,
    normalised,
    order_json,
    resolver,
)
from cds_service.facts.units import Units, tidy

# The unit this calculation computes and words doses in ("mg/day", "mg/kg/h"); configure refuses a rule
# pack whose medications are dosed in another.
DOSE_UNIT = "mg"

# FHIR MedicationRequest codes: the status of an order in force, and intents that are not orders.
_IN_FORCE = "active"
_NOT_ORDERS = frozenset({"proposal", "plan", "option"})
FACTS = ("therapy.orders", "therapy.routes", "therapy.total_daily_dose", "therapy.total_dose_rate_per_kg")
DRAFTS = "therapy.drafts"
# How the calculation words its facts' details and missing reasons: template parameters of the providing
# rule file (duplicate-therapy.yaml) with the placeholders each may name.
WORDING: dict[str, tuple[str, ...]] = {
    "order_text": ("order", "status", "summary"),
    "none_text": ("drug", "being"),
    "no_route_text": (),
    "others_unknown_text": ("drug", "why"),
    "no_dose_text": ("order", "why"),
    "no_dose_why_text": (),
    "no_total_text": (),
    "weight_bound_text": (),
    "per_kg_text": ("dose", "dose_unit", "weight"),
    "weight_date_text": ("date",),
}


@dataclasses.dataclass(frozen=True)
class Counted:
    reference: str
    status: str
    order: Normalised


@dataclasses.dataclass(frozen=True)
class TherapySettings:
    drug: MedicationClass
    medications: Medications
    units: Units
    wording: Mapping[str, str]  # WORDING
    dose_unit: str  # medications.yaml dose_unit as people write it ("mg")

    def say(self, name: str, **values: str) -> str:
        return self.wording[name].format(**values)

    def compute(self, named: Mapping[str, Fact], facts: Facts) -> dict[str, Fact]:
        resolve = resolver(facts)
        weight = named["patient.weight"]

        def read(raw: Json) -> Normalised:
            return normalised(facts, raw, self.drug, self.medications, self.units, weight)

        drafts = [
            d.raw
            for d in facts.draft_orders
            if d.resource_type == "MedicationRequest"
            and is_medication(d.raw, self.drug, self.medications, resolve)
        ]
        gap = unavailable(facts.unavailable, self.medications.sources)
        active: list[Json] = []
        if gap is None:
            for resource in facts.medication_orders:
                if resource.status != _IN_FORCE or resource.intent in _NOT_ORDERS:
                    continue
                raw: Json = order_json(facts, resource)
                if is_medication(raw, self.drug, self.medications, resolve):
                    active.append(raw)
        considered = [*drafts, *active]
        superseded = {ref for raw in considered for ref in _replaces(raw)}
        draft_ids = {raw.get("id") for raw in drafts if isinstance(raw.get("id"), str)}
        counted = [Counted(_reference(raw), "draft", read(raw)) for raw in drafts]
        for raw in active:
            reference = _reference(raw)
            if raw.get("id") in draft_ids or reference in superseded:
                continue
            counted.append(Counted(reference, _IN_FORCE, read(raw)))
        listing = "; ".join(
            self.say("order_text", order=c.reference, status=c.status, summary=c.order.summary)
            for c in counted
        )
        evidence = tuple(c.reference for c in counted)
        drafted = Fact(DRAFTS, len(drafts), evidence=tuple(_reference(raw) for raw in drafts))
        if gap is not None and len(counted) < 2:
            return {DRAFTS: drafted, **{name: missing(name, gap) for name in FACTS}}
        label = self.drug.label
        count = Fact(
            "therapy.orders",
            len(counted),
            comparator=">=" if gap is not None else None,
            evidence=evidence,
            detail=listing or self.say("none_text", drug=label, being=being_ordered(facts.hook)),
        )
        routes = sorted({c.order.route or self.say("no_route_text") for c in counted})
        out = {
            DRAFTS: drafted,
            "therapy.orders": count,
            "therapy.routes": Fact(
                "therapy.routes",
                len(routes),
                comparator=">=" if gap is not None else None,
                evidence=evidence,
                detail=", ".join(routes),
            ),
        }
        unknown = [c for c in counted if "daily_dose" not in c.order.values]
        if gap is not None:
            why = self.say("others_unknown_text", drug=label, why=gap)
            out["therapy.total_daily_dose"] = missing("therapy.total_daily_dose", why, evidence, listing)
        elif unknown:
            first = unknown[0]
            reason = first.order.why.get("daily_dose", self.say("no_dose_why_text"))
            why = self.say("no_dose_text", order=first.reference, why=reason)
            out["therapy.total_daily_dose"] = missing("therapy.total_daily_dose", why, evidence, listing)
        else:
            total = tidy(sum(c.order.values["daily_dose"] for c in counted))
            out["therapy.total_daily_dose"] = Fact(
                "therapy.total_daily_dose", total, unit="mg/d", evidence=evidence, detail=listing
            )
        out["therapy.total_dose_rate_per_kg"] = self._per_kg(out["therapy.total_daily_dose"], weight)
        return out

    def _per_kg(self, total: Fact, weight: Fact) -> Fact:
        name = "therapy.total_dose_rate_per_kg"
        value, kg = total.value, weight.value
        if not isinstance(value, int | float) or isinstance(value, bool):
            return missing(name, total.missing or self.say("no_total_text"), total.evidence)
        if not isinstance(kg, int | float) or isinstance(kg, bool) or kg <= 0 or weight.comparator:
            return missing(name, weight.missing or self.say("weight_bound_text"), total.evidence)
        kilograms = self.units.convert(float(kg), weight.unit or "kg", "kg")
        rate = self.units.convert(float(value) / kilograms, "mg/kg/d", "mg/kg/h")
        detail = self.say(
            "per_kg_text", dose=f"{float(value):g}", dose_unit=self.dose_unit, weight=f"{kilograms:g}"
        )
        if weight.time:
            detail += self.say("weight_date_text", date=f"{weight.time:%Y-%m-%d}")
        return Fact(
            name, tidy(rate), unit="mg/kg/h", evidence=total.evidence + weight.evidence, detail=detail
        )


class Therapy:
    name = "therapy"
    after: tuple[str, ...] = ()

    def specs(self, catalog: FactCatalog, params: Params) -> list[FactSpec]:
        return [
            FactSpec(DRAFTS, "count", None, "how many orders for the drug are being signed (draftOrders)"),
            FactSpec(
                "therapy.orders",
                "count",
                None,
                "distinct orders for the drug in force or being signed (drafts and active orders that no "
                "counted order replaces); the detail lists them",
            ),
            FactSpec(
                "therapy.routes",
                "count",
                None,
                "how many different routes those orders are given by (e.g. 2 for an infusion and injections)",
            ),
            FactSpec(
                "therapy.total_daily_dose",
                "quantity",
                "mg/d",
                "the sum of the daily doses of those orders",
            ),
            FactSpec(
                "therapy.total_dose_rate_per_kg",
                "quantity",
                "mg/kg/h",
                "therapy.total_daily_dose per kg of body weight (patient.weight) per hour",
            ),
        ]

    def configure(
        self, params: Params, catalog: FactCatalog, before: Mapping[str, Configured]
    ) -> TherapySettings:
        require_dose_unit(catalog, DOSE_UNIT, self.name)
        classes = catalog.medications.classes
        medication = params.text("medication", tuple(classes))
        return TherapySettings(
            classes[medication],
            catalog.medications,
            catalog.units,
            {name: params.template(name, names) for name, names in WORDING.items()},
            catalog.units.text(catalog.medications.dose_unit),
        )


def _reference(raw: Json) -> str:
    ident = raw.get("id")
    return f"MedicationRequest/{ident if isinstance(ident, str) else '?'}"


def _replaces(raw: Json) -> set[str]:
    """The orders this one says it replaces (priorPrescription) or fulfils (basedOn), as Type/id."""
    references: list[Any] = [raw.get("priorPrescription"), *raw_list(raw.get("basedOn"))]
    found = set()
    for reference in references:
        target = reference.get("reference") if isinstance(reference, Mapping) else None
        if isinstance(target, str) and "/" in target:
            found.add("/".join(target.rstrip("/").split("/")[-2:]))
    return found
