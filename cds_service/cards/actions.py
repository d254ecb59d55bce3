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


class Action(Protocol):
    def argument_problems(
        self, arguments: Mapping[str, Any], parameters: Mapping[str, Any], specs: Mapping[str, FactSpec]
    ) -> list[str]: ...

    def build(self, arguments: Mapping[str, Any], context: SuggestionContext) -> list[dict[str, Any]] | None:
        """CDS Hooks actions, or None when this suggestion cannot be made for this request."""
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
        return [
            {"type": "create", "description": f"Order {display}", "resource": valid(ServiceRequest, resource)}
        ]


# What a build fact's `data` holds (the infusion calculation writes it): numbers in these units, plus
# `order` (the draft's "MedicationRequest/id"), `diluent` and `instruction` texts.
BUILD_KEYS = ("daily_dose", "interval", "dose_per_bag", "volume", "rate", "concentration")


class UpdateDraftOrder:
    """Rewrite the draft medication order, keeping its id, as the bag build a fact describes: a contained
    Medication (the drug's strength in the bag), the dose per bag every `interval` hours at `rate`, the
    total daily dose in the dosage text, and the handling instruction (e.g. light protection) as an
    additional instruction (order-representation.md, "What the suggestion writes back").

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

    def build(self, arguments: Mapping[str, Any], context: SuggestionContext) -> list[dict[str, Any]] | None:
        fact = context.facts.get(str(arguments["build"]))
        if fact is None or fact.data is None:
            return None
        data = fact.data
        if any(key not in data for key in (*BUILD_KEYS, "order")):
            return None
        draft = context.draft_orders.get(str(data["order"]))
        if draft is None:
            return None
        try:
            resource = valid(MedicationRequest, updated_order(draft, data))
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
                "description": f"Change the order to {data.get('description') or fact.value}",
                "resource": resource,
            }
        ]


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


def updated_order(draft: Mapping[str, Any], build: Mapping[str, Any]) -> dict[str, Any]:
    """The draft as the EHR sent it, with its medication and dosage replaced by `build`."""
    order = copy.deepcopy(dict(draft))
    concept = _drug_concept(order)
    diluent = str(build.get("diluent") or "")
    dose, volume = _number(build["dose_per_bag"]), _number(build["volume"])
    name = concept.get("text") or next(
        (c.get("display") for c in concept.get("coding", []) if c.get("display")), "medication"
    )
    ingredients: list[dict[str, Any]] = [
        {
            "itemCodeableConcept": concept,
            "isActive": True,
            "strength": {
                "numerator": _quantity(dose, "mg"),
                "denominator": _quantity(volume, "mL"),
            },
        }
    ]
    if diluent:
        ingredients.append({"itemCodeableConcept": {"text": diluent}, "isActive": False})
    bag_text = (
        f"{name} {dose:g} mg in {diluent} {volume:g} mL"
        if diluent
        else f"{name} {dose:g} mg in {volume:g} mL"
    )
    contained = [c for c in order.get("contained", []) if c.get("id") != "bag"]
    contained.append(
        {"resourceType": "Medication", "id": "bag", "code": {"text": bag_text}, "ingredient": ingredients}
    )
    order["contained"] = contained
    order.pop("medicationCodeableConcept", None)
    order["medicationReference"] = {"reference": "#bag", "display": bag_text}
    order.setdefault("status", "draft")
    order.setdefault("intent", "order")
    previous = (order.get("dosageInstruction") or [{}])[0]
    interval = _number(build["interval"])
    rate = round(_number(build["rate"]), 2)
    dosage: dict[str, Any] = {
        # The total daily dose stays readable, as the prescriber ordered it (order-representation.md).
        "text": f"{name} {_number(build['daily_dose']):g} mg/day continuous IV infusion: {dose:g} mg in "
        f"{volume:g} mL {diluent} every {interval:g} h at {rate:g} mL/h".replace("  ", " "),
        "timing": {"repeat": {"frequency": 1, "period": interval, "periodUnit": "h"}},
        "doseAndRate": [
            {
                "doseQuantity": _quantity(dose, "mg"),
                "rateQuantity": _quantity(rate, "mL/h"),
            }
        ],
    }
    if previous.get("route"):
        dosage["route"] = previous["route"]
    instruction = build.get("instruction")
    if instruction:
        dosage["additionalInstruction"] = [{"text": str(instruction)}]
    order["dosageInstruction"] = [dosage]
    return order


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
