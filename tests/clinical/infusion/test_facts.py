"""The infusion calculation: the ordered bag checked against the rule file's limits, and the builds it
proposes (the arithmetic itself is tested in test_calculator.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from cds_service.clinical.base import ParameterError, Params
from cds_service.clinical.infusion.facts import Infusion, InfusionSettings
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, missing
from cds_service.ruleformat.rulefile import RuleFile
from cds_service.yamlfile import load_yaml
from tests.conftest import RULES
from tests.facts.support import catalog, rule_params

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REF = "MedicationRequest/draft-1"


def rule(name: str) -> RuleFile:
    return RuleFile.model_validate(load_yaml(RULES / f"{name}.yaml").data)


@dataclasses.dataclass(frozen=True)
class Renal:
    """What the infusion calculation reads of the renal calculation."""

    cap: float = 1200
    sc_interval: float = 48
    impaired: frozenset[str] = frozenset({"dialysis", "esrd", "clearance"})


def settings(parameters: Mapping[str, Any] | None = None, renal: Renal | None = None) -> InfusionSettings:
    spec = rule("infusion-build")
    params = Params(spec.id, parameters if parameters is not None else spec.parameters, catalog())
    return Infusion().configure(params, catalog(), {"renal": renal} if renal else {})


def order(
    daily: float | None,
    route: str | None = "iv",
    weight: float | None = None,
    impairment: str | None = None,
    **bag: float,
) -> dict[str, Fact]:
    named = {
        "patient.weight": Fact("patient.weight", weight, unit="kg", evidence=("Observation/w",))
        if weight is not None
        else missing("patient.weight", "no body weight in the last 7 days"),
        "renal.impairment": Fact("renal.impairment", impairment, evidence=("Procedure/hd",))
        if impairment is not None
        else missing("renal.impairment", "missing creatinine"),
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


def compute(named: dict[str, Fact], renal: Renal | None = None) -> dict[str, Fact]:
    return settings(renal=renal).compute(named, Facts(NOW, "order-sign", "h-1", "p1"))


def test_every_fact_of_the_specs_is_produced() -> None:
    names = {s.name for s in Infusion().specs(catalog(), rule_params("infusion-build"))}
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
    # The ceiling is the patient's, whatever the order: only the builds need an infusion.
    assert all(f.value is None for name, f in out.items() if name != "infusion.ceiling")
    assert out["infusion.ceiling"].value == 2400
    assert reason in (out["infusion.problem"].missing or "")
    assert reason in (out["infusion.ceiling_build"].detail or "")


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


@pytest.mark.parametrize(
    ("daily", "kg", "ceiling", "lower", "upper"),
    [
        (1400, 30, 1440, 1200, None),  # 1500 would be 2.08 mg/kg/h
        (1900, 40, 1920, 1800, None),  # 2000 would be 2.08 mg/kg/h
        (1900, 50, 2400, 1800, 2000),  # exactly 2 mg/kg/h at 2400: inclusive
        (500, 82.5, 2400, 400, 600),
    ],
)
def test_no_build_above_2_mg_per_kg_per_hour_with_a_weight(
    daily: float, kg: float, ceiling: float, lower: float, upper: float | None
) -> None:
    out = compute(order(daily, weight=kg))
    assert out["infusion.ceiling"].value == pytest.approx(ceiling)
    assert out["infusion.lower_dose"].value == lower
    assert out["infusion.upper_dose"].value == upper


def test_an_order_above_the_per_kg_ceiling_gets_no_build_of_its_own() -> None:
    out = compute(order(2400, weight=40))
    assert out["infusion.problem"].value == "above-maximum"
    assert out["infusion.recommended"].value is None
    assert "above the 1920 mg/day ceiling (2 mg/kg/h at 40 kg" in (out["infusion.recommended"].missing or "")
    assert str(out["infusion.ceiling_build"].value).startswith("1800 mg/day as 600 mg in 250 mL")
    assert out["infusion.ceiling"].evidence == ("Observation/w",)


def test_without_a_weight_the_ceiling_is_the_daily_maximum_and_says_why() -> None:
    ceiling = compute(order(2400))["infusion.ceiling"]
    assert ceiling.value == 2400
    assert "the 2 mg/kg/h limit needs a weight (no body weight in the last 7 days)" in (ceiling.detail or "")


@pytest.mark.parametrize("impairment", ["dialysis", "esrd", "clearance"])
def test_renal_impairment_lowers_the_ceiling_to_the_renal_cap(impairment: str) -> None:
    out = compute(order(1100, impairment=impairment), Renal())
    assert out["infusion.ceiling"].value == 1200
    assert f"renal maximum 1200 mg/day ({impairment})" in (out["infusion.ceiling"].detail or "")
    assert (out["infusion.lower_dose"].value, out["infusion.upper_dose"].value) == (900, 1200)
    assert compute(order(1300, impairment=impairment), Renal())["infusion.problem"].value == "above-maximum"


def test_no_renal_impairment_or_an_unknown_one_leaves_the_ceiling() -> None:
    assert compute(order(1300, impairment="none"), Renal())["infusion.upper_dose"].value == 1500
    unknown = compute(order(1300), Renal())
    assert unknown["infusion.upper_dose"].value == 1500
    assert "renal maximum not applied: missing creatinine" in (unknown["infusion.ceiling"].detail or "")


@pytest.mark.parametrize(
    ("daily", "impairment", "text"),
    [
        (100, None, "100 mg subcutaneous every 24 h"),
        (200, None, "100 mg subcutaneous every 12 h"),
        (100, "clearance", "100 mg subcutaneous every 48 h (50 mg/day)"),
        (200, "dialysis", "100 mg subcutaneous every 48 h (50 mg/day)"),
    ],
)
def test_below_the_smallest_infusion_the_subcutaneous_form_is_offered(
    daily: float, impairment: str | None, text: str
) -> None:
    alternative = compute(order(daily, impairment=impairment), Renal())["infusion.sc_alternative"]
    assert alternative.value == text
    assert alternative.data is not None
    assert alternative.data["form"] == "dose"
    assert alternative.data["route_coding"]["code"] == "34206005"
    assert alternative.data["order"] == REF


@pytest.mark.parametrize(
    ("daily", "reason"),
    [(250, "not a whole number of 100 mg doses"), (300, "not below"), (500, "not below")],
)
def test_no_subcutaneous_form_where_an_infusion_or_no_whole_dose_fits(daily: float, reason: str) -> None:
    alternative = compute(order(daily))["infusion.sc_alternative"]
    assert alternative.value is None
    assert reason in (alternative.missing or "")


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


def test_the_reasons_and_the_order_wording_are_the_rule_file_s() -> None:
    """Every reason the calculation gives, and the order it writes, are worded by infusion-build.yaml."""
    spec = rule("infusion-build")

    def reworded(**texts: str) -> dict[str, Any]:
        return {
            **spec.parameters,
            **{k: spec.parameters[k].model_copy(update={"value": v}) for k, v in texts.items()},
        }

    configured = settings(
        reworded(
            no_dose_below_text="nothing under {dose} {dose_unit} a day",
            unbuildable_text="{dose}: not {unit_dose}-{dose_unit} syringes q{intervals}h, "
            "{min_concentration} to {max_concentration}",
            ceiling_max_text="max {dose}",
            ceiling_no_weight_text="{rate} per kg: {why}",
            order_bag_dosage_text="{name}: {daily_dose} {dose_unit} daily",
            intervals_joiner="/",
        )
    )
    out = configured.compute(order(500), Facts(NOW, "order-sign", "h", "p"))
    assert out["infusion.recommended"].missing == "500: not 100-mg syringes q8/6h, 1 to 5"
    assert out["infusion.ceiling"].detail == "max 2400; 2 per kg: no body weight in the last 7 days"
    out = configured.compute(order(100), Facts(NOW, "order-sign", "h", "p"))
    assert out["infusion.lower"].missing == "nothing under 100 mg a day"
    upper = out["infusion.upper"].data
    assert upper is not None and upper["wording"]["dosage"] == "{name}: {daily_dose} {dose_unit} daily"
    assert (upper["unit_text"], upper["units"]["dose"]) == ("mg", "mg")


@pytest.mark.parametrize(
    "name", ["unit_dose", "bag_volumes", "light_protection", "max_daily_dose", "intervals_joiner"]
)
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


@pytest.mark.parametrize("other", ["infusion-build", "duplicate-therapy", "ferritin-escalation"])
@pytest.mark.parametrize("name", ["max_daily_dose", "max_dose_rate"])
def test_the_build_ceiling_is_the_maximum_dose_rule_s_limit(other: str, name: str) -> None:
    # The same threshold appears in several rule files; they must never drift apart.
    build_max = rule(other).parameters[name]
    dose_max = rule("max-dose").parameters[name]
    assert (build_max.value, build_max.unit) == (dose_max.value, dose_max.unit)


def test_the_escalation_rule_knows_the_renal_ceiling() -> None:
    # ferritin-escalation must not advise escalating past the renal maximum renal-dose states.
    escalation = rule("ferritin-escalation").parameters["renal_cap"]
    renal = rule("renal-dose").parameters["renal_cap"]
    assert (escalation.value, escalation.unit) == (renal.value, renal.unit)


@pytest.mark.parametrize("renal", [None, Renal()], ids=["no-renal", "renal"])
def test_the_widths_are_those_of_the_longest_texts_the_templates_give(renal: Renal | None) -> None:
    """The summary-length lint's bound of each build fact is derived from the templates and limits: no
    build or subcutaneous text is longer, and the longest reaches it."""
    configured = settings(renal=renal)
    widths = configured.widths()
    seen: dict[str, int] = {}
    for daily in range(25, 5001, 25):
        for weight in (None, 20.0, 70.0):
            for impairment in (None, "dialysis"):
                named = order(daily, weight=weight, impairment=impairment)
                out = configured.compute(named, Facts(NOW, "order-sign", "h", "p"))
                for name, width in widths.items():
                    if isinstance(out[name].value, str):
                        seen[name] = max(seen.get(name, 0), len(out[name].value))
                        assert len(out[name].value) <= width, (name, out[name].value)
    assert seen["infusion.recommended"] == widths["infusion.recommended"]
    assert seen["infusion.sc_alternative"] == widths["infusion.sc_alternative"]


def test_a_longer_template_value_widens_the_bound() -> None:
    spec = rule("infusion-build")
    base = settings().widths()
    longer = {
        **spec.parameters,
        "diluent_short": spec.parameters["diluent_short"].model_copy(update={"value": "NS" + "x" * 20}),
    }
    assert settings(longer).widths()["infusion.lower"] == base["infusion.lower"] + 20
