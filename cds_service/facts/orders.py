"""Medication orders in every shape EHRs send, reduced to one normalised order (`order.*` facts).

Shapes (described clinically in docs/clinical/): A, a total daily dose as rateQuantity (per day, per hour,
per kg per hour);
B, a pharmacy bag build (a Medication with a strength, contained or referenced, a dose per bag,
an interval, a rate); C, a subcutaneous dose with a daily timing. Each value that cannot be derived
carries the reason, e.g. "no bag described", so a rule can say why it could not check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from cds_service.data.resources import Resource
from cds_service.facts import numbers
from cds_service.facts.coding import matches, mentions, raw_keys, raw_list, raw_texts
from cds_service.facts.knowledge import MedicationClass, Medications
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, FactSpec, missing
from cds_service.facts.units import UnitError, Units, tidy

Json = Mapping[str, Any]
Resolver = Callable[[str], Json | None]

# The order facts (and what each means), in the order explain lists them. Their units follow the drug's
# dose unit (medications.yaml `dose_unit`): see quantities().
_QUANTITIES = {
    "daily_dose": "total daily dose",
    "dose_per_bag": "drug per bag (or per dose)",
    "bag_volume": "volume of one bag",
    "interval": "time between bags or doses",
    "rate": "infusion rate; volume / interval when no rate is given",
    "concentration": "drug per mL of the bag",
    "hang_time": "how long one bag runs: volume / rate",
    "dose_rate_per_kg": "daily dose / 24 h / body weight (patient.weight)",
}
BAG_FACTS = ("dose_per_bag", "bag_volume", "rate", "concentration", "hang_time")
NO_BAG = "no bag described"
# The order.* facts of a service that orders nothing (patient-view): said in clinician words, never the
# engine's ("this service has no medication order").
NO_MEDICATION = "no medication is being ordered here"
# Where in a MedicationRequest a quantity was read, as a clinician would name it.
_SAID = (
    ("doseQuantity", "the dose"),
    ("rateQuantity", "the rate"),
    ("rateRatio", "the rate"),
    ("strength", "the strength of the bag"),
    ("timing", "the schedule"),
)


@dataclasses.dataclass(frozen=True)
class DoseUnits:
    """The UCUM units of an order's quantities, for a drug dosed in `amount` (medications.yaml)."""

    amount: str

    @property
    def daily(self) -> str:
        return f"{self.amount}/d"

    @property
    def hourly(self) -> str:
        return f"{self.amount}/h"

    @property
    def concentration(self) -> str:
        return f"{self.amount}/mL"

    @property
    def per_kg_hourly(self) -> str:
        return f"{self.amount}/kg/h"

    @property
    def per_kg_daily(self) -> str:
        return f"{self.amount}/kg/d"


def quantities(dose_unit: str) -> dict[str, str]:
    """The canonical UCUM unit of each order fact, for a drug dosed in `dose_unit`."""
    units = DoseUnits(dose_unit)
    return {
        "daily_dose": units.daily,
        "dose_per_bag": units.amount,
        "bag_volume": "mL",
        "interval": "h",
        "rate": "mL/h",
        "concentration": units.concentration,
        "hang_time": "h",
        "dose_rate_per_kg": units.per_kg_hourly,
    }


def _said(where: str) -> str:
    return next((words for prefix, words in _SAID if where.startswith(prefix)), where)


def being_ordered(hook: str | None) -> str:
    """How card text says an order is being placed on this hook: never "being signed" on order-select."""
    return {"order-sign": "being signed", "order-select": "being selected"}.get(hook or "", "being ordered")


@dataclasses.dataclass
class Normalised:
    """One MedicationRequest as numbers in the canonical units of _QUANTITIES; `why` explains each None."""

    id: str | None
    route: str | None  # a route name of medications.yaml, "other", or None when no route is given
    bag: bool
    values: dict[str, float]
    why: dict[str, str]
    summary: str
    dose_unit: (
        str  # the drug's dose unit (medications.yaml): the unit of dose_per_bag, per day for daily_dose
    )
    weighed: frozenset[str] = frozenset()  # values computed with the body weight below
    weight: Fact | None = None

    @property
    def reference(self) -> str:
        return f"MedicationRequest/{self.id}"


