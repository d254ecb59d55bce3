"""Suggestion builders that rule files name by `action:`; each returns CDS Hooks actions whose resources
are checked FHIR R4 (fhir.resources R4B) before any EHR sees them.

A builder knows how to write an order, never why: what to order and when to suggest it comes from the
rule file.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

import orjson
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from cds_service.facts.named import Fact, FactSpec

FhirModel = Any  # a fhir.resources R4B model class

UCUM = "http://unitsofmeasure.org"

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SuggestionContext:
    patient_id: str | None
    facts: Mapping[str, Fact]
    # Draft orders as the EHR sent them, by "ResourceType/id".
    draft_orders: Mapping[str, dict[str, Any]]
    # The description templates of ruleset.yaml `response.actions`, by builder (DESCRIPTIONS).
    descriptions: Mapping[str, str] = dataclasses.field(default_factory=dict)


# The builders whose action description is a template of ruleset.yaml (`response.actions`), with the
# placeholders each may name.
DESCRIPTIONS: dict[str, tuple[str, ...]] = {"order-lab-test": ("display",)}


class Action(Protocol):
    def argument_problems(
        self, arguments: Mapping[str, Any], parameters: Mapping[str, Any], specs: Mapping[str, FactSpec]
    ) -> list[str]: ...

    def build(self, arguments: Mapping[str, Any], context: SuggestionContext) -> list[dict[str, Any]] | None:
        """CDS Hooks actions, or None when this suggestion cannot be made for this request."""
        ...

    def key(self, arguments: Mapping[str, Any], facts: Mapping[str, Fact]) -> tuple[Any, ...]:
        """What makes two suggestions the same whatever their wording: one response never offers it twice."""
        ...


class OrderLabTest:
    """Create a draft lab ServiceRequest, e.g. a repeat ferritin or a CBC with differential.

    arguments: code (system|code), display, optional note.
    """

    def argument_problems(
        self, arguments: Mapping[str, Any], parameters: Mapping[str, Any], specs: Mapping[str, FactSpec]
    ) -> list[str]:
        problems = []
        code = arguments.get("code")
        system, _, value = code.partition("|") if isinstance(code, str) else ("", "", "")
        if not (system.strip() and value.strip()):
            problems.append("order-lab-test needs code: system|code (e.g. http://loinc.org|2276-4)")
        display = arguments.get("display")
        if not isinstance(display, str) or not display.strip():
            problems.append("order-lab-test needs display: the test's name")
        unknown = set(arguments) - {"code", "display", "note"}
        if unknown:
            problems.append(f"order-lab-test does not take {sorted(unknown)}")
        return problems

    def build(self, arguments: Mapping[str, Any], context: SuggestionContext) -> list[dict[str, Any]] | None:
        if not context.patient_id:
            return None
        system, _, code = str(arguments["code"]).partition("|")
        display = str(arguments["display"])
        resource: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "id": str(uuid.uuid4()),
            "status": "draft",
            "intent": "proposal",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://snomed.info/sct",
                            "code": "108252007",
                            "display": "Laboratory procedure",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
            "subject": {"reference": f"Patient/{context.patient_id}"},
        }
        if arguments.get("note"):
            resource["note"] = [{"text": str(arguments["note"])}]
        # Lint makes a ruleset that uses this builder word it; a bare context says the test's name.
        template = context.descriptions.get("order-lab-test")
        description = template.format_map({"display": display}) if template else display
        return [{"type": "create", "description": description, "resource": valid(ServiceRequest, resource)}]

    def key(self, arguments: Mapping[str, Any], facts: Mapping[str, Fact]) -> tuple[Any, ...]:
        # The same test, whatever the label or note says it is for.
        return ("order-lab-test", str(arguments.get("code")))


# What a build fact's `data` holds (the calculation that provides it writes it): `form` "bag" (the
# default) with BUILD_KEYS, or "dose" (unit doses by another route, e.g. subcutaneous) with DOSE_KEYS;
# `units`, the UCUM unit of each number (UNIT_KEYS), and `unit_text`, the dose unit as people write it;
# `wording`, the order's texts as templates of the rule file (WORDING: the placeholders each may name);
# `order` (the draft's "MedicationRequest/id"); for bags the `diluent` and `instruction` texts.
BUILD_KEYS = ("daily_dose", "interval", "dose_per_bag", "volume", "rate", "concentration")
DOSE_KEYS = ("daily_dose", "interval", "dose", "route_label")
UNIT_KEYS = {"bag": ("dose", "volume", "rate", "interval"), "dose": ("dose", "interval")}
# {name} is the drug as the draft names it; numbers are written as the order carries them.
WORDING: dict[str, dict[str, tuple[str, ...]]] = {
    "bag": {
        "medication": ("name", "dose_per_bag", "dose_unit", "diluent", "volume"),
        "dosage": (
            "name",
            "daily_dose",
            "dose_per_bag",
            "dose_unit",
            "volume",
            "diluent",
            "interval",
            "rate",
        ),
        "change": ("build",),
    },
    "dose": {
        "dosage": ("name", "daily_dose", "dose", "dose_unit", "route", "interval"),
        "change": ("build",),
    },
}
# Timing.repeat elements that say how often the old order was given; the build sets its own interval, so
# these are deliberately replaced (count is rescaled to keep the same planned duration). Everything else
# in the draft (the planned stop in boundsPeriod, notes, dispense request, other dosage lines...) is kept.
_SCHEDULE = (
    "frequency",
    "frequencyMax",
    "period",
    "periodMax",
    "periodUnit",
    "duration",
    "durationMax",
    "durationUnit",
    "dayOfWeek",
    "timeOfDay",
    "when",
    "offset",
)
_SAME = 1e-6


class UpdateDraftOrder:
    """Rewrite the draft medication order, keeping its id, as the build a fact describes: a bag (a
    contained Medication with the drug's strength in the bag, the dose per bag every `interval` hours at
    `rate`, the total daily dose in the dosage text, and the handling instruction, e.g. light protection,
    as an additional instruction; order-representation.md, "What the suggestion writes back"), or unit
    doses by another route (the drug, the dose every `interval` hours by that route).

    Only the medication and the dose, rate and schedule of the first dosage line change; every other
    element of the draft is kept. No suggestion is made when the draft already is that build: a
    suggestion never equals the order it replaces.

    arguments: build: the name of a fact whose `data` is a build (e.g. infusion.recommended).
    """

    def argument_problems(
        self, arguments: Mapping[str, Any], parameters: Mapping[str, Any], specs: Mapping[str, FactSpec]
    ) -> list[str]:
        problems = []
        build = arguments.get("build")
        if not isinstance(build, str) or build not in specs:
            problems.append(f"update-draft-order needs build: the name of a build fact (got {build!r})")
        elif specs[build].kind != "build":
            problems.append(f"update-draft-order: {build} is not a build fact (it is a {specs[build].kind})")
        unknown = set(arguments) - {"build"}
        if unknown:
            problems.append(f"update-draft-order does not take {sorted(unknown)}")
        return problems

    def key(self, arguments: Mapping[str, Any], facts: Mapping[str, Fact]) -> tuple[Any, ...]:
        # The same order, whichever build fact describes it (the recommended build may be the ceiling's).
        fact = facts.get(str(arguments.get("build")))
        data = {k: v for k, v in (fact.data or {}).items() if k != "description"} if fact else {}
        return ("update-draft-order", orjson.dumps(data, option=orjson.OPT_SORT_KEYS, default=str))

    def build(self, arguments: Mapping[str, Any], context: SuggestionContext) -> list[dict[str, Any]] | None:
        fact = context.facts.get(str(arguments["build"]))
        if fact is None or fact.data is None:
            return None
        data = fact.data
        form = "dose" if data.get("form") == "dose" else "bag"
        keys = DOSE_KEYS if form == "dose" else BUILD_KEYS
        if any(key not in data for key in (*keys, "order", "unit_text")) or not _worded(data, form):
            return None
        draft = context.draft_orders.get(str(data["order"]))
        if draft is None or _already(data, context.facts):
            return None
        try:
            rewritten = updated_order(draft, data, _draft_interval(data, context.facts))
            if rewritten == draft:
                return None
            resource = valid(MedicationRequest, rewritten)
        except (ValueError, TypeError, AttributeError, LookupError) as exc:  # pydantic's is a ValueError
            # The draft is the EHR's JSON, read leniently upstream; rewritten, it is not a valid
            # MedicationRequest (an element FHIR does not define, a wrong type). The card stands; only
            # the one-click update is not offered. The log says where, not what: the values are the patient's.
            where = (
                ", ".join(".".join(map(str, error["loc"])) for error in exc.errors())
                if isinstance(exc, ValidationError)
                else type(exc).__name__
            )
            log.warning(
                "draft %.200r cannot be rewritten as a valid order (%s): no update offered",
                data["order"],
                where,
            )
            return None
        return [
            {
                "type": "update",
                "description": _say(
                    data["wording"]["change"], {"build": data.get("description") or fact.value}
                ),
                "resource": resource,
            }
        ]


def _worded(data: Mapping[str, Any], form: str) -> bool:
    """Whether the build carries the unit of each number and every wording template its form needs."""
    units, wording = data.get("units"), data.get("wording")
    return (
        isinstance(units, Mapping)
        and all(isinstance(units.get(key), str) for key in UNIT_KEYS[form])
        and isinstance(wording, Mapping)
        and all(isinstance(wording.get(key), str) for key in WORDING[form])
    )


def _say(template: str, values: Mapping[str, Any]) -> str:
    """A wording template of the rule file, filled (an empty value leaves no double space)."""
    return template.format_map(values).replace("  ", " ")


def _values(build: Mapping[str, Any], name: str) -> dict[str, str]:
    """What the order wording templates may name, as the order writes it."""
    values = {
        "name": name,
        "dose_unit": str(build["unit_text"]),
        "diluent": str(build.get("diluent") or ""),
        "route": str(build.get("route_label") or ""),
    }
    for key in ("daily_dose", "dose_per_bag", "volume", "interval", "dose"):
        if key in build:
            values[key] = f"{_number(build[key]):g}"
    if "rate" in build:
        values["rate"] = f"{round(_number(build['rate']), 2):g}"
    return values


def _draft_interval(build: Mapping[str, Any], facts: Mapping[str, Fact]) -> float | None:
    """The interval of the draft being rewritten, in hours, as the order facts read it (UCUM-converted)."""
    present, interval = facts.get("order.present"), facts.get("order.interval")
    if present is None or present.value is not True or present.evidence[:1] != (build["order"],):
        return None
    value = interval.value if interval is not None else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _already(build: Mapping[str, Any], facts: Mapping[str, Fact]) -> bool:
    """Whether the draft the order.* facts describe already is this build (same dose, bag and interval)."""
    present = facts.get("order.present")
    if present is None or present.value is not True or present.evidence[:1] != (build["order"],):
        return False

    def same(fact_name: str, value: Any) -> bool:
        fact = facts.get(fact_name)
        number = fact.value if fact is not None else None
        if isinstance(number, bool) or not isinstance(number, int | float):
            return False
        return abs(float(number) - float(value)) <= _SAME * max(1.0, abs(float(value)))

    if build.get("form") == "dose":
        route = facts.get("order.route")
        return (
            route is not None
            and route.value == build.get("route")
            and same("order.dose_per_bag", build["dose"])
            and same("order.interval", build["interval"])
        )
    bag = facts.get("order.bag_described")
    return (
        bag is not None
        and bag.value is True
        and same("order.daily_dose", build["daily_dose"])
        and same("order.dose_per_bag", build["dose_per_bag"])
        and same("order.bag_volume", build["volume"])
        and same("order.interval", build["interval"])
    )


# Resources already proven valid, by their JSON without `id` (a fresh uuid, valid by construction). A
# suggestion is re-made for every request that earns it; validating the same shape again is waste.
_VALID: dict[bytes, None] = {}
_VALID_MAX = 512


def valid(model: type[FhirModel], resource: dict[str, Any]) -> dict[str, Any]:
    """`resource`, once fhir.resources (R4B) has accepted it; raises pydantic's ValidationError if not."""
    key = model.__name__.encode() + orjson.dumps(
        {k: v for k, v in resource.items() if k != "id"}, option=orjson.OPT_SORT_KEYS
    )
    if key not in _VALID:
        # The model is the check; the dict we built is what is sent (FHIR JSON as written, no re-dump).
        model.model_validate(resource)
        if len(_VALID) >= _VALID_MAX:
            _VALID.pop(next(iter(_VALID)))
        _VALID[key] = None
    return resource


