"""The ferritin calculations: `ferritin_trend` (rise per day over the last 48 h) and `ferritin_response`
(still rising once the current dose has run 48 h), configured from their rule files (the growth
arithmetic itself is tested in test_calculator.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import pytest

from cds_service.clinical.base import ParameterError, Params
from cds_service.clinical.ferritin.facts import FERRITIN_RESPONSE, FERRITIN_TREND
from cds_service.clinical.registry import CALCULATIONS
from cds_service.data.resources import Resource
from cds_service.engine.ruleset import check_rules
from cds_service.facts.named import Fact
from cds_service.ruleformat.rulefile import Parameter, RuleFile
from cds_service.yamlfile import load_yaml
from tests.conftest import RULES
from tests.facts.support import (
    NOW,
    RXNORM,
    SNOMED,
    catalog,
    facts_of,
    make_facts,
    observation,
    resource,
    rule_params,
)

FERRITIN = "2276-4"
WEIGHT = "29463-7"


def rule(name: str) -> RuleFile:
    return RuleFile.model_validate(load_yaml(RULES / f"{name}.yaml").data)


def parameters(name: str, **changes: Any) -> dict[str, Parameter]:
    """The rule file's parameters, with `changes` as {name: (value, unit)} (None drops the parameter)."""
    merged = dict(rule(name).parameters)
    for key, change in changes.items():
        if change is None:
            merged.pop(key, None)
        else:
            value, unit = change
            merged[key] = Parameter(value=value, unit=unit, source="test")
    return merged


def at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat()


def ferritin(
    ident: str, value: float, hours_ago: float, unit: str = "ug/L", comparator: str | None = None
) -> Resource:
    return observation(ident, FERRITIN, value, unit, at(hours_ago), comparator)


def weight(kg: float, hours_ago: float = 6) -> Resource:
    return observation("weight", WEIGHT, kg, "kg", at(hours_ago))


def order(
    ident: str,
    mg_per_day: float | None,
    authored_hours_ago: float | None,
    status: str = "active",
    bounds_hours_ago: float | None = None,
) -> Resource:
    dosage: dict[str, Any] = {"route": {"coding": [{"system": SNOMED, "code": "47625008"}]}}
    if mg_per_day is not None:
        dosage["doseAndRate"] = [{"rateQuantity": {"value": mg_per_day, "code": "mg/d"}}]
    if bounds_hours_ago is not None:
        dosage["timing"] = {"repeat": {"boundsPeriod": {"start": at(bounds_hours_ago)}}}
    fields: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": ident,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "72435"}]},
        "dosageInstruction": [dosage],
    }
    if authored_hours_ago is not None:
        fields["authoredOn"] = at(authored_hours_ago)
    return resource(**fields)


def run(
    calculation: Any,
    rule_id: str,
    resources: Iterable[Resource],
    params: Mapping[str, Parameter] | None = None,
    unavailable: Mapping[str, str] | None = None,
) -> dict[str, Fact]:
    resources = list(resources)
    given = params if params is not None else rule(rule_id).parameters
    step = calculation.configure(Params(rule_id, given, catalog()), catalog(), {})
    named = facts_of(resources, unavailable=unavailable)
    return step.compute(named, make_facts(resources, unavailable=unavailable))


def trend(*resources: Resource, **kwargs: Any) -> dict[str, Fact]:
    return run(FERRITIN_TREND, "ferritin-rise", resources, **kwargs)


def response(*resources: Resource, **kwargs: Any) -> dict[str, Fact]:
    return run(FERRITIN_RESPONSE, "ferritin-escalation", resources, **kwargs)


# --- ferritin_trend ---------------------------------------------------------------------------------


def test_both_calculations_are_registered() -> None:
    assert CALCULATIONS["ferritin_trend"] is FERRITIN_TREND
    assert CALCULATIONS["ferritin_response"] is FERRITIN_RESPONSE


@pytest.mark.parametrize(
    "resources",
    [
        (),
        (ferritin("a", 1200, 28),),
        (ferritin("a", 900, 8), ferritin("b", 1400, 4)),
        (ferritin("a", 38500, 29), ferritin("b", 40000, 5, comparator=">")),
        (ferritin("a", 1000, 30), ferritin("b", 800, 18), ferritin("c", 2000, 2)),
    ],
)
def test_every_trend_fact_of_the_specs_is_produced(resources: tuple[Resource, ...]) -> None:
    names = {s.name for s in FERRITIN_TREND.specs(catalog(), rule_params("ferritin-rise"))}
    assert set(trend(*resources)) == names


