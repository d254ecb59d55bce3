"""The renal and aki calculations: Cockcroft-Gault from the named facts with the rule file's settings, the
renal dose and its bag build, and KDIGO AKI judged on the creatinine results of the window (the arithmetic
itself is tested in tests/calculators/test_renal.py and test_kdigo.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cds_service.calculations.base import ParameterError, Params
from cds_service.calculations.infusion import Infusion, InfusionSettings
from cds_service.calculations.kidney import AcuteKidneyInjury, AkiSettings, Renal, RenalSettings
from cds_service.calculators.bags import BagLimits, Build
from cds_service.engine.rulefile import Parameter, RuleFile
from cds_service.facts.named import Fact, missing
from cds_service.yamlfile import load_yaml
from tests.conftest import RULES
from tests.facts.support import catalog, make_facts, observation

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REF = "MedicationRequest/draft-1"
MG_DL, UMOL_L = "2160-0", "14682-9"


def rule(name: str) -> RuleFile:
    return RuleFile.model_validate(load_yaml(RULES / f"{name}.yaml").data)


def params(name: str, **changes: Any) -> Params:
    spec = rule(name)
    parameters = dict(spec.parameters)
    for key, value in changes.items():
        if value is None:
            del parameters[key]
        else:
            parameters[key] = parameters[key].model_copy(update={"value": value})
    return Params(spec.id, parameters, catalog())


def infusion() -> InfusionSettings:
    return Infusion().configure(params("infusion-build"), catalog(), {})


def renal(before: Mapping[str, Any] | None = None, **changes: Any) -> RenalSettings:
    return Renal().configure(params("renal-dose", **changes), catalog(), before or {"infusion": infusion()})


def aki(**changes: Any) -> AkiSettings:
    return AcuteKidneyInjury().configure(params("acute-kidney-injury", **changes), catalog(), {})


@dataclasses.dataclass
class FakeInfusion:
    """Only what renal dosing may use of the infusion calculation: its limits and build facts."""

    limits: BagLimits
    max_daily_dose: float = 2400
    calls: list[tuple[str, Build | None, str | None, str]] = dataclasses.field(default_factory=list)

    def build_fact(self, name: str, build: Build | None, order: str | None, why: str) -> Fact:
        self.calls.append((name, build, order, why))
        if build is None:
            return missing(name, why)
        return Fact(name, f"{build.daily_dose:g} mg/day", detail="fake build", data={"order": order})


def quantity(name: str, value: float | None, unit: str, why: str = "not recorded", **extra: Any) -> Fact:
    if value is None:
        return missing(name, why)
    return Fact(name, value, unit=unit, **extra)


def patient(
    age: float | None = 68,
    sex: str | None = "male",
    weight: float | None = 60,
    creatinine: float | None = 2.0,
    daily: float | None = 800,
    route: str | None = "iv",
    present: bool = True,
    **creatinine_extra: Any,
) -> dict[str, Fact]:
    t = NOW - timedelta(hours=6)
    return {
        "patient.age": quantity("patient.age", age, "a", "no birth date"),
        "patient.sex": Fact("patient.sex", sex) if sex else missing("patient.sex", "no sex recorded"),
        "patient.weight": quantity(
            "patient.weight",
            weight,
            "kg",
            "no body weight in the last 7 days",
            time=t,
            evidence=("Observation/w",),
        ),
        "creatinine.latest": quantity(
            "creatinine.latest",
            creatinine,
            "mg/dL",
            "no creatinine in the last 14 days",
            time=t,
            evidence=("Observation/scr",),
            **creatinine_extra,
        ),
        "order.present": Fact("order.present", True, evidence=(REF,))
        if present
        else Fact("order.present", False),
        "order.route": Fact("order.route", route) if route else missing("order.route", "no route given"),
        "order.daily_dose": quantity("order.daily_dose", daily, "mg/d", "mg/kg/h needs a body weight"),
    }


def compute_renal(named: dict[str, Fact], settings: RenalSettings | None = None) -> dict[str, Fact]:
    return (settings or renal()).compute(named, make_facts(now=NOW))


# --- renal ---------------------------------------------------------------------------------------------


def test_every_renal_fact_is_produced() -> None:
    names = {s.name for s in Renal().specs(catalog())}
    for named in (
        patient(),
        patient(weight=None),
        patient(age=16),
        patient(route="sc"),
        patient(present=False),
    ):
        assert set(compute_renal(named)) == names


def test_cockcroft_gault_is_not_rounded_before_comparing() -> None:
    # (140 - 68) x 60 / (72 x 2.0) = 30.0 exactly, and 59.8 kg gives 29.9.
    assert compute_renal(patient())["renal.crcl"].value == 30.0
    crcl = compute_renal(patient(weight=59.8))["renal.crcl"]
    assert crcl.value == pytest.approx(29.9)
    assert crcl.unit == "mL/min"
    assert crcl.evidence == ("Observation/scr", "Observation/w")
    assert "actual body weight 59.8 kg" in (crcl.detail or "")


def test_women_get_the_085_factor() -> None:
    male = compute_renal(patient(creatinine=1.8))["renal.crcl"].value
    female = compute_renal(patient(sex="female", creatinine=1.8))["renal.crcl"].value
    assert male == pytest.approx(33.333, abs=0.001)
    assert female == pytest.approx(28.333, abs=0.001)


@pytest.mark.parametrize("sex", ["other", "unknown"])
def test_other_and_unknown_sex_take_the_rule_files_choice(sex: str) -> None:
    lower = compute_renal(patient(sex=sex, creatinine=1.8))["renal.crcl"]
    assert lower.value == pytest.approx(28.333, abs=0.001)
    assert "the lower of the female (28.3) and male (33.3) estimates" in (lower.detail or "")
    higher = compute_renal(patient(sex=sex, creatinine=1.8), renal(unstated_sex="higher"))["renal.crcl"]
    assert higher.value == pytest.approx(33.333, abs=0.001)


def test_missing_inputs_are_named_with_their_reasons() -> None:
    crcl = compute_renal(patient(weight=None, creatinine=None))["renal.crcl"]
    assert crcl.value is None
    assert crcl.missing == (
        "missing creatinine, weight (no creatinine in the last 14 days; no body weight in the last 7 days)"
    )
    assert compute_renal(patient(sex=None))["renal.crcl"].missing == "missing sex (no sex recorded)"
    assert compute_renal(patient(age=None))["renal.crcl"].missing == "missing age (no birth date)"


def test_under_18_cockcroft_gault_does_not_apply_whatever_else_is_missing() -> None:
    for named in (patient(age=16), patient(age=16, weight=None), patient(age=17.9)):
        crcl = compute_renal(named)["renal.crcl"]
        assert crcl.value is None
        assert crcl.missing is not None
        assert crcl.missing.startswith("Cockcroft-Gault does not apply under 18 years (age 1")
    assert compute_renal(patient(age=18))["renal.crcl"].value is not None
    # The age limit is the rule file's.
    assert compute_renal(patient(age=16), renal(min_age=16))["renal.crcl"].value is not None


def test_creatinine_in_umol_per_l_is_shown_as_reported_and_converted() -> None:
    named = patient(creatinine=2.149, native_value=190, native_unit="umol/L")
    crcl = compute_renal(named)["renal.crcl"]
    assert "creatinine 190 umol/L = 2.149 mg/dL" in (crcl.detail or "")


def test_a_censored_creatinine_bounds_the_clearance_the_other_way() -> None:
    crcl = compute_renal(patient(creatinine=0.3, comparator="<"))["renal.crcl"]
    assert crcl.comparator == ">"
    assert crcl.value == pytest.approx(200.0)


def test_unusable_inputs_are_missing_not_errors() -> None:
    assert "creatinine must be positive" in (compute_renal(patient(creatinine=0))["renal.crcl"].missing or "")


def test_reduced_dose_is_the_ordered_dose_times_the_factor() -> None:
    reduced = compute_renal(patient(daily=2400))["renal.reduced_dose"]
    assert (reduced.value, reduced.unit) == (1200, "mg/d")
    assert reduced.detail == "50 % of the ordered 2400 mg/day"
    assert compute_renal(patient(daily=2400), renal(dose_factor=0.75))["renal.reduced_dose"].value == 1800
    assert "mg/kg/h needs a body weight" in (
        compute_renal(patient(daily=None))["renal.reduced_dose"].missing or ""
    )
    assert compute_renal(patient(present=False))["renal.reduced_dose"].value is None


def test_a_dose_above_the_maximum_is_reduced_from_the_maximum() -> None:
    reduced = compute_renal(patient(daily=6000))["renal.reduced_dose"]
    assert reduced.value == 1200
    assert reduced.detail == "50 % of the 2400 mg/day maximum (ordered 6000)"


def test_reduced_build_is_the_protocol_build_of_the_reduced_dose() -> None:
    build = compute_renal(patient(daily=2400))["renal.reduced_build"]
    assert build.value == "1200 mg/day as 400 mg in 100 mL NS q8h at 12.5 mL/h (4 mg/mL)"
    assert build.data is not None
    assert build.data["order"] == REF
    assert (
        build.data["daily_dose"],
        build.data["interval"],
        build.data["dose_per_bag"],
        build.data["volume"],
    ) == (
        1200,
        8,
        400,
        100,
    )


def test_an_unbuildable_reduced_dose_gets_the_nearest_and_ties_go_lower() -> None:
    # 1000 mg/day -> 500, halfway between the buildable 400 and 600.
    build = compute_renal(patient(daily=1000))["renal.reduced_build"]
    assert build.value is not None and str(build.value).startswith("400 mg/day as")
    assert "500 mg/day cannot be built; 400 mg/day is the nearest" in (build.detail or "")
    # 2200 -> 1100: 1200 is nearer than 900.
    assert str(compute_renal(patient(daily=2200))["renal.reduced_build"].value).startswith("1200 mg/day as")


def test_no_build_for_a_subcutaneous_or_unrouted_order() -> None:
    sc = compute_renal(patient(daily=100, route="sc"))["renal.reduced_build"]
    assert (sc.value, sc.missing) == (None, "a subcutaneous order is not given as infusion bags")
    other = compute_renal(patient(route="other"))["renal.reduced_build"]
    assert other.missing == "route other is not an infusion route"
    unrouted = compute_renal(patient(route=None))["renal.reduced_build"]
    assert "the route is unknown (no route given)" in (unrouted.missing or "")
    assert compute_renal(patient(present=False))["renal.reduced_build"].value is None


def test_renal_uses_only_the_limits_and_build_facts_of_infusion() -> None:
    fake = FakeInfusion(infusion().limits)
    settings = renal({"infusion": fake})
    out = compute_renal(patient(daily=1000), settings)
    assert out["renal.reduced_build"].value == "400 mg/day"
    ((name, build, order, _),) = fake.calls
    assert (name, order) == ("renal.reduced_build", REF)
    assert build is not None and build.daily_dose == 400


def test_the_rule_file_configures_renal() -> None:
    settings = renal()
    assert (settings.min_age, settings.weight_basis, settings.unstated_sex, settings.dose_factor) == (
        18,
        "actual",
        "lower",
        0.5,
    )
    assert settings.infusion_routes == frozenset({"iv"})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"weight_basis": "ideal"}, "weight_basis 'ideal' is not implemented; only actual body weight is"),
        ({"weight_basis": "lean"}, "must be one of actual, ideal, adjusted"),
        ({"unstated_sex": "female"}, "must be one of lower, higher"),
        ({"dose_factor": 0}, "dose_factor must be above 0"),
        ({"min_age": None}, "must define parameter 'min_age'"),
    ],
)
def test_bad_settings_fail_configuration(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        renal(**changes)


def test_renal_needs_the_infusion_calculation() -> None:
    with pytest.raises(ParameterError, match="needs the configured 'infusion'"):
        Renal().configure(params("renal-dose"), catalog(), {})


# --- aki -----------------------------------------------------------------------------------------------


def scr(ident: str, hours_ago: float, value: float, unit: str = "mg/dL", **extra: Any) -> Any:
    code = UMOL_L if unit == "umol/L" else MG_DL
    time = (NOW - timedelta(hours=hours_ago)).isoformat()
    return observation(ident, code, value, unit, time, **extra)


def compute_aki(*results: Any, settings: AkiSettings | None = None, **facts: Any) -> dict[str, Fact]:
    return (settings or aki()).compute({}, make_facts(results, now=NOW, **facts))


def test_every_aki_fact_is_produced() -> None:
    names = {s.name for s in AcuteKidneyInjury().specs(catalog())}
    for results in (
        (),
        (scr("a", 6, 1.0),),
        (scr("a", 54, 1.0), scr("b", 6, 1.3)),
        (scr("a", 60, 1.0), scr("b", 6, 1.0)),
    ):
        assert set(compute_aki(*results)) == names


def test_a_rise_of_03_within_48_h_is_stage_1() -> None:
    out = compute_aki(scr("a", 54, 1.0), scr("b", 6, 1.3))
    assert (out["aki.stage"].value, out["aki.criterion"].value) == (1, "absolute")
    assert out["aki.summary"].value == "SCr 1.0→1.3 mg/dL in 48 h"
    assert out["aki.stage"].evidence == ("Observation/a", "Observation/b")
    assert out["aki.stage"].time == NOW - timedelta(hours=6)


def test_the_same_rise_over_49_h_with_a_low_ratio_is_not_aki() -> None:
    out = compute_aki(scr("a", 55, 1.0), scr("b", 6, 1.3))
    assert (out["aki.stage"].value, out["aki.criterion"].value) == (0, "none")
    assert out["aki.summary"].value is None
    assert "no acute kidney injury" in (out["aki.summary"].missing or "")


def test_265_umol_per_l_is_compared_as_reported() -> None:
    out = compute_aki(scr("a", 54, 88, "umol/L"), scr("b", 6, 114.5, "umol/L"))
    assert out["aki.stage"].value == 1
    assert out["aki.summary"].value == "SCr 88→114.5 umol/L in 48 h"
    assert "Compared in umol/L, as reported" in (out["aki.stage"].detail or "")


def test_mixed_units_are_compared_converted_where_265_umol_per_l_falls_short() -> None:
    # 114.5 - 88 umol/L is 0.2998 mg/dL: only the native comparison makes it 26.5.
    out = compute_aki(scr("x", 150, 1.0), scr("a", 54, 88, "umol/L"), scr("b", 6, 114.5, "umol/L"))
    assert out["aki.stage"].value == 0
    assert "compared in mg/dL, converted" in (out["aki.stage"].detail or "")


@pytest.mark.parametrize(
    ("baseline", "value", "stage", "criterion"),
    [(0.8, 1.2, 1, "ratio"), (0.8, 1.6, 2, "ratio"), (0.8, 2.4, 3, "ratio"), (3.6, 4.0, 3, "absolute")],
)
def test_stages(baseline: float, value: float, stage: int, criterion: str) -> None:
    out = compute_aki(scr("a", 30, baseline), scr("b", 6, value))
    assert (out["aki.stage"].value, out["aki.criterion"].value) == (stage, criterion)


def test_the_baseline_is_the_lowest_result_of_the_previous_7_days() -> None:
    out = compute_aki(scr("a", 160, 0.7), scr("b", 100, 1.0), scr("c", 6, 1.5))
    assert out["aki.stage"].value == 2  # 1.5 / 0.7 = 2.14, not 1.5 / 1.0
    assert out["aki.summary"].value == "SCr 0.7→1.5 mg/dL in 154 h"
    # 0.7 a day earlier is outside the 7 days: only 1.0 remains, 1.5 x.
    late = compute_aki(scr("a", 180, 0.7), scr("b", 100, 1.0), scr("c", 6, 1.5))
    assert (late["aki.stage"].value, late["aki.criterion"].value) == (1, "ratio")


def test_an_older_aki_that_has_settled_is_not_reported_as_current() -> None:
    # Doubling 12 days ago, stable since: kdigo() over all results would report the old stage 2.
    out = compute_aki(scr("a", 300, 1.0), scr("b", 280, 2.0), scr("c", 48, 2.0), scr("d", 6, 2.0))
    assert out["aki.stage"].value == 0


def test_too_few_results_is_missing_and_says_why() -> None:
    assert compute_aki()["aki.stage"].missing == "no creatinine in the last 14 days"
    one = compute_aki(scr("a", 6, 1.1))["aki.stage"]
    assert one.missing == "only one creatinine in the last 14 days (1.1 mg/dL at 2026-11-23 06:00)"
    censored = compute_aki(scr("a", 30, 0.3, comparator="<"), scr("b", 6, 1.1))["aki.stage"]
    assert censored.missing is not None
    assert "not used: Observation/a is only a bound (<0.3 mg/dL)" in censored.missing
    apart = compute_aki(scr("a", 200, 1.0), scr("b", 6, 1.1))["aki.stage"]
    assert apart.missing is not None
    assert "has an earlier one within 7 days to compare with" in apart.missing


def test_labs_that_could_not_be_read_say_so() -> None:
    out = compute_aki(unavailable={"labs": "timeout"})
    assert out["aki.stage"].missing == "laboratory results and vital signs could not be read: timeout"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"stage2_ratio": 1.4}, "need 1 < baseline_ratio <= stage2_ratio <= stage3_ratio"),
        ({"absolute_window": None}, "must define parameter 'absolute_window'"),
    ],
)
def test_bad_aki_settings_fail_configuration(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        aki(**changes)


def test_aki_thresholds_keep_their_stated_umol_per_l_values() -> None:
    settings = aki()
    umol = settings.limits("umol/L")
    assert umol is not None and (umol.absolute_rise, umol.stage3_value) == (26.5, 353.6)
    mg = settings.limits("mg/dL")
    assert mg is not None and (mg.absolute_rise, mg.stage3_value) == (0.3, 4.0)
    assert settings.limits("mmol/L") is None
    assert settings.lookback == timedelta(days=14)


def test_a_stated_unit_that_is_not_a_concentration_fails() -> None:
    spec = rule("acute-kidney-injury")
    parameters = dict(spec.parameters)
    parameters["absolute_rise"] = Parameter(value=0.3, unit="mg", source="test")
    with pytest.raises(ParameterError, match="absolute_rise"):
        AcuteKidneyInjury().configure(Params(spec.id, parameters, catalog()), catalog(), {})


# --- the creatinine limits a chart draws -----------------------------------------------------------------


def test_the_renal_creatinine_limit_is_where_cockcroft_gault_reaches_the_threshold() -> None:
    # (140 - 68) x 60 / (72 x 30) = 2.0 mg/dL for a man; a woman reaches 30 mL/min at 0.85 of that.
    out = compute_renal(patient())
    assert out["renal.creatinine_limit"].value == pytest.approx(2.0)
    assert out["renal.creatinine_limit"].unit == "mg/dL"
    assert compute_renal(patient(sex="female"))["renal.creatinine_limit"].value == pytest.approx(1.7)
    # The limit does not need a creatinine, and at it the clearance is the rule file's threshold.
    assert compute_renal(patient(creatinine=None))["renal.creatinine_limit"].value == pytest.approx(2.0)
    assert compute_renal(patient(creatinine=2.0))["renal.crcl"].value == pytest.approx(30)


def test_the_renal_creatinine_limit_follows_the_rule_files_threshold_and_sex_choice() -> None:
    assert compute_renal(patient(), renal(crcl_threshold=60))[
        "renal.creatinine_limit"
    ].value == pytest.approx(1.0)
    assert compute_renal(patient(sex="unknown"))["renal.creatinine_limit"].value == pytest.approx(1.7)


def test_without_a_limit_the_reason_is_given() -> None:
    assert "weight" in (compute_renal(patient(weight=None))["renal.creatinine_limit"].missing or "")
    assert "under 18" in (compute_renal(patient(age=16))["renal.creatinine_limit"].missing or "")


def test_the_aki_creatinine_limit_is_the_lower_of_the_two_criteria_now() -> None:
    # Lowest of 48 h 1.0 (+0.3 = 1.3); lowest of 7 days 0.8 (x 1.5 = 1.2): a result of 1.2 now is AKI.
    out = compute_aki(scr("a", 100, 0.8), scr("b", 30, 1.0), scr("c", 6, 1.1))
    limit = out["aki.creatinine_limit"]
    assert (limit.value, limit.unit) == (pytest.approx(1.2), "mg/dL")
    assert limit.evidence == ("Observation/a",)
    # With the 7-day low at 1.0 instead, the rise within 48 h decides: 1.0 + 0.3.
    out = compute_aki(scr("a", 100, 1.0), scr("b", 30, 1.0), scr("c", 6, 1.1))
    assert out["aki.creatinine_limit"].value == pytest.approx(1.3)


def test_one_result_is_enough_for_an_aki_limit_and_none_says_why() -> None:
    assert compute_aki(scr("a", 6, 1.0))["aki.creatinine_limit"].value == pytest.approx(1.3)
    none = compute_aki()["aki.creatinine_limit"]
    assert none.value is None and "no creatinine" in (none.missing or "")
