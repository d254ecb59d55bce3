"""The update-draft-order suggestion builder: the draft rewritten as a bag build, valid FHIR R4."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from cds_service.cards.actions import ACTIONS, SuggestionContext, UpdateDraftOrder, updated_order, valid
from cds_service.facts.named import Fact, FactSpec

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LIGHT = "Protect the bag and the tubing from light."
BUILD = {
    "daily_dose": 2400.0,
    "interval": 8.0,
    "dose_per_bag": 800.0,
    "volume": 250.0,
    "rate": 31.25,
    "concentration": 3.2,
    "diluent": "sodium chloride 0.9%",
    "instruction": LIGHT,
    "description": "2400 mg/day as 800 mg in 250 mL NS q8h at 31.25 mL/h (3.2 mg/mL)",
    "order": "MedicationRequest/draft-1",
}
SHAPE_A = {
    "resourceType": "MedicationRequest",
    "id": "draft-1",
    "status": "draft",
    "intent": "order",
    "subject": {"reference": "Patient/p1"},
    "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "12345", "display": "drug"}]},
    "dosageInstruction": [
        {
            "text": "drug 2400 mg/day continuous IV infusion",
            "route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]},
            "doseAndRate": [{"rateQuantity": {"value": 2400, "unit": "mg/d", "code": "mg/d"}}],
        }
    ],
}
SPECS = {
    "x.build": FactSpec("x.build", "build", None, "a build"),
    "x.text": FactSpec("x.text", "text", None, "a text"),
}


def context(data: dict[str, Any] | None = BUILD, draft: dict[str, Any] = SHAPE_A) -> SuggestionContext:
    fact = Fact("x.build", "a build", data=data)
    return SuggestionContext("p1", {"x.build": fact}, {"MedicationRequest/draft-1": draft})


def test_registered_under_its_rule_file_name() -> None:
    assert isinstance(ACTIONS["update-draft-order"], UpdateDraftOrder)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "needs build"),
        ({"build": "x.nothing"}, "needs build"),
        ({"build": "x.text"}, "not a build fact"),
        ({"build": "x.build", "dose": 5}, "does not take ['dose']"),
    ],
)
def test_lint_names_bad_arguments(arguments: dict[str, Any], message: str) -> None:
    problems = UpdateDraftOrder().argument_problems(arguments, {}, SPECS)
    assert len(problems) == 1 and message in problems[0], problems


def test_a_build_fact_passes_lint() -> None:
    assert UpdateDraftOrder().argument_problems({"build": "x.build"}, {}, SPECS) == []


def test_the_update_keeps_the_draft_id_and_is_valid_r4() -> None:
    actions = UpdateDraftOrder().build({"build": "x.build"}, context())
    assert actions is not None and len(actions) == 1
    action = actions[0]
    assert action["type"] == "update"
    resource = action["resource"]
    MedicationRequest.model_validate(resource)
    assert resource["id"] == "draft-1"
    assert resource["subject"] == {"reference": "Patient/p1"}
    assert "medicationCodeableConcept" not in resource
    assert resource["medicationReference"]["reference"] == "#bag"


def test_the_bag_is_a_contained_medication_with_the_drug_strength_and_the_diluent() -> None:
    resource = updated_order(SHAPE_A, BUILD)
    (bag,) = resource["contained"]
    drug, diluent = bag["ingredient"]
    assert drug["itemCodeableConcept"]["coding"][0]["code"] == "12345"
    assert drug["strength"]["numerator"] == {
        "value": 800.0,
        "unit": "mg",
        "system": "http://unitsofmeasure.org",
        "code": "mg",
    }
    assert drug["strength"]["denominator"]["value"] == 250.0
    assert diluent == {"itemCodeableConcept": {"text": "sodium chloride 0.9%"}, "isActive": False}


def test_dose_rate_interval_and_light_protection_are_in_the_dosage() -> None:
    (dosage,) = updated_order(SHAPE_A, BUILD)["dosageInstruction"]
    assert dosage["timing"] == {"repeat": {"frequency": 1, "period": 8.0, "periodUnit": "h"}}
    (dose_and_rate,) = dosage["doseAndRate"]
    assert dose_and_rate["doseQuantity"]["value"] == 800.0
    assert dose_and_rate["rateQuantity"]["value"] == 31.25
    assert dose_and_rate["rateQuantity"]["code"] == "mL/h"
    assert dosage["additionalInstruction"] == [{"text": LIGHT}]
    assert "2400 mg/day" in dosage["text"]
    assert dosage["route"]["coding"][0]["code"] == "47625008"


def test_a_rate_is_written_to_two_decimals() -> None:
    (dosage,) = updated_order(SHAPE_A, {**BUILD, "interval": 6.0, "volume": 100.0, "rate": 100 / 6})[
        "dosageInstruction"
    ]
    assert dosage["doseAndRate"][0]["rateQuantity"]["value"] == 16.67


def test_a_bag_order_keeps_its_drug_coding_from_the_contained_medication() -> None:
    shape_b = {
        "resourceType": "MedicationRequest",
        "id": "draft-1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "contained": [
            {
                "resourceType": "Medication",
                "id": "old",
                "ingredient": [{"itemCodeableConcept": {"text": "drug"}, "isActive": True}],
            }
        ],
        "medicationReference": {"reference": "#old"},
    }
    resource = updated_order(shape_b, BUILD)
    MedicationRequest.model_validate(resource)
    bag = next(c for c in resource["contained"] if c["id"] == "bag")
    assert bag["ingredient"][0]["itemCodeableConcept"] == {"text": "drug"}


def test_the_draft_itself_is_not_changed() -> None:
    before = repr(SHAPE_A)
    updated_order(SHAPE_A, BUILD)
    assert repr(SHAPE_A) == before


@pytest.mark.parametrize(
    "ctx",
    [
        context(data=None),
        context(data={k: v for k, v in BUILD.items() if k != "rate"}),
        context(data={**BUILD, "order": "MedicationRequest/other"}),
    ],
    ids=["no-build", "incomplete-build", "unknown-draft"],
)
def test_no_suggestion_without_a_complete_build_for_a_known_draft(ctx: SuggestionContext) -> None:
    assert UpdateDraftOrder().build({"build": "x.build"}, ctx) is None


def test_an_invalid_resource_is_refused_not_sent() -> None:
    bad = updated_order(SHAPE_A, BUILD)
    bad["dosageInstruction"][0]["timing"] = {"repeat": {"period": "eight"}}
    with pytest.raises(ValueError):
        valid(MedicationRequest, bad)


def test_a_shape_already_proven_valid_is_not_validated_again() -> None:
    calls = []

    class Counting:
        @staticmethod
        def model_validate(resource: dict[str, Any]) -> None:
            calls.append(resource["id"])

    first = {**updated_order(SHAPE_A, BUILD), "id": "a"}
    assert valid(Counting, first) is first
    valid(Counting, {**first, "id": "b"})  # only the id differs
    valid(Counting, {**first, "status": "active"})
    assert calls == ["a", "a"]