def test_exactly_sixty_percent_in_a_day_is_sixty() -> None:
    facts = trend(ferritin("a", 1000, 28), ferritin("b", 1600, 4))
    growth = facts["ferritin_trend.daily_growth"]
    # Exactly 60, not 60.00000000000001: the rule compares with >= 60 %/d.
    assert growth.value == 60
    assert growth.unit == "%/d"
    assert growth.evidence == ("Observation/a", "Observation/b")
    assert facts["ferritin_trend.hours"].value == 24


@pytest.mark.parametrize(
    ("start", "end", "hours", "expected"),
    [
        (1000, 2200, 48, 48.324),  # compound, not the linear 60 %/day
        (1000, 2560, 48, 60.0),
        (1000, 1590, 24, 59.0),
        (500, 400, 24, -20.0),
    ],
)
def test_growth_is_compound_per_day(start: float, end: float, hours: float, expected: float) -> None:
    facts = trend(ferritin("a", start, hours), ferritin("b", end, 0))
    assert facts["ferritin_trend.daily_growth"].value == pytest.approx(expected, abs=1e-3)


def test_one_result_gives_no_rate_and_says_which() -> None:
    facts = trend(ferritin("old", 900, 60), ferritin("a", 1200, 28))
    growth = facts["ferritin_trend.daily_growth"]
    assert growth.value is None
    assert growth.missing == "Only one ferritin in the last 48 h (1200 ug/L at 2026-11-22 08:00)"
    assert facts["ferritin_trend.first"].value == facts["ferritin_trend.last"].value == 1200
    assert facts["ferritin_trend.hours"].value is None


def test_results_closer_than_the_minimum_spacing_give_no_rate() -> None:
    facts = trend(ferritin("a", 900, 8), ferritin("b", 1400, 4))
    reason = facts["ferritin_trend.daily_growth"].missing or ""
    assert "less than 12 h apart" in reason
    assert "900 ug/L at 2026-11-23 04:00" in reason and "1400 ug/L at 2026-11-23 08:00" in reason
    assert facts["ferritin_trend.hours"].value == 4


def test_twelve_hours_apart_is_enough() -> None:
    facts = trend(ferritin("a", 1000, 14), ferritin("b", 1300, 2))
    assert facts["ferritin_trend.daily_growth"].value == pytest.approx(69.0, abs=1e-9)


def test_a_censored_endpoint_gives_no_rate() -> None:
    facts = trend(ferritin("a", 38500, 29), ferritin("b", 40000, 5, comparator=">"))
    reason = facts["ferritin_trend.daily_growth"].missing or ""
    assert ">40000 ug/L at 2026-11-23 07:00" in reason and "censored" in reason
    last = facts["ferritin_trend.last"]
    assert (last.value, last.comparator) == (40000, ">")


def test_a_censored_intermediate_result_leaves_the_endpoint_rate() -> None:
    facts = trend(ferritin("a", 1000, 40), ferritin("b", 40000, 20, comparator=">"), ferritin("c", 2000, 4))
    assert facts["ferritin_trend.daily_growth"].value == pytest.approx((2 ** (24 / 36) - 1) * 100)
    assert "no rate (censored)" in str(facts["ferritin_trend.steps"].value)


def test_an_intermediate_fall_is_shown_and_does_not_cancel_the_rise() -> None:
    facts = trend(ferritin("a", 12000, 42), ferritin("b", 10500, 30), ferritin("c", 26000, 6))
    assert facts["ferritin_trend.daily_growth"].value == pytest.approx(67.4408, abs=1e-4)
    steps = str(facts["ferritin_trend.steps"].value)
    assert "12000 ug/L to 10500 ug/L over 12 h (-23 %/day, a fall" in steps
    assert "10500 ug/L to 26000 ug/L over 24 h (+148 %/day" in steps