def order_specs(medications: Medications) -> list[FactSpec]:
    routes = (*medications.routes, "other")
    specs = [
        FactSpec(
            "order.present", "boolean", None, "a draft order for the service's medication is being signed"
        ),
        FactSpec("order.route", "text", None, f"route of the draft order: {', '.join(routes)}", routes),
        FactSpec(
            "order.bag_described",
            "boolean",
            None,
            "the order describes an infusion bag (volume, contents); false for a total-daily-dose or "
            "subcutaneous order",
        ),
    ]
    units = quantities(medications.dose_unit)
    specs += [
        FactSpec(f"order.{name}", "quantity", units[name], f"draft order: {text}")
        for name, text in _QUANTITIES.items()
    ]
    return specs


def order_facts(
    medications: Medications, facts: Facts, units: Units, medication: str | None, weight: Fact
) -> dict[str, Fact]:
    names = ["order.present", "order.route", "order.bag_described", *(f"order.{n}" for n in _QUANTITIES)]
    if medication is None:
        return {name: missing(name, NO_MEDICATION) for name in names}
    drug = medications.classes.get(medication)
    if drug is None:
        reason = f"unknown medication {medication!r} (not in rules/facts/medications.yaml)"
        return {name: missing(name, reason) for name in names}
    resolve = resolver(facts)
    for draft in facts.draft_orders:
        if draft.resource_type == "MedicationRequest" and is_medication(
            draft.raw, drug, medications, resolve
        ):
            order = normalised(facts, draft.raw, drug, medications, units, weight)
            return _as_facts(order)
    absent = f"no draft order for {drug.label}"
    out = {name: missing(name, absent) for name in names}
    out["order.present"] = Fact("order.present", False)
    return out


def resolver(facts: Facts) -> Resolver:
    """Finds a referenced Medication: in the draftOrders Bundle, or among prefetched resources."""
    resolve = facts.memo.get(_RESOLVER)
    if resolve is None:
        resolve = facts.memo[_RESOLVER] = _resolver(facts)
    return resolve  # type: ignore[no-any-return]


def order_json(facts: Facts, resource: Resource) -> dict[str, Any]:
    """A MedicationRequest of the request as the JSON `normalise` reads, made once per request."""
    key = (_JSON, id(resource))
    kept = facts.memo.get(key)
    if kept is None:
        # The resource is kept with its JSON: its id cannot be reused while the memo lives.
        kept = facts.memo[key] = (resource, msgspec.to_builtins(resource))
    return kept[1]  # type: ignore[no-any-return]


def normalised(
    facts: Facts, raw: Json, drug: MedicationClass | None, medications: Medications, units: Units, weight: Fact
) -> Normalised:
    """`normalise` once per request for one order, drug and weight: several calculations, the order's
    facts and the chart all read the same orders (16 normalisations per W1 call, 5 different)."""
    key = (_NORMALISED, id(raw), id(drug), id(medications), id(units), id(weight))
    kept = facts.memo.get(key)
    if kept is None:
        # What the key names is kept with the result: no id in it can be reused while the memo lives.
        order = normalise(raw, drug, medications, units, resolver(facts), weight)
        kept = facts.memo[key] = (raw, drug, medications, units, weight, order)
    return kept[-1]  # type: ignore[no-any-return]


_RESOLVER, _JSON, _NORMALISED = "resolver", "order json", "normalised"


def _resolver(facts: Facts) -> Resolver:
    found: dict[str, Json] = {}
    for draft in facts.draft_orders:
        if draft.resource_type == "Medication" and draft.id:
            found[f"Medication/{draft.id}"] = draft.raw
    for resource in facts.other.get("Medication", ()):
        if resource.id:
            found.setdefault(f"Medication/{resource.id}", msgspec.to_builtins(resource))
    return _RequestResolver(found)


