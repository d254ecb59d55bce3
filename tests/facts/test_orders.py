"""order.* facts from every order shape in order-representation.md (A daily dose, B bag build, C subcutaneous)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cds_service.facts.coding import ndc11
from cds_service.facts.named import Fact
from tests.facts.support import RXNORM, SNOMED, UCUM, facts_of, fixture, observation, resource

ANAKINRA = {"system": RXNORM, "code": "72435", "display": "anakinra"}
IV = {"coding": [{"system": SNOMED, "code": "47625008"}]}
SC = {"coding": [{"system": SNOMED, "code": "34206005"}]}
EVERY_8_H = {"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}}


def qty(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def shape_a(rate: dict[str, Any], **concept: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": "draft-1",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": concept or {"coding": [ANAKINRA]},
        "dosageInstruction": [{"route": IV, "doseAndRate": [{"rateQuantity": rate}]}],
    }


BAG = {
    "resourceType": "Medication",
    "id": "bag",
    "code": {"text": "anakinra 800 mg in sodium chloride 0.9% 250 mL"},
    "ingredient": [
        {
            "itemCodeableConcept": {"coding": [ANAKINRA]},
            "isActive": True,
            "strength": {"numerator": qty(800, "mg"), "denominator": qty(250, "mL")},
        },
        {"itemCodeableConcept": {"text": "sodium chloride 0.9%"}, "isActive": False},
    ],
}


def shape_b() -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": "draft-2",
        "status": "draft",
        "intent": "order",
        "contained": [copy.deepcopy(BAG)],
        "medicationReference": {"reference": "#bag"},
        "dosageInstruction": [
            {
                "route": IV,
                "timing": copy.deepcopy(EVERY_8_H),
                "doseAndRate": [{"doseQuantity": qty(800, "mg"), "rateQuantity": qty(31.25, "mL/h")}],
            }
        ],
    }


def shape_c(concept: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": "draft-3",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": concept or {"text": "Kineret 100 mg/0.67 mL prefilled syringe"},
        "dosageInstruction": [
            {
                "route": SC,
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": qty(100, "mg")}],
            }
        ],
    }


def order(drafts: list[dict[str, Any]], resources: list[Any] | None = None, **kwargs: Any) -> dict[str, Fact]:
    patient = fixture("mas-adult-female") if resources is None else resources
    return facts_of(patient, drafts, **kwargs)


def values(facts: dict[str, Fact]) -> dict[str, Any]:
    return {name: fact.value for name, fact in facts.items() if name.startswith("order.")}


# --- shape A: total daily dose ----------------------------------------------------------------------


@pytest.mark.parametrize("rate", [qty(2400, "mg/d"), qty(100, "mg/h"), qty(2400, "mg/day")])
def test_shape_a_daily_dose(rate: dict[str, Any]) -> None:
    facts = order([shape_a(rate)])
    assert facts["order.present"].value is True
    assert facts["order.route"].value == "iv"
    assert facts["order.daily_dose"].value == 2400
    assert facts["order.daily_dose"].unit == "mg/d"
    assert facts["order.bag_described"].value is False
    for name in ("dose_per_bag", "bag_volume", "rate", "concentration", "hang_time", "interval"):
        assert facts[f"order.{name}"].missing == "no bag described"
    # 2400 mg/d at the fixture's 67.9 kg
    assert facts["order.dose_rate_per_kg"].value == pytest.approx(2400 / 24 / 67.9)
    assert facts["order.daily_dose"].evidence == ("MedicationRequest/draft-1",)


def ratio_order(ratio: dict[str, Any]) -> dict[str, Any]:
    draft = shape_a(qty(0, "mg/d"))
    draft["dosageInstruction"][0]["doseAndRate"] = [{"rateRatio": ratio}]
    return draft


@pytest.mark.parametrize(
    "ratio",
    [
        {"numerator": qty(100, "mg"), "denominator": qty(1, "h")},
        {"numerator": qty(2400, "mg"), "denominator": qty(24, "h")},
        {"numerator": qty(2400, "mg"), "denominator": {"unit": "d", "system": UCUM, "code": "d"}},
    ],
)
def test_a_rate_given_as_a_ratio_is_read(ratio: dict[str, Any]) -> None:
    facts = order([ratio_order(ratio)])
    assert facts["order.daily_dose"].value == pytest.approx(2400)
    assert facts["order.dose_rate_per_kg"].value == pytest.approx(2400 / 24 / 67.9)


def test_a_ratio_per_kg_needs_the_weight_and_a_bad_ratio_says_why() -> None:
    per_kg = {"numerator": qty(2, "mg/kg"), "denominator": qty(1, "h")}
    assert order([ratio_order(per_kg)])["order.dose_rate_per_kg"].value == 2
    no_denominator = order([ratio_order({"numerator": qty(100, "mg")})])["order.daily_dose"]
    assert no_denominator.missing == "the rate has no 'per' part (a time or volume)"
    zero = order([ratio_order({"numerator": qty(100, "mg"), "denominator": qty(0, "h")})])["order.daily_dose"]
    assert zero.missing == "the rate is per zero or less"
    empty = shape_a(qty(0, "mg/d"))
    empty["dosageInstruction"][0]["doseAndRate"] = [{}]
    assert (
        order([empty])["order.daily_dose"].missing or ""
    ) == "no dose given (no dose, rate or bag strength)"


def test_shape_a_exactly_two_mg_per_kg_per_hour() -> None:
    weight = observation("w50", "29463-7", 50, "kg", "2026-11-23T08:00:00Z")
    facts = order([shape_a(qty(2400, "mg/d"))], [*fixture("mas-adult-female"), weight])
    assert facts["order.dose_rate_per_kg"].value == 2.0


def test_shape_a_per_kg_rate_with_a_weight() -> None:
    facts = order([shape_a(qty(1.5, "mg/kg/h"))])
    assert facts["order.dose_rate_per_kg"].value == 1.5
    assert facts["order.daily_dose"].value == pytest.approx(1.5 * 67.9 * 24)


def test_shape_a_per_kg_rate_without_a_weight_says_why() -> None:
    facts = order([shape_a(qty(1.5, "mg/kg/h"))], fixture("sparse"))
    assert facts["order.dose_rate_per_kg"].value == 1.5
    assert facts["order.daily_dose"].value is None
    assert facts["order.daily_dose"].missing == "the dose is per kg and no body weight in the last 7 days"


def test_without_a_weight_the_rate_per_kg_is_missing() -> None:
    facts = order([shape_a(qty(1200, "mg/d"))], fixture("sparse"))
    assert facts["order.daily_dose"].value == 1200
    assert facts["order.dose_rate_per_kg"].missing == "no body weight in the last 7 days"


# --- shape B: bag build -----------------------------------------------------------------------------


def _dose(draft: dict[str, Any]) -> dict[str, Any]:
    dose_and_rate: dict[str, Any] = draft["dosageInstruction"][0]["doseAndRate"][0]
    return dose_and_rate


def dose_in_ml(draft: dict[str, Any]) -> None:
    _dose(draft)["doseQuantity"] = qty(250, "mL")


def no_dose(draft: dict[str, Any]) -> None:
    del _dose(draft)["doseQuantity"]


def timing_code(draft: dict[str, Any]) -> None:
    draft["dosageInstruction"][0]["timing"] = {"code": {"text": "q8h"}}


def no_rate(draft: dict[str, Any]) -> None:
    del _dose(draft)["rateQuantity"]


def as_given(draft: dict[str, Any]) -> None:
    pass


@pytest.mark.parametrize("variant", [as_given, dose_in_ml, no_dose, timing_code, no_rate])
def test_shape_b_variants(variant: Any) -> None:
    draft = shape_b()
    variant(draft)
    facts = order([draft])
    assert values(facts) == {
        "order.present": True,
        "order.route": "iv",
        "order.bag_described": True,
        "order.daily_dose": 2400,
        "order.dose_per_bag": 800,
        "order.bag_volume": 250,
        "order.interval": 8,
        "order.rate": 31.25,
        "order.concentration": 3.2,
        "order.hang_time": 8,
        "order.dose_rate_per_kg": pytest.approx(2400 / 24 / 67.9),
    }
    assert facts["order.rate"].evidence == ("MedicationRequest/draft-2",)
    assert facts["order.rate"].detail == "800 mg in 250 mL every 8 h at 31.25 mL/h = 2400 mg/day (iv)"


def test_shape_b_medication_in_the_draft_orders_bundle() -> None:
    draft = shape_b()
    del draft["contained"]
    draft["medicationReference"] = {"reference": "Medication/bag-1"}
    medication = {**copy.deepcopy(BAG), "id": "bag-1"}
    facts = order([draft, medication])
    assert (facts["order.dose_per_bag"].value, facts["order.concentration"].value) == (800, 3.2)


def test_shape_b_medication_in_prefetch() -> None:
    draft = shape_b()
    del draft["contained"]
    no_dose(draft)
    draft["medicationReference"] = {"reference": "Medication/bag-2"}
    medication = resource(**{**copy.deepcopy(BAG), "id": "bag-2"})
    facts = order([draft], [*fixture("mas-adult-female"), medication])
    assert (facts["order.dose_per_bag"].value, facts["order.bag_volume"].value) == (800, 250)
    assert facts["order.daily_dose"].value == 2400


def test_shape_b_q6h_timing_code() -> None:
    draft = shape_b()
    draft["dosageInstruction"][0]["timing"] = {"code": {"coding": [{"code": "Q6H"}]}}
    no_rate(draft)
    facts = order([draft])
    assert facts["order.interval"].value == 6
    assert facts["order.daily_dose"].value == 3200
    assert facts["order.rate"].value == pytest.approx(41.6666666667)
    assert facts["order.hang_time"].value == 6


def test_a_rate_slower_than_the_interval_gives_the_real_hang_time() -> None:
    draft = shape_b()
    _dose(draft)["rateQuantity"] = qty(25, "mL/h")
    assert order([draft])["order.hang_time"].value == 10


def test_a_bag_without_timing_says_so() -> None:
    draft = shape_b()
    del draft["dosageInstruction"][0]["timing"]
    no_rate(draft)
    facts = order([draft])
    assert facts["order.interval"].missing == "no interval given (timing.repeat or timing.code)"
    assert facts["order.rate"].missing == "no rate and no interval given"
    assert facts["order.daily_dose"].missing is not None
    assert "schedule" in facts["order.daily_dose"].missing


# --- shape C: subcutaneous --------------------------------------------------------------------------


def test_shape_c_subcutaneous() -> None:
    facts = order([shape_c()])
    assert values(facts) | {"order.dose_rate_per_kg": None} == {
        "order.present": True,
        "order.route": "sc",
        "order.bag_described": False,
        "order.daily_dose": 100,
        "order.dose_per_bag": None,
        "order.bag_volume": None,
        "order.interval": 24,
        "order.rate": None,
        "order.concentration": None,
        "order.hang_time": None,
        "order.dose_rate_per_kg": None,
    }
    assert facts["order.bag_volume"].missing == "no bag described"


# --- recognising the medication ---------------------------------------------------------------------


def test_another_drug_is_not_the_order() -> None:
    meropenem = shape_a(qty(3000, "mg/d"), coding=[{"system": RXNORM, "code": "29561"}])
    facts = order([meropenem])
    assert facts["order.present"].value is False
    assert facts["order.daily_dose"].missing == "no draft order for anakinra"


@pytest.mark.parametrize("code", ["66658-234-07", "66658-0234-28", "66658023407"])
def test_recognised_by_ndc(code: str) -> None:
    concept = {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": code}]}
    assert order([shape_c(concept)])["order.present"].value is True


def test_an_unlisted_ndc_is_not_recognised() -> None:
    concept = {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "66658-234-99"}]}
    assert order([shape_c(concept)])["order.present"].value is False


def test_recognised_by_text() -> None:
    assert order([shape_c({"text": "KINERET 100 MG/0.67 ML"})])["order.present"].value is True
    assert order([shape_c({"coding": [{"display": "Anakinra injection"}]})])["order.present"].value is True


def test_ndc_normal_form() -> None:
    assert ndc11("66658-234-07") == ndc11("66658-0234-07") == "66658023407"
    assert ndc11("0781-1506-10") == "00781150610"
    assert ndc11("11523-7020-1") == "11523702001"


def test_the_first_matching_draft_is_used() -> None:
    other = shape_a(qty(3000, "mg/d"), coding=[{"system": RXNORM, "code": "29561"}])
    second = {**shape_a(qty(1200, "mg/d")), "id": "draft-9"}
    facts = order([other, shape_a(qty(2400, "mg/d")), second])
    assert facts["order.daily_dose"].value == 2400


def test_a_service_without_a_medication_has_no_order_facts() -> None:
    facts = order([shape_a(qty(2400, "mg/d"))], medication=None)
    assert all(
        f.value is None and f.missing == "no medication is being ordered here"
        for name, f in facts.items()
        if name.startswith("order.")
    )


def test_route_missing_and_other() -> None:
    draft = shape_a(qty(2400, "mg/d"))
    del draft["dosageInstruction"][0]["route"]
    assert order([draft])["order.route"].missing == "no route given"
    draft["dosageInstruction"][0]["route"] = {"text": "intrathecal"}
    assert order([draft])["order.route"].value == "other"
    draft["dosageInstruction"][0]["route"] = {"text": "Intravenous route"}
    assert order([draft])["order.route"].value == "iv"


def test_a_dose_in_an_unknown_unit_says_why() -> None:
    draft = shape_c()
    draft["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = qty(1, "syringe")
    facts = order([draft])
    assert facts["order.daily_dose"].missing == "the dose is in an unrecognised unit"


def test_a_per_kg_value_names_the_weight_it_used() -> None:
    fact = order([shape_a(qty(2400, "mg/d"))])["order.dose_rate_per_kg"]
    assert fact.evidence == ("MedicationRequest/draft-1", "Observation/mas-f1-weight-02")
    assert fact.detail == "2400 mg/day continuous (iv); weight 67.9 kg of 2026-11-20"


def test_objects_where_fhir_has_arrays_are_read_as_one_item() -> None:
    # Sloppy clients send a single object for an array (the CDS Hooks sandbox does for `category`).
    draft = shape_a(qty(2400, "mg/d"))
    draft["dosageInstruction"] = draft["dosageInstruction"][0]
    draft["dosageInstruction"]["doseAndRate"] = draft["dosageInstruction"]["doseAndRate"][0]
    draft["medicationCodeableConcept"] = {"coding": ANAKINRA}
    draft["category"] = {"coding": [{"code": "community"}]}
    facts = order([draft])
    assert facts["order.present"].value is True
    assert (facts["order.daily_dose"].value, facts["order.route"].value) == (2400, "iv")


@pytest.mark.parametrize(
    "sent, kind", [("2400 mg/d", "text"), (2400, "number"), ([qty(2400, "mg/d")], "list")]
)
def test_a_dose_sent_but_not_as_a_quantity_says_it_could_not_be_read(sent: Any, kind: str) -> None:
    draft = shape_a(qty(2400, "mg/d"))
    draft["dosageInstruction"][0]["doseAndRate"][0]["rateQuantity"] = sent
    facts = order([draft])
    assert facts["order.daily_dose"].missing == f"the rate could not be read: a {kind}, not a quantity"