def test_the_latest_interval_gives_the_present_direction() -> None:
    facts = trend(ferritin("a", 1000, 44), ferritin("b", 8500, 16), ferritin("c", 4250, 4))
    assert facts["ferritin_trend.daily_growth"].value > 60  # the endpoint rule still holds
    fall = facts["ferritin_trend.latest_fall"]
    assert (fall.value, fall.unit) == (50, "%")
    assert fall.evidence == ("Observation/b", "Observation/c")
    assert facts["ferritin_trend.latest_step"].value == "8500 ug/L to 4250 ug/L over 12 h"
    rising = trend(ferritin("a", 1000, 30), ferritin("b", 2000, 4))
    assert rising["ferritin_trend.latest_fall"].value == -100


def test_the_direction_needs_two_exact_results() -> None:
    assert "fewer than two" in (trend(ferritin("a", 1000, 4)).get("ferritin_trend.latest_fall").missing or "")
    censored = trend(ferritin("a", 1000, 30), ferritin("b", 40000, 4, comparator=">"))
    assert "gives no direction" in (censored["ferritin_trend.latest_fall"].missing or "")
    assert censored["ferritin_trend.latest_step"].value == "1000 ug/L to >40000 ug/L over 26 h"


def test_two_results_have_no_intermediate_step() -> None:
    facts = trend(ferritin("a", 1000, 28), ferritin("b", 1600, 4))
    assert facts["ferritin_trend.steps"].value == "no intermediate result"


def test_no_result_in_the_window_names_the_newest_older_one() -> None:
    facts = trend(ferritin("old", 2400, 101))
    assert (
        facts["ferritin_trend.daily_growth"].missing
        == "No ferritin in the last 48 h (last on 2026-11-19 07:00)"
    )
    assert trend()["ferritin_trend.first"].missing == "No ferritin in the last 48 h"


def test_the_window_includes_its_start_and_ends_now() -> None:
    facts = trend(
        ferritin("too-old", 500, 48.01),
        ferritin("a", 1000, 48),
        ferritin("b", 2000, 0),
        ferritin("future", 9000, -2),
    )
    assert facts["ferritin_trend.first"].evidence == ("Observation/a",)
    assert facts["ferritin_trend.last"].evidence == ("Observation/b",)
    assert facts["ferritin_trend.hours"].value == 48


def test_the_window_and_spacing_come_from_the_rule_file() -> None:
    params = parameters("ferritin-rise", trend_window=(1, "d"), min_spacing=(2, "h"))
    facts = trend(ferritin("a", 1000, 30), ferritin("b", 900, 8), ferritin("c", 1400, 4), params=params)
    assert facts["ferritin_trend.first"].evidence == ("Observation/b",)
    assert facts["ferritin_trend.daily_growth"].value == pytest.approx((1400 / 900) ** 6 * 100 - 100)


@pytest.mark.parametrize(("unit", "value", "canonical"), [("ng/mL", 640, 640), ("mg/L", 1.25, 1250)])
def test_units_are_canonical_ug_per_l_and_keep_the_reported_value(
    unit: str, value: float, canonical: float
) -> None:
    facts = trend(ferritin("a", value, 28, unit), ferritin("b", value * 2, 4, unit))
    first = facts["ferritin_trend.first"]
    assert (first.value, first.unit) == (canonical, "ug/L")
    assert (first.native_value, first.native_unit) == (value, unit)
    assert facts["ferritin_trend.daily_growth"].value == 100


def test_a_result_that_cannot_be_used_is_named() -> None:
    facts = trend(ferritin("a", 1200, 20), observation("b", FERRITIN, 1300, None, at(5)))
    reason = facts["ferritin_trend.daily_growth"].missing or ""
    assert reason.startswith("Only one ferritin in the last 48 h (1200 ug/L")
    assert "not used: Observation/b has no unit" in reason


def test_labs_that_could_not_be_read_make_every_trend_fact_missing() -> None:
    facts = trend(unavailable={"labs": "the FHIR server timed out"})
    assert all("could not be read" in (f.missing or "") for f in facts.values())


@pytest.mark.parametrize(
    "change",
    [{"trend_window": None}, {"min_spacing": None}, {"min_spacing": (0, "h")}, {"trend_window": (48, "mg")}],
)
def test_trend_settings_are_required_and_checked(change: dict[str, Any]) -> None:
    params = Params("ferritin-rise", parameters("ferritin-rise", **change), catalog())
    with pytest.raises(ParameterError):
        FERRITIN_TREND.configure(params, catalog(), {})