class _RequestResolver:
    """A request's Medication resolver, which also remembers which drug each of its orders names: the
    named facts, four calculations and the chart ask that of the same orders (22 times per W1 call)."""

    def __init__(self, found: dict[str, Json]) -> None:
        self._found = found
        self.drug_of: dict[tuple[int, int, int], tuple[Json, MedicationClass, Medications, bool]] = {}

    def __call__(self, reference: str) -> Json | None:
        # A full URL (https://ehr/fhir/Medication/m1) ends with the relative reference.
        tail = "/".join(reference.rstrip("/").split("/")[-2:])
        return self._found.get(reference) or self._found.get(tail)


def medication_of(raw: Json, resolve: Resolver) -> tuple[Json | None, list[Json]]:
    """The order's Medication resource (contained or referenced), and every concept naming the drug."""
    concepts: list[Json] = []
    if isinstance(raw.get("medicationCodeableConcept"), Mapping):
        concepts.append(raw["medicationCodeableConcept"])
    reference = raw.get("medicationReference")
    medication: Json | None = None
    if isinstance(reference, Mapping):
        target = reference.get("reference")
        if isinstance(target, str) and target.startswith("#"):
            medication = next(
                (
                    c
                    for c in raw_list(raw.get("contained"))
                    if isinstance(c, Mapping)
                    and c.get("resourceType") == "Medication"
                    and c.get("id") == target[1:]
                ),
                None,
            )
        elif isinstance(target, str):
            medication = resolve(target)
        if isinstance(reference.get("display"), str):
            concepts.append({"text": reference["display"]})
    if medication is not None:
        if isinstance(medication.get("code"), Mapping):
            concepts.append(medication["code"])
        for ingredient in raw_list(medication.get("ingredient")):
            if isinstance(ingredient, Mapping) and isinstance(ingredient.get("itemCodeableConcept"), Mapping):
                concepts.append(ingredient["itemCodeableConcept"])
    return medication, concepts


def is_medication(raw: Json, drug: MedicationClass, medications: Medications, resolve: Resolver) -> bool:
    if not isinstance(resolve, _RequestResolver):
        return _names(raw, drug, medications, resolve)
    key = (id(raw), id(drug), id(medications))
    known = resolve.drug_of.get(key)
    if known is None:
        # What the key names is kept with the answer: no id in it can be reused while the resolver lives.
        known = resolve.drug_of[key] = (raw, drug, medications, _names(raw, drug, medications, resolve))
    return known[-1]


def _names(raw: Json, drug: MedicationClass, medications: Medications, resolve: Resolver) -> bool:
    _, concepts = medication_of(raw, resolve)
    return any(_concept_is(c, drug, medications) for c in concepts)


def _concept_is(concept: Json, drug: MedicationClass, medications: Medications) -> bool:
    return matches(drug.matcher, raw_keys(concept), raw_texts(concept), medications.ndc_systems)


def normalise(
    raw: Json,
    drug: MedicationClass | None,
    medications: Medications,
    units: Units,
    resolve: Resolver,
    weight: Fact,
) -> Normalised:
    """One MedicationRequest (raw JSON) as a normalised order; `drug` picks the ingredient of a bag."""
    dose_units = DoseUnits(drug.dose_unit if drug is not None else medications.dose_unit)
    read = _read(raw, drug, medications, units, resolve, dose_units)
    values: dict[str, float] = {}
    why: dict[str, str] = {}
    per_bag, bag = _bag(read, medications, values, why)
    weighed = _doses(read, per_bag, values.get("concentration"), weight, units, values, why)
    values = {name: tidy(value) for name, value in values.items()}
    summary = _summary(values, bag, read.dose, read.rate, read.route, units, dose_units)
    order_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    return Normalised(order_id, read.route, bag, values, why, summary, dose_units.amount, weighed, weight)


@dataclasses.dataclass
class _Read:
    """What the order states, each quantity in the canonical units it converts to (None otherwise)."""

    reader: _Reader
    dose_units: DoseUnits
    route: str | None
    dose: tuple[float, str] | None
    rate: tuple[float, str] | None
    dose_amount: float | None  # in the dose unit
    dose_ml: float | None
    rate_daily: float | None  # in the dose unit per day
    rate_per_kg: float | None  # in the dose unit per kg per hour
    rate_ml_h: float | None
    interval: float | None
    strength_amount: float | None
    strength_ml: float | None