def updated_order(
    draft: Mapping[str, Any], build: Mapping[str, Any], old_interval: float | None = None
) -> dict[str, Any]:
    """The draft as the EHR sent it, with its medication and first dosage line's dose, rate and schedule
    replaced by `build`; every other element is kept (the planned stop, notes, other dosage lines).
    `old_interval` is the draft's interval in hours (order.interval), to rescale a count of doses."""
    order = copy.deepcopy(dict(draft))
    concept = _drug_concept(order)
    name = concept.get("text") or next(
        (c.get("display") for c in concept.get("coding", []) if c.get("display")), "medication"
    )
    order.setdefault("status", "draft")
    order.setdefault("intent", "order")
    dosages = order.get("dosageInstruction")
    dosages = list(dosages) if isinstance(dosages, list) and dosages else [{}]
    previous = dosages[0] if isinstance(dosages[0], dict) else {}
    if build.get("form") == "dose":
        _drop_medication(order)
        order["medicationCodeableConcept"] = concept
        dosages[0] = _unit_dose_dosage(previous, build, name, old_interval)
    else:
        _drop_medication(order)
        bag_text = _bag(order, concept, name, build)
        order["medicationReference"] = {"reference": f"#{_BAG}", "display": bag_text}
        dosages[0] = _bag_dosage(previous, build, name, old_interval)
    order["dosageInstruction"] = dosages
    return order