# --- ferritin_response ------------------------------------------------------------------------------

# 1200 mg/day since 96 h ago (renewed 48 h ago at the same dose); 400 mg/day before.
ESCALATED = (
    order("d400", 400, 144, status="completed"),
    order("d1200", 1200, 97, status="completed", bounds_hours_ago=96),
    order("renewal", 1200, 50, bounds_hours_ago=48),
)


@pytest.mark.parametrize(
    "resources",
    [
        (),
        ESCALATED,
        (*ESCALATED, ferritin("a", 36900, 30), ferritin("b", 39200, 6)),
        (order("new", 1600, 24),),
        (order("no-dose", None, 60),),
    ],
)
def test_every_response_fact_of_the_specs_is_produced(resources: tuple[Resource, ...]) -> None:
    names = {s.name for s in FERRITIN_RESPONSE.specs(catalog(), rule_params("ferritin-escalation"))}
    assert set(response(*resources)) == names


def test_a_rise_after_48_h_on_the_dose() -> None:
    facts = response(
        *ESCALATED, weight(58), ferritin("pre", 26500, 102), ferritin("a", 36900, 30), ferritin("b", 39200, 6)
    )
    assert facts["ferritin_response.assessable"].value is True
    dose = facts["ferritin_response.dose"]
    assert (dose.value, dose.unit) == (1200, "mg/d")
    # The renewal at the same dose does not restart the clock; the 400 mg/day order ends the run.
    assert dose.time == NOW - timedelta(hours=96)
    assert dose.evidence == ("MedicationRequest/renewal", "MedicationRequest/d1200")
    assert facts["ferritin_response.dose_start"].value == "2026-11-19 12:00"
    assert facts["ferritin_response.hours_on_dose"].value == 96
    assert facts["ferritin_response.dose_rate_per_kg"].value == pytest.approx(1200 / 24 / 58)
    # The baseline is the ferritin when the dose was reached (102 h ago, the newest before 96 h ago).
    assert facts["ferritin_response.baseline"].value == 26500
    assert facts["ferritin_response.latest"].value == 39200
    rise = facts["ferritin_response.rise"]
    assert rise.value == pytest.approx((39200 / 26500 - 1) * 100)
    assert (rise.unit, rise.comparator) == ("%", None)
    assert rise.evidence == ("Observation/pre", "Observation/b")
    assert facts["ferritin_response.peak"].value == 36900
    assert facts["ferritin_response.below_peak"].value == pytest.approx((1 - 39200 / 36900) * 100)


def test_bounds_period_start_is_preferred_to_authored_on() -> None:
    facts = response(order("x", 800, 80, bounds_hours_ago=40))
    assert facts["ferritin_response.hours_on_dose"].value == 40
    assert facts["ferritin_response.assessable"].value is False


def test_without_an_active_order_the_response_is_not_assessable() -> None:
    facts = response(order("old", 1200, 100, status="completed"), ferritin("a", 1000, 5))
    assert facts["ferritin_response.assessable"].value is False
    assert facts["ferritin_response.dose"].missing == "no active anakinra order"


def test_before_48_h_on_the_dose_the_response_is_not_assessable() -> None:
    facts = response(*ESCALATED, order("new", 1600, 24), ferritin("a", 36900, 30), ferritin("b", 39200, 6))
    assert facts["ferritin_response.assessable"].value is False
    assert facts["ferritin_response.dose"].value == 1600
    assert facts["ferritin_response.hours_on_dose"].value == 24
    reason = facts["ferritin_response.rise"].missing or ""
    assert "for only 24 h" in reason and "assessed from 2026-11-24 12:00" in reason


def test_exactly_48_h_on_the_dose_is_assessable() -> None:
    facts = response(order("x", 800, 48), ferritin("a", 5000, 50), ferritin("b", 6000, 0))
    assert facts["ferritin_response.assessable"].value is True
    assert facts["ferritin_response.rise"].value == pytest.approx(20)


def test_no_ferritin_since_48_h_after_the_dose_began() -> None:
    facts = response(order("x", 1600, 74), ferritin("a", 15400, 86), ferritin("b", 18100, 30))
    assert facts["ferritin_response.assessable"].value is True
    for name in ("baseline", "latest", "rise", "peak", "below_peak"):
        assert facts[f"ferritin_response.{name}"].missing == (
            "No ferritin since 2026-11-22 10:00: the response cannot be assessed"
        )