def _read(
    raw: Json,
    drug: MedicationClass | None,
    medications: Medications,
    units: Units,
    resolve: Resolver,
    dose_units: DoseUnits,
) -> _Read:
    reader = _Reader(units)
    dosages = [d for d in raw_list(raw.get("dosageInstruction")) if isinstance(d, Mapping)]
    dosage: Json = dosages[0] if dosages else {}
    dose_rates = [d for d in raw_list(dosage.get("doseAndRate")) if isinstance(d, Mapping)]
    dose_rate: Json = dose_rates[0] if dose_rates else {}
    dose = reader.quantity(dose_rate.get("doseQuantity"), "doseQuantity")
    rate = reader.quantity(dose_rate.get("rateQuantity"), "rateQuantity")
    if rate is None and "rateQuantity" not in dose_rate:
        # R4 also writes a rate as a Ratio (100 mg per 1 h): the same rate, read the same way.
        rate = reader.ratio(dose_rate.get("rateRatio"), "rateRatio")
    read = _Read(
        reader,
        dose_units,
        _route(dosage.get("route"), medications),
        dose,
        rate,
        reader.to(dose, dose_units.amount),
        reader.to(dose, "mL"),
        reader.to(rate, dose_units.daily),
        reader.to(rate, dose_units.per_kg_hourly),
        reader.to(rate, "mL/h"),
        _interval(dosage.get("timing"), medications, reader),
        *_strength(medication_of(raw, resolve)[0], drug, medications, reader, dose_units),
    )
    if dose is not None and read.dose_amount is None and read.dose_ml is None:
        reader.problem(f"the dose is in {units.text(dose[1])}, neither a mass nor a volume")
    if rate is not None and read.rate_daily is None and read.rate_per_kg is None and read.rate_ml_h is None:
        reader.problem(f"the rate is in {units.text(rate[1])}, not a dose or volume per time")
    return read


def _bag(
    read: _Read, medications: Medications, values: dict[str, float], why: dict[str, str]
) -> tuple[float | None, bool]:
    """The bag facts into values/why; returns the drug per administration and whether a bag is described."""
    strength_amount, strength_ml = read.strength_amount, read.strength_ml
    concentration = strength_amount / strength_ml if strength_amount and strength_ml else None
    if not concentration:  # 5e-324 mg in 250 mL underflows to 0.0: no strength to divide by
        concentration = None
    per_bag, volume = read.dose_amount, read.dose_ml
    if per_bag is None and volume is not None and concentration is not None:
        per_bag = volume * concentration
    if volume is None and per_bag is not None and concentration is not None:
        volume = per_bag / concentration
    if read.dose is None and strength_amount and strength_ml:
        # No dose: the strength describes the whole bag (800 mg in 250 mL).
        per_bag, volume = strength_amount, strength_ml
    # A route that is not an infusion (a subcutaneous syringe, an oral liquid) describes no bag.
    route = medications.routes.get(read.route or "")
    infusion = read.route is None or (route is not None and route.infusion)
    bag = volume is not None and volume > 0 and infusion
    if concentration is None and per_bag is not None and volume:
        concentration = per_bag / volume
    interval = read.interval
    if interval is not None:
        values["interval"] = interval
    else:
        why["interval"] = NO_BAG if not bag else "no interval given (timing.repeat or timing.code)"
    if not bag or volume is None:
        why.update(dict.fromkeys(BAG_FACTS, NO_BAG))
        return per_bag, False
    no_amount = f"no drug amount per bag (no dose in {read.dose_units.amount} and no strength)"
    values["bag_volume"] = volume
    _put(values, why, "dose_per_bag", per_bag, no_amount)
    _put(values, why, "concentration", concentration, no_amount)
    rate = read.rate_ml_h if read.rate_ml_h else (volume / interval if interval else None)
    _put(values, why, "rate", rate, "no rate and no interval given")
    _put(values, why, "hang_time", volume / rate if rate else None, "no rate and no interval given")
    return per_bag, True


