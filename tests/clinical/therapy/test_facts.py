"""The therapy calculation: every order for the drug in force or being signed, counted once, and their
total daily dose."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.clinical.base import ParameterError, Params
from cds_service.clinical.therapy.facts import Therapy, TherapySettings
from cds_service.facts.named import Fact, missing
from cds_service.ruleformat.rulefile import RuleFile
from cds_service.yamlfile import load_yaml
from tests.conftest import RULES
from tests.facts.support import RXNORM, SNOMED, UCUM, catalog, make_facts, resource, rule_params

ANAKINRA = {"coding": [{"system": RXNORM, "code": "72435"}]}
IV = {"coding": [{"system": SNOMED, "code": "47625008"}]}
SC = {"coding": [{"system": SNOMED, "code": "34206005"}]}


def settings(medication: str = "anakinra") -> TherapySettings:
    spec = RuleFile.model_validate(load_yaml(RULES / "duplicate-therapy.yaml").data)
    parameters = dict(spec.parameters)
    parameters["medication"] = parameters["medication"].model_copy(update={"value": medication})
    return Therapy().configure(Params(spec.id, parameters, catalog()), catalog(), {})


def infusion(ident: str, mg_per_day: float, status: str = "active", **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": ident,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": ANAKINRA,
        "dosageInstruction": [
            {
                "route": IV,
                "doseAndRate": [
                    {"rateQuantity": {"value": mg_per_day, "unit": "mg/d", "system": UCUM, "code": "mg/d"}}
                ],
            }
        ],
        **fields,
    }


def injection(ident: str, status: str = "draft", **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": ident,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {"text": "Kineret"},
        "dosageInstruction": [
            {
                "route": SC,
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": 100, "unit": "mg", "system": UCUM, "code": "mg"}}],
            }
        ],
        **fields,
    }


def compute(
    prior: list[dict[str, Any]] = (),  # type: ignore[assignment]
    drafts: list[dict[str, Any]] = (),  # type: ignore[assignment]
    weight: float | None = None,
    unavailable: dict[str, str] | None = None,
) -> dict[str, Fact]:
    facts = make_facts([resource(**r) for r in prior], drafts, unavailable=unavailable)
    kg = (
        Fact("patient.weight", weight, unit="kg", evidence=("Observation/w",))
        if weight
        else missing("patient.weight", "no body weight in the last 7 days")
    )
    return settings().compute({"patient.weight": kg}, facts)


def test_every_fact_is_produced() -> None:
    names = {s.name for s in Therapy().specs(catalog(), rule_params("duplicate-therapy"))}
    for out in (
        compute(),
        compute([infusion("a", 800)], [injection("d")]),
        compute(unavailable={"medications": "x"}),
    ):
        assert set(out) == names


def test_an_active_infusion_and_a_subcutaneous_draft_are_two_orders_by_two_routes() -> None:
    out = compute([infusion("a", 1200)], [injection("d")])
    assert (out["therapy.orders"].value, out["therapy.routes"].value) == (2, 2)
    assert out["therapy.total_daily_dose"].value == 1300
    assert out["therapy.orders"].evidence == ("MedicationRequest/d", "MedicationRequest/a")
    assert "MedicationRequest/a (active, 1200 mg/day continuous (iv))" in (out["therapy.orders"].detail or "")


def test_completed_orders_plans_and_other_drugs_are_not_counted() -> None:
    meropenem = {
        **infusion("m", 3000),
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "29561"}]},
    }
    prior = [
        infusion("done", 2400, status="completed"),
        {**infusion("plan", 400), "intent": "plan"},
        meropenem,
    ]
    out = compute(prior, [injection("d")])
    assert out["therapy.orders"].value == 1


@pytest.mark.parametrize(
    "draft",
    [
        injection("a"),  # the active order itself, revised
        injection("d", priorPrescription={"reference": "MedicationRequest/a"}),
        injection("d", basedOn=[{"reference": "https://ehr.example/fhir/MedicationRequest/a"}]),
    ],
    ids=["same-id", "priorPrescription", "basedOn"],
)
def test_an_order_the_draft_revises_or_replaces_is_counted_once(draft: dict[str, Any]) -> None:
    out = compute([infusion("a", 1200)], [draft])
    assert out["therapy.orders"].value == 1
    assert out["therapy.total_daily_dose"].value == 100


def test_a_filler_order_based_on_the_original_counts_once() -> None:
    out = compute(
        [
            infusion("original", 1200),
            infusion("filler", 1200, basedOn=[{"reference": "MedicationRequest/original"}]),
        ]
    )
    assert out["therapy.orders"].value == 1


def test_two_drafts_signed_together_are_two_orders() -> None:
    out = compute([], [infusion("d1", 1200, status="draft"), injection("d2")])
    assert (out["therapy.orders"].value, out["therapy.total_daily_dose"].value) == (2, 1300)


def test_the_total_per_kg_needs_the_weight() -> None:
    out = compute([infusion("a", 1200)], [infusion("d", 800, status="draft")], weight=40)
    assert out["therapy.total_dose_rate_per_kg"].value == pytest.approx(2000 / 40 / 24)
    assert out["therapy.total_dose_rate_per_kg"].evidence == (
        "MedicationRequest/d",
        "MedicationRequest/a",
        "Observation/w",
    )
    assert (
        compute([infusion("a", 1200)])["therapy.total_dose_rate_per_kg"].missing
        == "no body weight in the last 7 days"
    )


def test_an_order_without_a_daily_dose_leaves_the_total_unknown_and_names_it() -> None:
    undosed = infusion("a", 1200)
    undosed["dosageInstruction"][0]["doseAndRate"] = []
    out = compute([undosed], [injection("d")])
    assert out["therapy.orders"].value == 2
    assert (out["therapy.total_daily_dose"].missing or "").startswith(
        "MedicationRequest/a gives no daily dose (no dose given"
    )


def test_unread_orders_leave_the_count_unknown_unless_the_drafts_already_make_two() -> None:
    gap = {"medications": "HTTP 500"}
    assert compute([], [injection("d")], unavailable=gap)["therapy.orders"].missing == (
        "medication orders could not be read: HTTP 500"
    )
    two = compute([], [injection("d1"), injection("d2")], unavailable=gap)
    assert (two["therapy.orders"].value, two["therapy.orders"].comparator) == (2, ">=")
    assert "other anakinra orders are unknown" in (two["therapy.total_daily_dose"].missing or "")


def test_the_medication_is_the_rule_file_s() -> None:
    with pytest.raises(ParameterError, match="must be one of"):
        settings("aspirin")


def test_the_therapy_facts_are_worded_by_the_rule_file() -> None:
    spec = RuleFile.model_validate(load_yaml(RULES / "duplicate-therapy.yaml").data)
    parameters = dict(spec.parameters)
    for name, value in (
        ("order_text", "{order}: {summary} [{status}]"),
        ("per_kg_text", "{dose} {dose_unit}/d / {weight} kg"),
    ):
        parameters[name] = parameters[name].model_copy(update={"value": value})
    reworded = Therapy().configure(Params(spec.id, parameters, catalog()), catalog(), {})
    facts = make_facts([resource(**infusion("a", 1200))], [])
    kg = Fact("patient.weight", 40, unit="kg", evidence=("Observation/w",))
    out = reworded.compute({"patient.weight": kg}, facts)
    assert out["therapy.orders"].detail == "MedicationRequest/a: 1200 mg/day continuous (iv) [active]"
    assert out["therapy.total_dose_rate_per_kg"].detail == "1200 mg/d / 40 kg"