def test_the_baseline_is_the_ferritin_when_the_dose_was_reached_within_the_lookback() -> None:
    # Dose began 72 h ago: the latest must be from 24 h ago on, the baseline from 96 h ago on.
    dose = order("x", 1200, 72)
    facts = response(dose, ferritin("a", 1000, 90), ferritin("b", 1500, 20), ferritin("c", 1800, 2))
    assert facts["ferritin_response.baseline"].evidence == ("Observation/a",)
    assert facts["ferritin_response.latest"].evidence == ("Observation/c",)
    assert facts["ferritin_response.rise"].value == pytest.approx(80)
    # Without one at or before the dose start, the earliest since then.
    facts = response(dose, ferritin("too-old", 1000, 97), ferritin("b", 1500, 40), ferritin("c", 1800, 2))
    assert facts["ferritin_response.baseline"].evidence == ("Observation/b",)
    facts = response(dose, ferritin("too-old", 1000, 97), ferritin("c", 1800, 2))
    assert facts["ferritin_response.latest"].value == 1800
    assert "No ferritin between 2026-11-19 12:00 and 1800 ug/L" in (
        facts["ferritin_response.rise"].missing or ""
    )


def test_the_last_two_points_do_not_decide_after_a_peak_and_fall() -> None:
    # 20000 when the dose was reached, a peak of 36000, then a fall; the last two results 2 h apart
    # differ by +0.25 %: the trend since the dose is +10.25 %, but ferritin lies 38.75 % below its peak.
    facts = response(
        order("x", 1200, 72),
        ferritin("start", 20000, 74),
        ferritin("peak", 36000, 50),
        ferritin("fall", 21995, 4),
        ferritin("last", 22050, 2),
    )
    assert facts["ferritin_response.rise"].value == pytest.approx(10.25)
    assert facts["ferritin_response.peak"].evidence == ("Observation/peak",)
    assert facts["ferritin_response.below_peak"].value == pytest.approx(38.75)


def test_a_baseline_too_close_to_the_latest_gives_no_trend() -> None:
    facts = response(order("x", 1200, 72), ferritin("a", 20000, 10), ferritin("b", 21000, 2))
    assert facts["ferritin_response.baseline"].value == 20000
    for name in ("rise", "peak", "below_peak"):
        reason = facts[f"ferritin_response.{name}"].missing or ""
        assert "are 8 h apart, less than 12 h: too close for a trend" in reason


def test_a_censored_peak_or_latest_bounds_the_fall_from_the_peak() -> None:
    facts = response(
        order("x", 2400, 72),
        ferritin("a", 20000, 74),
        ferritin("b", 40000, 30, comparator=">"),
        ferritin("c", 30000, 2),
    )
    below = facts["ferritin_response.below_peak"]
    assert (below.value, below.comparator) == (pytest.approx(25), ">=")


@pytest.mark.parametrize(
    ("previous", "latest", "value", "comparator"),
    [
        ((39200, None), (34100, None), -13.0102, None),
        ((212000, None), (250000, ">"), 17.9245, ">"),
        ((40000, ">"), (45000, None), 12.5, "<"),
        ((40000, ">="), (50000, None), 25.0, "<="),
    ],
)
def test_a_censored_result_makes_the_rise_a_bound(
    previous: tuple[float, str | None], latest: tuple[float, str | None], value: float, comparator: str | None
) -> None:
    facts = response(
        order("x", 2400, 72),
        ferritin("a", previous[0], 20, comparator=previous[1]),
        ferritin("b", latest[0], 2, comparator=latest[1]),
    )
    rise = facts["ferritin_response.rise"]
    assert rise.value == pytest.approx(value, abs=1e-4)
    assert rise.comparator == comparator


def test_two_censored_results_leave_the_change_open() -> None:
    facts = response(
        order("x", 2400, 72),
        ferritin("a", 40000, 20, comparator=">"),
        ferritin("b", 40000, 2, comparator=">"),
    )
    assert "both ferritin results are censored" in (facts["ferritin_response.rise"].missing or "")