def _doses(
    read: _Read,
    per_bag: float | None,
    concentration: float | None,
    weight: Fact,
    units: Units,
    values: dict[str, float],
    why: dict[str, str],
) -> frozenset[str]:
    """order.daily_dose and order.dose_rate_per_kg into values/why; returns those the weight went into."""
    kg, weight_why = _kilograms(weight, units)
    daily: float | None = None
    weighed: set[str] = set()
    dose_units = read.dose_units
    if read.rate_daily is not None:
        daily = read.rate_daily
    elif read.rate_per_kg is not None:
        if kg is not None:
            daily = (
                read.rate_per_kg * kg * units.product_factor(dose_units.per_kg_hourly, "kg", dose_units.daily)
            )
            weighed.add("daily_dose")
        else:
            why["daily_dose"] = f"the dose is per kg and {weight_why}"
    elif per_bag is not None and read.interval:
        daily = units.convert(per_bag / read.interval, dose_units.hourly, dose_units.daily)
    elif read.rate_ml_h is not None and concentration is not None:
        daily = units.convert(read.rate_ml_h * concentration, dose_units.hourly, dose_units.daily)
    if daily is not None:
        values["daily_dose"] = daily
    else:
        why.setdefault(
            "daily_dose", read.reader.reason(read.dose, read.rate, read.interval, per_bag, dose_units.amount)
        )
    if read.rate_per_kg is not None:
        values["dose_rate_per_kg"] = read.rate_per_kg
    elif daily is not None and kg is not None:
        values["dose_rate_per_kg"] = units.convert(
            daily / kg, dose_units.per_kg_daily, dose_units.per_kg_hourly
        )
        weighed.add("dose_rate_per_kg")
    else:
        why["dose_rate_per_kg"] = why["daily_dose"] if daily is None else weight_why
    return frozenset(weighed)


def _as_facts(order: Normalised) -> dict[str, Fact]:
    evidence = (order.reference,)
    out = {
        "order.present": Fact("order.present", True, evidence=evidence, detail=order.summary),
        "order.bag_described": Fact(
            "order.bag_described", order.bag, evidence=evidence, detail=order.summary
        ),
    }
    if order.route is None:
        out["order.route"] = missing("order.route", "no route given", evidence, order.summary)
    else:
        out["order.route"] = Fact("order.route", order.route, evidence=evidence, detail=order.summary)
    for name, unit in quantities(order.dose_unit).items():
        key = f"order.{name}"
        if name in order.values and name in order.weighed and order.weight is not None:
            # Say which weight a per-kg value used: explain and the card can show it.
            weight = order.weight
            taken = f"; weight {weight.value:g} {weight.unit}" + (
                f" of {weight.time:%Y-%m-%d}" if weight.time else ""
            )
            out[key] = Fact(
                key,
                order.values[name],
                unit=unit,
                evidence=evidence + weight.evidence,
                detail=order.summary + taken,
            )
        elif name in order.values:
            out[key] = Fact(key, order.values[name], unit=unit, evidence=evidence, detail=order.summary)
        else:
            out[key] = missing(key, order.why[name], evidence, order.summary)
    return out