_BAG = "bag"


def _drop_medication(order: dict[str, Any]) -> None:
    """Remove the medication the order names (a code, or a reference and the contained resource it
    points to); other contained resources are kept."""
    order.pop("medicationCodeableConcept", None)
    reference = order.pop("medicationReference", None)
    target = reference.get("reference") if isinstance(reference, dict) else None
    contained = order.get("contained")
    if isinstance(contained, list):
        dropped = {target[1:]} if isinstance(target, str) and target.startswith("#") else set()
        dropped.add(_BAG)
        kept = [c for c in contained if not (isinstance(c, dict) and c.get("id") in dropped)]
        if kept:
            order["contained"] = kept
        else:
            order.pop("contained")


def _bag(order: dict[str, Any], concept: dict[str, Any], name: str, build: Mapping[str, Any]) -> str:
    """Add the bag as a contained Medication; returns its description."""
    diluent = str(build.get("diluent") or "")
    dose, volume = _number(build["dose_per_bag"]), _number(build["volume"])
    units = build["units"]
    ingredients: list[dict[str, Any]] = [
        {
            "itemCodeableConcept": concept,
            "isActive": True,
            "strength": {
                "numerator": _quantity(dose, units["dose"]),
                "denominator": _quantity(volume, units["volume"]),
            },
        }
    ]
    if diluent:
        ingredients.append({"itemCodeableConcept": {"text": diluent}, "isActive": False})
    bag_text = _say(build["wording"]["medication"], _values(build, name))
    existing = order.get("contained", [])
    if not isinstance(existing, list):
        # Not FHIR; replacing it would drop what the EHR sent: no update is made from this draft.
        raise TypeError("contained is not a list")
    contained: list[Any] = existing
    order["contained"] = [
        *contained,
        {"resourceType": "Medication", "id": _BAG, "code": {"text": bag_text}, "ingredient": ingredients},
    ]
    return bag_text