def test_mg_per_l_is_read_as_ug_per_l() -> None:
    facts = response(order("x", 1200, 60), ferritin("a", 3.4, 61, "mg/L"), ferritin("b", 5.9, 3, "mg/L"))
    assert facts["ferritin_response.baseline"].value == 3400
    assert facts["ferritin_response.latest"].native_value == 5.9
    assert facts["ferritin_response.rise"].value == pytest.approx(73.5294, abs=1e-4)


def test_the_dose_per_kg_needs_a_weight() -> None:
    facts = response(order("x", 2400, 60))
    assert "weight" in (facts["ferritin_response.dose_rate_per_kg"].missing or "")
    facts = response(order("x", 1200, 60), weight(25))
    per_kg = facts["ferritin_response.dose_rate_per_kg"]
    assert (per_kg.value, per_kg.unit) == (2.0, "mg/kg/h")
    assert per_kg.evidence == ("MedicationRequest/x", "Observation/weight")


def test_an_order_without_a_daily_dose_cannot_be_assessed() -> None:
    facts = response(order("x", None, 60))
    assessable = facts["ferritin_response.assessable"]
    assert assessable.value is None and assessable.missing
    assert assessable.evidence == ("MedicationRequest/x",)


def test_an_order_without_any_time_cannot_be_assessed() -> None:
    facts = response(order("x", 1200, None))
    assert "no authoredOn or boundsPeriod.start" in (facts["ferritin_response.assessable"].missing or "")


def test_cancelled_orders_do_not_extend_the_run() -> None:
    facts = response(order("cancelled", 1200, 120, status="cancelled"), order("x", 1200, 60))
    assert facts["ferritin_response.hours_on_dose"].value == 60


def test_medication_orders_that_could_not_be_read_make_every_response_fact_missing() -> None:
    facts = response(ferritin("a", 1000, 5), unavailable={"medications": "the FHIR server timed out"})
    assert all("could not be read" in (f.missing or "") for f in facts.values())


@pytest.mark.parametrize(
    "change",
    [
        {"medication": ("no-such-drug", None)},
        {"medication": None},
        {"min_time_on_dose": None},
        {"min_time_on_dose": (0, "h")},
        {"baseline_lookback": (24, "mg")},
        {"min_spacing": None},
        {"min_spacing": (0, "h")},
    ],
)
def test_response_settings_are_required_and_checked(change: dict[str, Any]) -> None:
    params = Params("ferritin-escalation", parameters("ferritin-escalation", **change), catalog())
    with pytest.raises(ParameterError):
        FERRITIN_RESPONSE.configure(params, catalog(), {})


def test_the_rule_files_lint_clean() -> None:
    mine = {"ferritin-rise.yaml", "ferritin-escalation.yaml"}
    assert [p for p in check_rules(RULES) if p.path.name in mine] == []


# --- wording ------------------------------------------------------------------------------------------


def test_the_trend_is_worded_by_its_rule_file() -> None:
    params = parameters(
        "ferritin-rise",
        growth_text=("{first} -> {last} in {hours}", None),
        at_text=("{result} @ {time}", None),
        single_text=("just one {label} within {window}: {result}", None),
    )
    facts = trend(ferritin("a", 1000, 28), ferritin("b", 1600, 4), params=params)
    assert facts["ferritin_trend.daily_growth"].detail == (
        "1000 ug/L @ 2026-11-22 08:00 -> 1600 ug/L @ 2026-11-23 08:00 in 24 h"
    )
    single = trend(ferritin("a", 1200, 28), params=params)
    assert single["ferritin_trend.daily_growth"].missing == (
        "just one ferritin within 48 h: 1200 ug/L @ 2026-11-22 08:00"
    )


def test_the_response_is_worded_by_its_rule_file() -> None:
    params = parameters(
        "ferritin-escalation",
        early_text=("{dose} {dose_unit} daily for {hours} only; wait until {assess_from}", None),
        no_order_text=("{drug}: none active", None),
    )
    early = response(order("o", 1200, 20), ferritin("a", 3000, 2), weight(40), params=params)
    assert (
        early["ferritin_response.rise"].missing == "1200 mg daily for 20 h only; wait until 2026-11-24 16:00"
    )
    quiet = response(ferritin("a", 3000, 2), params=params)
    assert quiet["ferritin_response.assessable"].detail == "anakinra: none active"