class _Reader:
    """Reads quantities leniently, remembering the first problem to explain a missing dose."""

    def __init__(self, units: Units) -> None:
        self.units = units
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def quantity(self, value: Any, where: str) -> tuple[float, str] | None:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            # Sent, but not as a Quantity: say so, rather than "no dose given".
            self.problem(f"{_said(where)} could not be read: a {_json_kind(value)}, not a quantity")
            return None
        number = value.get("value")
        if isinstance(number, bool) or not isinstance(number, int | float):
            self.problem(f"{_said(where)} has no number")
            return None
        unusable = numbers.problem(number)
        if unusable:
            self.problem(f"{_said(where)} {numbers.shown(number)} {unusable}")
            return None
        code = value.get("code") if isinstance(value.get("code"), str) else value.get("unit")
        unit = self.units.ucum(code if isinstance(code, str) else None)
        if unit is None:
            self.problem(f"{_said(where)} has no unit")
            return None
        try:
            self.units.check(unit)
        except UnitError:
            self.problem(f"{_said(where)} is in {self.units.text(unit)}")
            return None
        return float(number), unit

    def ratio(self, value: Any, where: str) -> tuple[float, str] | None:
        """A Ratio as one quantity: numerator / denominator, in the numerator's unit per the denominator's.
        A denominator without a value is one unit of it (FHIR: "1" is implied)."""
        if not isinstance(value, Mapping):
            return None
        numerator = self.quantity(value.get("numerator"), f"{where}.numerator")
        denominator_raw = value.get("denominator")
        if numerator is None or not isinstance(denominator_raw, Mapping):
            if numerator is not None:
                self.problem(f"{_said(where)} has no 'per' part (a time or volume)")
            return None
        if "value" not in denominator_raw:
            denominator_raw = {**denominator_raw, "value": 1}
        denominator = self.quantity(denominator_raw, f"{where}.denominator")
        if denominator is None or not denominator[0] > 0:
            if denominator is not None:
                self.problem(f"{_said(where)} is per zero or less")
            return None
        per = denominator[1] if "/" not in denominator[1] else f"({denominator[1]})"
        unit = f"{numerator[1]}/{per}"
        try:
            self.units.check(unit)
        except UnitError:
            self.problem(f"{_said(where)} is in {self.units.text(unit)}")
            return None
        return numerator[0] / denominator[0], unit

    def to(self, quantity: tuple[float, str] | None, unit: str) -> float | None:
        if quantity is None:
            return None
        converted = self.units.try_convert(quantity[0], quantity[1], unit)
        if converted is None:
            return None
        unusable = numbers.problem(converted)
        if unusable:
            value, code = quantity
            self.problem(
                f"{self.units.quantity(numbers.shown(value), code)} is "
                f"{numbers.shown(converted)} {self.units.text(unit)}, which {unusable}"
            )
            return None
        return converted

    def reason(
        self,
        dose: tuple[float, str] | None,
        rate: tuple[float, str] | None,
        interval: float | None,
        per_bag: float | None,
        dose_unit: str,
    ) -> str:
        if self.problems:
            return self.problems[0]
        if dose is None and rate is None and per_bag is None:
            return "no dose given (no dose, rate or bag strength)"
        if interval is None:
            return "a dose per administration but no schedule to make it a daily dose"
        return f"the dose is not in {dose_unit}"


def _put(values: dict[str, float], why: dict[str, str], name: str, value: float | None, reason: str) -> None:
    if value is not None and value > 0:
        values[name] = value
    else:
        why[name] = reason


def order_routes(raw: Json, medications: Medications) -> list[str | None]:
    """The route of each dosageInstruction: a route name of medications.yaml, "other", or None (none
    given); one None for an order without any dosageInstruction."""
    dosages = [d for d in raw_list(raw.get("dosageInstruction")) if isinstance(d, Mapping)]
    return [_route(d.get("route"), medications) for d in dosages] or [None]


def route_in_text(texts: list[str], medications: Medications) -> str | None:
    """A route named in a medication's own text ("vancomycin 125 mg oral capsule"), if any."""
    for text in texts:
        route = _route({"text": text}, medications)
        if route not in (None, "other"):
            return route
    return None


def _route(route: Any, medications: Medications) -> str | None:
    keys, texts = raw_keys(route), raw_texts(route)
    if not keys and not texts:
        return None
    for known in medications.routes.values():
        if any(k in known.codes for k in keys) or any(mentions(known.text, t) for t in texts):
            return known.name
    return "other"