def _bag_dosage(
    previous: Mapping[str, Any], build: Mapping[str, Any], name: str, old: float | None
) -> dict[str, Any]:
    dosage = copy.deepcopy(dict(previous))
    units = build["units"]
    dose, interval = _number(build["dose_per_bag"]), _number(build["interval"])
    rate = round(_number(build["rate"]), 2)
    # The total daily dose stays readable, as the prescriber ordered it (order-representation.md).
    dosage["text"] = _say(build["wording"]["dosage"], _values(build, name))
    dosage["timing"] = _timing(previous.get("timing"), interval, units["interval"], old)
    dosage["doseAndRate"] = [
        {"doseQuantity": _quantity(dose, units["dose"]), "rateQuantity": _quantity(rate, units["rate"])}
    ]
    instruction = build.get("instruction")
    if instruction:
        existing = dosage.get("additionalInstruction")
        existing = list(existing) if isinstance(existing, list) else []
        if not any(isinstance(e, dict) and e.get("text") == str(instruction) for e in existing):
            existing.append({"text": str(instruction)})
        dosage["additionalInstruction"] = existing
    return dosage


def _unit_dose_dosage(
    previous: Mapping[str, Any], build: Mapping[str, Any], name: str, old: float | None
) -> dict[str, Any]:
    dosage = copy.deepcopy(dict(previous))
    dose, interval = _number(build["dose"]), _number(build["interval"])
    label = str(build["route_label"])
    units = build["units"]
    dosage["text"] = _say(build["wording"]["dosage"], _values(build, name))
    dosage["timing"] = _timing(previous.get("timing"), interval, units["interval"], old)
    dosage["doseAndRate"] = [{"doseQuantity": _quantity(dose, units["dose"])}]
    coding = build.get("route_coding")
    route: dict[str, Any] = {"text": label}
    if isinstance(coding, Mapping):
        route["coding"] = [dict(coding)]
    dosage["route"] = route
    return dosage


