"""medications.* facts: the other medication orders of the record."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.data.resources import Resource
from tests.facts.support import RXNORM, SNOMED, facts_of, fixture, resource


def test_fixture_active_orders() -> None:
    facts = facts_of(fixture("mas-adult-female"))
    antibacterial = facts["medications.antibacterial.active"]
    assert antibacterial.value is True
    assert antibacterial.evidence == ("MedicationRequest/mas-f1-meropenem",)
    assert facts["medications.antibacterial.daily_dose"].value == 3000  # 1 g every 8 h
    assert facts["medications.anakinra.active"].value is True
    assert facts["medications.anakinra.daily_dose"].value == 2400  # 100 mg/h


def medication_request(ident: str, status: str = "active", **fields: Any) -> Resource:
    return resource(resourceType="MedicationRequest", id=ident, status=status, intent="order", **fields)


def test_an_atc_j01_code_is_an_antibacterial() -> None:
    concept = {"coding": [{"system": "http://www.whocc.no/atc", "code": "J01DD04"}]}
    facts = facts_of([medication_request("cro", medicationCodeableConcept=concept)])
    assert facts["medications.antibacterial.active"].value is True
    assert facts["medications.antibacterial.daily_dose"].missing is not None


def test_only_active_orders_count() -> None:
    concept = {"coding": [{"system": RXNORM, "code": "29561"}]}
    facts = facts_of([medication_request("old", status="completed", medicationCodeableConcept=concept)])
    assert facts["medications.antibacterial.active"].value is False
    assert facts["medications.antibacterial.daily_dose"].missing == "no active systemic antibacterial order"


def antibacterial(concept: dict[str, Any], route: dict[str, Any] | None) -> Resource:
    dosage: dict[str, Any] = {"route": route} if route is not None else {}
    return medication_request("abx", medicationCodeableConcept=concept, dosageInstruction=[dosage])


ORAL = {"coding": [{"system": SNOMED, "code": "26643006"}]}


@pytest.mark.parametrize(
    ("concept", "route", "expected"),
    [
        ({"coding": [{"system": RXNORM, "code": "11124"}]}, ORAL, False),  # vancomycin by mouth
        ({"text": "vancomycin 125 MG Oral Capsule"}, None, False),  # the route named by the drug's text
        ({"coding": [{"system": RXNORM, "code": "11124"}]}, {"text": "IV"}, True),
        ({"text": "vancomycin enema"}, {"text": "PR"}, False),
        ({"coding": [{"system": RXNORM, "code": "82122"}]}, ORAL, True),  # levofloxacin by mouth
        ({"text": "levofloxacin 5 MG/ML Ophthalmic Solution"}, {"text": "both eyes"}, False),
        ({"text": "Bactrim DS"}, {"text": "PO"}, True),
        (
            {"text": "sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet"},
            {"text": "per NG tube"},
            True,
        ),
        (
            {"coding": [{"system": "http://www.whocc.no/atc", "code": "J01XE01"}]},
            ORAL,
            False,
        ),  # nitrofurantoin
        ({"text": "gentamicin 0.1 % cream"}, {"text": "topical"}, False),
        ({"text": "tobramycin"}, {"text": "nebulized"}, False),
        ({"coding": [{"system": RXNORM, "code": "29561"}]}, None, True),  # meropenem: no route, no exception
    ],
)
def test_systemic_antibacterials_by_drug_and_route(
    concept: dict[str, Any], route: dict[str, Any] | None, expected: bool
) -> None:
    fact = facts_of([antibacterial(concept, route)])["medications.antibacterial.active"]
    assert fact.value is expected, fact


def test_an_antibacterial_that_is_not_systemic_by_some_route_needs_its_route() -> None:
    fact = facts_of([antibacterial({"text": "vancomycin"}, None)])["medications.antibacterial.active"]
    assert fact.value is None
    assert fact.missing is not None
    assert "MedicationRequest/abx (vancomycin) gives no route" in fact.missing


def test_a_systemic_order_decides_beside_one_that_cannot_be_placed() -> None:
    unplaced = antibacterial({"text": "vancomycin"}, None)
    systemic = medication_request(
        "cro",
        medicationCodeableConcept={"text": "ceftriaxone"},
        dosageInstruction=[{"route": {"text": "IV"}}],
    )
    fact = facts_of([unplaced, systemic])["medications.antibacterial.active"]
    assert fact.value is True
    assert fact.evidence == ("MedicationRequest/cro",)


def test_unreadable_medication_orders_are_unknown_not_absent() -> None:
    facts = facts_of(unavailable={"medications": "it was not prefetched and no fhirServer was given"})
    fact = facts["medications.antibacterial.active"]
    assert fact.value is None
    assert (
        fact.missing
        == "medication orders could not be read: it was not prefetched and no fhirServer was given"
    )
