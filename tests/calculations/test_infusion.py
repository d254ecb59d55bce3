"""The infusion calculation: the ordered bag checked against the rule file's limits, and the builds it
proposes (the arithmetic itself is tested in tests/calculators/test_bags.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from cds_service.calculations.base import ParameterError, Params
from cds_service.calculations.infusion import Infusion, InfusionSettings
from cds_service.engine.rulefile import RuleFile
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, missing
from cds_service.yamlfile import load_yaml
from tests.conftest import RULES
from tests.facts.support import catalog

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REF = "MedicationRequest/draft-1"


def rule(name: str) -> RuleFile:
    return RuleFile.model_validate(load_yaml(RULES / f"{name}.yaml").data)


def settings(parameters: Mapping[str, Any] | None = None) -> InfusionSettings:
    spec = rule("infusion-build")
    params = Params(spec.id, parameters if parameters is not None else spec.parameters, catalog())
    return Infusion().configure(params, catalog(), {})


def order(daily: float | None, route: str | None = "iv", **bag: float) -> dict[str, Fact]:
    named = {
        "order.present": Fact("order.present", True, evidence=(REF,)),
        "order.route": Fact("order.route", route) if route else missing("order.route", "no route given"),
        "order.daily_dose": Fact("order.daily_dose", daily, unit="mg/d")
        if daily is not None
        else missing("order.daily_dose", "mg/kg/h needs a body weight"),
        "order.bag_described": Fact("order.bag_described", bool(bag)),
    }
    for name in ("dose_per_bag", "bag_volume", "interval", "rate"):
        value = bag.get(name)
        key = f"order.{name}"
        named[key] = Fact(key, value) if value is not None else missing(key, "no bag described")
    return named


def compute(named: dict[str, Fact]) -> dict[str, Fact]:
    return settings().compute(named, Facts(NOW, "order-sign", "h-1", "p1"))


def test_every_fact_of_the_specs_is_produced() -> None:
    names = {s.name for s in Infusion().specs(catalog())}
    for named in (
        order(500),
        order(2400),
        order(None),
        order(800, route="sc"),
        order(2400, dose_per_bag=800),
    ):
        assert set(compute(named)) == names


@pytest.mark.parametrize(
    ("named", "problem"),
    [
        (order(500), "unbuildable"),
        (order(2400), "undescribed"),
        (order(2400, dose_per_bag=800, bag_volume=250, interval=8, rate=31.25), "ok"),
        (order(2400, dose_per_bag=800, bag_volume=100, interval=8), "violates"),
        (order(3000), "above-maximum"),
        # An unbuildable dose is named as such even when the bag also breaks a limit: no same-dose fix exists.
        (order(500, dose_per_bag=250, bag_volume=50, interval=12), "unbuildable"),
    ],
)
def test_the_problem_with_the_order(named: dict[str, Fact], problem: str) -> None:
    assert compute(named)["infusion.problem"].value == problem


@pytest.mark.parametrize(
    ("named", "reason"),
    [
        (order(800, route="sc"), "not an infusion order (route sc)"),
        (order(800, route=None), "the route is unknown"),
        (order(None), "mg/kg/h needs a body weight"),
        (
            {**order(800), "order.present": missing("order.present", "no draft order for the drug")},
            "no draft",
        ),
    ],
)
def test_nothing_is_claimed_without_an_infusion_and_a_daily_dose(named: dict[str, Fact], reason: str) -> None:
    out = compute(named)
    assert all(f.value is None for f in out.values())
    assert reason in (out["infusion.problem"].missing or "")


def test_builds_carry_the_order_reference_diluent_and_light_protection() -> None:
    out = compute(order(500))
    lower = out["infusion.lower"]
    assert lower.value == "400 mg/day as 100 mg in 100 mL NS q6h at 16.67 mL/h (1 mg/mL)"
    assert lower.data is not None
    assert lower.data["order"] == REF
    assert lower.data["diluent"] == "sodium chloride 0.9%"
    assert "protected from light" in lower.data["instruction"]
    assert (lower.data["daily_dose"], lower.data["interval"], lower.data["volume"]) == (400, 6, 100)
    assert out["infusion.upper_dose"].value == 600


def test_no_build_above_the_maximum_is_proposed() -> None:
    out = compute(order(2500))
    assert out["infusion.lower_dose"].value == 2400
    assert out["infusion.upper"].value is None
    assert "2400 mg/day maximum" in (out["infusion.upper"].missing or "")


def test_violations_name_the_limit_and_the_numbers() -> None:
    out = compute(order(2400, dose_per_bag=800, bag_volume=100, interval=8, rate=12.5))
    assert "8 mg/mL" in str(out["infusion.violations"].value)
    assert "5 mg/mL" in str(out["infusion.violations"].value)


def test_the_limits_come_from_the_rule_file() -> None:
    spec = rule("infusion-build")
    wider = {
        **spec.parameters,
        "max_concentration": spec.parameters["max_concentration"].model_copy(update={"value": 10}),
    }
    out = settings(wider).compute(
        order(2400, dose_per_bag=800, bag_volume=100, interval=8), Facts(NOW, "order-sign", "h", "p")
    )
    assert out["infusion.problem"].value == "ok"


@pytest.mark.parametrize("name", ["unit_dose", "bag_volumes", "light_protection", "max_daily_dose"])
def test_a_missing_parameter_is_named(name: str) -> None:
    spec = rule("infusion-build")
    with pytest.raises(ParameterError) as raised:
        settings({k: v for k, v in spec.parameters.items() if k != name})
    assert raised.value.name == name


def test_limits_that_make_no_sense_are_refused() -> None:
    spec = rule("infusion-build")
    inverted = {
        **spec.parameters,
        "min_concentration": spec.parameters["min_concentration"].model_copy(update={"value": 6}),
    }
    with pytest.raises(ParameterError, match="do not make sense"):
        settings(inverted)


def test_the_build_ceiling_is_the_maximum_dose_rule_s_limit() -> None:
    # The same threshold appears in two rule files; they must never drift apart.
    build_max = rule("infusion-build").parameters["max_daily_dose"]
    dose_max = rule("max-dose").parameters["max_daily_dose"]
    assert (build_max.value, build_max.unit) == (dose_max.value, dose_max.unit)