def _timing(previous: Any, interval: float, unit: str, old: float | None) -> dict[str, Any]:
    """The draft's timing with the new interval (in `unit`, a FHIR UnitsOfTime code): its bounds (the planned stop) are kept; a count of
    administrations is rescaled from the `old` interval (order.interval, in the same unit, when known) to keep the planned duration;
    codes and times of the old schedule go."""
    timing: dict[str, Any] = copy.deepcopy(previous) if isinstance(previous, dict) else {}
    timing.pop("code", None)  # "Q8H" would contradict the new interval
    timing.pop("event", None)  # administration times of the old schedule
    repeat: dict[str, Any] = timing["repeat"] if isinstance(timing.get("repeat"), dict) else {}
    for key in _SCHEDULE:
        repeat.pop(key, None)
    for key in ("count", "countMax"):
        count = repeat.get(key)
        if old is not None and isinstance(count, int) and not isinstance(count, bool):
            repeat[key] = max(1, round(count * old / interval))
        elif key in repeat:
            repeat.pop(key)  # a count of the old administrations, with no interval to rescale it from
    repeat.update({"frequency": 1, "period": interval, "periodUnit": unit})
    timing["repeat"] = repeat
    return timing


def _drug_concept(order: Mapping[str, Any]) -> dict[str, Any]:
    concept = order.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        return copy.deepcopy(concept)
    reference = (order.get("medicationReference") or {}).get("reference", "")
    for contained in order.get("contained", []):
        if f"#{contained.get('id')}" == reference:
            for ingredient in contained.get("ingredient", []):
                if ingredient.get("isActive", True) and isinstance(
                    ingredient.get("itemCodeableConcept"), dict
                ):
                    return copy.deepcopy(ingredient["itemCodeableConcept"])
            if isinstance(contained.get("code"), dict):
                return copy.deepcopy(contained["code"])
    display = (order.get("medicationReference") or {}).get("display")
    return {"text": display} if display else {"text": "medication"}


def _number(value: Any) -> float:
    return float(value)


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


ACTIONS: dict[str, Action] = {"order-lab-test": OrderLabTest(), "update-draft-order": UpdateDraftOrder()}
