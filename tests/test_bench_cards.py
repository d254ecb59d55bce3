"""bench/cards.py's counting, on small made-up responses: a duplicate suggestion and a contradiction are
found, and what is neither is not counted."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import pytest

from cds_service.facts.named import Fact
from cds_service.facts.orders import normalise
from tests.conftest import ROOT
from tests.facts.support import catalog


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_cards", ROOT / "bench" / "cards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_cards"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _card(rule: str, *suggestions: dict[str, Any], indicator: str = "info") -> dict[str, Any]:
    card: dict[str, Any] = {
        "summary": f"a card from {rule}",
        "indicator": indicator,
        "extension": {"cds-service-provenance": {"ruleId": rule, "ruleVersion": "1.0.0"}},
    }
    if suggestions:
        card["suggestions"] = list(suggestions)
    return card


def _test_order(code: str, ident: str) -> dict[str, Any]:
    resource = {
        "resourceType": "ServiceRequest",
        "id": ident,  # a fresh uuid per suggestion: never what makes two orders differ
        "status": "draft",
        "intent": "proposal",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/p1"},
    }
    return {"label": f"Order {code}", "actions": [{"type": "create", "resource": resource}]}


def _dose_order(mg_per_day: float, recommended: bool = False) -> dict[str, Any]:
    resource = {
        "resourceType": "MedicationRequest",
        "id": "draft-1",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": "anakinra"},
        "dosageInstruction": [
            {
                "route": {"text": "IV"},
                "doseAndRate": [
                    {
                        "rateQuantity": {
                            "value": mg_per_day,
                            "system": "http://unitsofmeasure.org",
                            "code": "mg/d",
                        }
                    }
                ],
            }
        ],
    }
    suggestion: dict[str, Any] = {
        "label": f"Order {mg_per_day:g} mg/day",
        "actions": [{"type": "update", "resource": resource}],
    }
    if recommended:
        suggestion["isRecommended"] = True
    return suggestion


def test_the_same_test_suggested_by_two_cards_is_one_duplicate(bench: ModuleType) -> None:
    cards = [
        _card("neutropenia", _test_order("57021-8", "a")),
        _card("neutrophil-baseline", _test_order("57021-8", "b")),
        _card("ferritin-rise", _test_order("2276-4", "c")),
    ]
    found = bench.duplicate_suggestions(cards)
    assert [(d.rules, d.extra) for d in found] == [(("neutropenia", "neutrophil-baseline"), 1)]


def test_different_tests_and_different_doses_are_not_duplicates(bench: ModuleType) -> None:
    cards = [
        _card("hlh-2004", _test_order("76039-7", "a"), _test_order("3255-7", "b")),
        _card("infusion-build", _dose_order(400), _dose_order(600)),
    ]
    assert bench.duplicate_suggestions(cards) == []


def test_the_same_order_suggested_twice_is_a_duplicate(bench: ModuleType) -> None:
    cards = [_card("infusion-build", _dose_order(1200)), _card("renal-dose", _dose_order(1200))]
    assert [d.extra for d in bench.duplicate_suggestions(cards)] == [1]


def _parameters(values: Mapping[tuple[str, str], tuple[float, str]]) -> Any:
    return lambda rule, name: values.get((rule, name))


def _daily_dose(resource: Mapping[str, Any]) -> float | None:
    known = catalog()
    drug = known.medications.classes["anakinra"]
    weight = Fact("patient.weight", 40.0, unit="kg")
    order = normalise(resource, drug, known.medications, known.units, lambda _: None, weight)
    return order.values.get("daily_dose")


MAX_DOSE = {("max-dose", "max_daily_dose"): (2400.0, "mg/d"), ("max-dose", "max_dose_rate"): (2.0, "mg/kg/h")}


def test_a_recommended_build_above_the_per_kg_ceiling_of_another_card_is_a_contradiction(
    bench: ModuleType,
) -> None:
    cards = [
        _card("max-dose", indicator="warning"),
        _card("infusion-build", _dose_order(2400, recommended=True)),
    ]
    facts = {"patient.weight": Fact("patient.weight", 40.0, unit="kg")}
    ceilings = bench.stated_ceilings(
        cards, {"max-dose": "fired"}, _parameters(MAX_DOSE), facts, catalog().convert
    )
    # 2 mg/kg/h x 40 kg x 24 h = 1920 mg/day, below the 2400 mg/day maximum.
    assert sorted(round(c.value) for c in ceilings) == [1920, 2400]
    found = bench.contradictions(cards, ceilings, _daily_dose)
    assert [(c.rule, c.dose, c.recommended, c.ceiling.what, round(c.ceiling.value)) for c in found] == [
        ("infusion-build", 2400, True, "max_dose_rate", 1920)
    ]


def test_a_dose_above_the_renal_dose_is_a_contradiction_only_when_the_renal_card_says_so(
    bench: ModuleType,
) -> None:
    cards = [
        _card("renal-dose", _dose_order(1200)),
        _card("infusion-build", _dose_order(2400, recommended=True)),
    ]
    facts = {"renal.reduced_dose": Fact("renal.reduced_dose", 1200.0, unit="mg/d")}
    fired = bench.stated_ceilings(cards, {"renal-dose": "fired"}, _parameters({}), facts, catalog().convert)
    found = bench.contradictions(cards, fired, _daily_dose)
    # The renal card's own 1200 mg/day build is at its ceiling, not above; the 2400 build is above.
    assert [(c.rule, c.dose) for c in found] == [("infusion-build", 2400)]
    # The renal card that could not evaluate states no reduced dose: nothing to contradict.
    unknown = bench.stated_ceilings(
        cards, {"renal-dose": "unknown"}, _parameters({}), facts, catalog().convert
    )
    assert unknown == []


def test_a_dose_within_every_stated_ceiling_is_no_contradiction(bench: ModuleType) -> None:
    cards = [
        _card("max-dose", indicator="warning"),
        _card("infusion-build", _dose_order(1800, recommended=True)),
    ]
    facts = {"patient.weight": Fact("patient.weight", 40.0, unit="kg")}
    ceilings = bench.stated_ceilings(
        cards, {"max-dose": "fired"}, _parameters(MAX_DOSE), facts, catalog().convert
    )
    assert bench.contradictions(cards, ceilings, _daily_dose) == []


def test_data_only_cards(bench: ModuleType) -> None:
    unknown = _card("max-dose")
    lab_only = _card("neutropenia", _test_order("57021-8", "a"))
    warning_with_lab = _card("neutropenia", _test_order("57021-8", "b"), indicator="warning")
    dose = _card("infusion-build", _dose_order(600))
    statuses = {"max-dose": "unknown", "neutropenia": "fired", "infusion-build": "fired"}
    assert [bench.asks_only_for_data(c, statuses) for c in (unknown, lab_only, warning_with_lab, dose)] == [
        True,
        True,
        False,
        False,
    ]


def test_nearest_rank_percentile(bench: ModuleType) -> None:
    assert bench.nearest_rank([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9
    assert bench.nearest_rank([7], 0.9) == 7