def _interval(timing: Any, medications: Medications, reader: _Reader) -> float | None:
    """Hours between doses: timing.repeat (frequency per period), else a timing code (Q8H, BID)."""
    if not isinstance(timing, Mapping):
        return None
    repeat = timing.get("repeat")
    period = repeat.get("period") if isinstance(repeat, Mapping) else None
    if isinstance(repeat, Mapping) and isinstance(period, int | float) and not isinstance(period, bool):
        frequency = repeat.get("frequency")
        count = frequency if isinstance(frequency, int) and frequency > 0 else 1
        unit = repeat.get("periodUnit")
        if isinstance(unit, str) and period > 0:
            # periodUnit is a UCUM code (s, min, h, d, wk, mo, a).
            hours = reader.to((period / count, unit), "h") if numbers.usable(period) else None
            if hours is not None:
                return hours
            if reader.units.try_convert(1.0, unit, "h") is None:
                reader.problem(f"the schedule's period is in {reader.units.text(unit)}, not a time")
            else:
                reader.problem(
                    f"the schedule's period of {reader.units.quantity(numbers.shown(period), unit)} cannot be "
                    "computed with"
                )
    code = timing.get("code")
    for candidate in [k.partition("|")[2] for k in raw_keys(code)] + raw_texts(code):
        hours = medications.timing_codes.get(candidate.strip().upper())
        if hours is not None:
            return hours
    if code is not None:
        reader.problem(
            f"the schedule code {', '.join(raw_texts(code) or raw_keys(code))!r} is not one this service knows"
        )
    return None


def _strength(
    medication: Json | None,
    drug: MedicationClass | None,
    medications: Medications,
    reader: _Reader,
    dose_units: DoseUnits,
) -> tuple[float | None, float | None]:
    """The drug amount and mL of its strength in the Medication (800 mg / 250 mL), if one is given."""
    if medication is None:
        return None, None
    ingredients = [
        i for i in raw_list(medication.get("ingredient")) if isinstance(i, Mapping) and i.get("strength")
    ]
    chosen = None
    if drug is not None:
        chosen = next(
            (i for i in ingredients if _concept_is(i.get("itemCodeableConcept") or {}, drug, medications)),
            None,
        )
    chosen = chosen or next((i for i in ingredients if i.get("isActive") is True), None)
    chosen = chosen or (ingredients[0] if ingredients else None)
    if chosen is None or not isinstance(chosen.get("strength"), Mapping):
        return None, None
    numerator = reader.quantity(chosen["strength"].get("numerator"), "strength.numerator")
    denominator = reader.quantity(chosen["strength"].get("denominator"), "strength.denominator")
    return reader.to(numerator, dose_units.amount), reader.to(denominator, "mL")


def _kilograms(weight: Fact, units: Units) -> tuple[float | None, str]:
    if not isinstance(weight.value, int | float) or isinstance(weight.value, bool) or weight.value <= 0:
        return None, weight.missing or "no body weight"
    return units.convert(float(weight.value), weight.unit or "kg", "kg"), ""


def _summary(
    values: Mapping[str, float],
    bag: bool,
    dose: tuple[float, str] | None,
    rate: tuple[float, str] | None,
    route: str | None,
    units: Units,
    dose_units: DoseUnits,
) -> str:
    parts: list[str] = []
    if bag:
        if "dose_per_bag" in values:
            parts.append(f"{units.quantity(format(values['dose_per_bag'], 'g'), dose_units.amount)} in")
        parts.append(f"{values['bag_volume']:g} mL")
    elif rate is not None:
        parts.append(units.quantity(f"{rate[0]:g}", rate[1]))
    elif dose is not None:
        parts.append(units.quantity(f"{dose[0]:g}", dose[1]))
    if "interval" in values:
        parts.append(f"every {values['interval']:g} h")
    elif rate is not None and not bag:
        parts.append("continuous")
    if bag and "rate" in values:
        parts.append(f"at {values['rate']:g} mL/h")
    daily = units.quantity(f"{values['daily_dose']:g}", dose_units.daily) if "daily_dose" in values else None
    if daily is not None and parts[:1] != [daily]:
        parts.append(f"= {daily}")
    if route:
        parts.append(f"({route})")
    return " ".join(parts) or "no dose given"


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return "list" if isinstance(value, list) else "JSON value"
