"""The renal and aki calculations: Cockcroft-Gault from the named facts with the rule file's settings, the
renal dose and its bag build, and KDIGO AKI judged on the creatinine results of the window (the arithmetic
itself is tested in test_calculator.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cds_service.clinical.base import ParameterError, Params
from cds_service.clinical.renal.facts import AcuteKidneyInjury, AkiSettings, Renal, RenalSettings
from cds_service.facts.named import Fact, missing
from cds_service.ruleformat.rulefile import Parameter, RuleFile
from cds_service.yamlfile import load_yaml
from tests.conftest import RULES
from tests.engine.rulesdir import copy_rules, edit
from tests.facts.support import catalog, make_facts, observation, rule_params

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


def renal(**changes: Any) -> RenalSettings:
    return Renal().configure(params("renal-dose", **changes), catalog(), {})


def aki(**changes: Any) -> AkiSettings:
    return AcuteKidneyInjury().configure(params("acute-kidney-injury", **changes), catalog(), {})


SETS = ("hemodialysis", "crrt", "peritoneal_dialysis", "dialysis_unspecified", "dialysis_encounter")
ESRD_SETS = ("esrd", "dialysis_dependence")


def quantity(name: str, value: float | None, unit: str, why: str = "not recorded", **extra: Any) -> Fact:
    if value is None:
        return missing(name, why)
    return Fact(name, value, unit=unit, **extra)


def patient(
    age: float | None = 68,
    sex: str | None = "male",
    weight: float | None = 60,
    creatinine: float | None = 2.0,
    height: float | None = None,
    creatinine_age: float = 6,
    route: str | None = "iv",
    interval: float | None = None,
    present: bool = True,
    on: Mapping[str, str] | None = None,
    **creatinine_extra: Any,
) -> dict[str, Fact]:
    """Named facts for renal: `on` maps condition sets to their evidence (present), e.g. {"crrt": "P/1"}."""
    t = NOW - timedelta(hours=6)
    named = {
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
        "height.latest": quantity(
            "height.latest", height, "cm", "no body height in the last 365 days", evidence=("Observation/h",)
        ),
        "creatinine.latest": quantity(
            "creatinine.latest",
            creatinine,
            "mg/dL",
            "no creatinine in the last 14 days",
            time=NOW - timedelta(hours=creatinine_age),
            evidence=("Observation/scr",),
            **creatinine_extra,
        ),
        "order.present": Fact("order.present", True, evidence=(REF,))
        if present
        else Fact("order.present", False),
        "order.route": Fact("order.route", route, evidence=(REF,))
        if route
        else missing("order.route", "no route given"),
        "order.interval": quantity("order.interval", interval, "h", "no bag described", evidence=(REF,)),
    }
    for name in (*SETS, *ESRD_SETS):
        reference = (on or {}).get(name)
        key = f"conditions.{name}.status"
        named[key] = (
            Fact(key, "present", time=t, evidence=(reference,), detail=name.replace("_", " "))
            if reference
            else missing(key, f"no {name}")
        )
    return named


def compute_renal(
    named: dict[str, Fact],
    settings: RenalSettings | None = None,
    unavailable: Mapping[str, str] | None = None,
) -> dict[str, Fact]:
    return (settings or renal()).compute(named, make_facts(now=NOW, unavailable=unavailable))


# --- renal: Cockcroft-Gault ------------------------------------------------------------------------------------


def test_every_renal_fact_is_produced() -> None:
    names = {s.name for s in Renal().specs(catalog(), rule_params("renal-dose"))}
    for named in (
        patient(),
        patient(weight=None),
        patient(age=16),
        patient(route="sc", interval=24),
        patient(present=False),
        patient(on={"crrt": "Procedure/1"}),
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
    # Each input's own reason, "; "-separated: a card listing what is missing names each once, even when
    # another check needs it too.
    assert crcl.missing == "no creatinine in the last 14 days; no body weight in the last 7 days"
    assert compute_renal(patient(sex=None))["renal.crcl"].missing == "no sex recorded"
    assert compute_renal(patient(age=None))["renal.crcl"].missing == "no birth date"


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


# --- renal: a current creatinine -------------------------------------------------------------------------------


@pytest.mark.parametrize(("hours", "used"), [(6, True), (48, True), (48.5, False), (200, False)])
def test_only_a_creatinine_within_the_window_is_used(hours: float, used: bool) -> None:
    crcl = compute_renal(patient(creatinine_age=hours))["renal.crcl"]
    assert (crcl.value is not None) is used
    if not used:
        assert crcl.missing is not None
        assert crcl.missing.startswith("current creatinine needed: the newest, 2 mg/dL at")
        assert f"is {hours:g} h old, more than 48 hours" in crcl.missing


def test_the_creatinine_window_is_the_rule_file_s() -> None:
    assert compute_renal(patient(creatinine_age=60), renal(creatinine_window=72))["renal.crcl"].value == 30.0


# --- renal: weight basis ---------------------------------------------------------------------------------------

# 60 years, creatinine 3.0 mg/dL: 80 / 216 per kg. A man 178 cm tall (70.08 in): Devine 50 + 2.3 x 10.08.
OBESE = {"age": 60, "weight": 120, "creatinine": 3.0, "height": 178}
IDEAL_MALE = 50 + 2.3 * (178 / 2.54 - 60)


@pytest.mark.parametrize(
    ("basis", "weight"),
    [
        ("actual", 120),
        ("ideal", IDEAL_MALE),
        ("adjusted", IDEAL_MALE + 0.4 * (120 - IDEAL_MALE)),
    ],
)
def test_each_weight_basis(basis: str, weight: float) -> None:
    crcl = compute_renal(patient(**OBESE), renal(weight_basis=basis))["renal.crcl"]
    assert crcl.value == pytest.approx(80 * weight / 216)
    assert basis in (crcl.detail or "")


def test_ideal_and_adjusted_show_how_the_weight_was_made() -> None:
    ideal = compute_renal(patient(**OBESE), renal(weight_basis="ideal"))["renal.crcl"]
    assert "Devine ideal body weight 73.2 kg for 178 cm (male); actual 120 kg" in (ideal.detail or "")
    assert ideal.evidence == ("Observation/scr", "Observation/w", "Observation/h")
    adjusted = compute_renal(patient(**OBESE), renal(weight_basis="adjusted"))["renal.crcl"]
    assert "adjusted body weight 91.9 kg" in (adjusted.detail or "")


def test_women_have_devine_s_lower_base() -> None:
    woman = patient(**{**OBESE, "sex": "female"})
    ideal = 45.5 + 2.3 * (178 / 2.54 - 60)
    crcl = compute_renal(woman, renal(weight_basis="ideal"))["renal.crcl"]
    assert crcl.value == pytest.approx(80 * ideal / 216 * 0.85)


@pytest.mark.parametrize("basis", ["ideal", "adjusted"])
def test_an_actual_weight_below_the_ideal_is_used_as_it_is(basis: str) -> None:
    crcl = compute_renal(patient(age=60, weight=55, creatinine=3.0, height=178), renal(weight_basis=basis))
    assert crcl["renal.crcl"].value == pytest.approx(80 * 55 / 216)
    assert "not above the Devine ideal body weight" in (crcl["renal.crcl"].detail or "")


@pytest.mark.parametrize("basis", ["ideal", "adjusted"])
def test_ideal_and_adjusted_need_a_height(basis: str) -> None:
    crcl = compute_renal(patient(height=None), renal(weight_basis=basis))["renal.crcl"]
    assert crcl.missing == (f"no body height in the last 365 days; the {basis} body weight needs it")
    # The default, actual body weight, needs none.
    assert compute_renal(patient(height=None))["renal.crcl"].value == 30.0


def test_a_height_that_gives_no_ideal_weight_is_missing_not_an_error() -> None:
    crcl = compute_renal(patient(height=60), renal(weight_basis="ideal"))["renal.crcl"]
    assert "no positive ideal body weight" in (crcl.missing or "")


# --- renal: what dosing goes by ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("named", "expected"),
    [
        (patient(weight=59.8), "clearance"),
        (patient(), "none"),  # exactly 30 is not below 30
        (patient(on={"crrt": "Procedure/crrt"}, creatinine=1.0), "dialysis"),
        (patient(on={"dialysis_encounter": "Encounter/hd"}), "dialysis"),
        (patient(on={"dialysis_dependence": "Condition/z992"}, creatinine=None), "esrd"),
        # Dialysis decides over a recorded end-stage disease, and both over the clearance.
        (patient(on={"esrd": "Condition/n186", "hemodialysis": "Procedure/hd"}), "dialysis"),
    ],
)
def test_the_impairment_dosing_goes_by(named: dict[str, Fact], expected: str) -> None:
    assert compute_renal(named)["renal.impairment"].value == expected


def test_dialysis_names_its_evidence_whatever_cockcroft_gault_says() -> None:
    out = compute_renal(patient(creatinine=1.0, on={"crrt": "Procedure/crrt"}))
    assert out["renal.crcl"].value == pytest.approx(60)
    impairment = out["renal.impairment"]
    assert impairment.evidence == ("Procedure/crrt",)
    assert impairment.detail == "crrt Procedure/crrt"


def test_without_a_clearance_or_a_dialysis_record_the_impairment_is_unknown() -> None:
    impairment = compute_renal(patient(weight=None))["renal.impairment"]
    assert impairment.value is None
    assert impairment.missing is not None and impairment.missing.startswith("no body weight")


def test_unread_procedures_keep_a_normal_clearance_from_ruling_dialysis_out() -> None:
    out = compute_renal(patient(creatinine=1.0), unavailable={"procedures": "HTTP 500"})
    assert out["renal.impairment"].value is None
    assert out["renal.impairment"].missing == (
        "CrCl 60.0 mL/min, but dialysis and end-stage renal disease could not be excluded "
        "(procedures could not be read: HTTP 500)"
    )
    # A low clearance decides without them.
    low = compute_renal(patient(weight=50), unavailable={"procedures": "HTTP 500"})
    assert low["renal.impairment"].value == "clearance"


@pytest.mark.parametrize(
    ("route", "interval", "expected"),
    [
        ("sc", 24, True),
        ("sc", 47, True),
        ("sc", 48, False),
        ("sc", 72, False),
        ("iv", 8, False),
        (None, 24, False),
    ],
)
def test_a_subcutaneous_order_more_often_than_every_48_h(
    route: str | None, interval: float, expected: bool
) -> None:
    fact = compute_renal(patient(route=route, interval=interval))["renal.sc_too_frequent"]
    assert fact.value is expected


def test_a_subcutaneous_order_without_an_interval_is_unknown() -> None:
    fact = compute_renal(patient(route="sc", interval=None))["renal.sc_too_frequent"]
    assert fact.value is None
    assert "a sc order with no interval" in (fact.missing or "")


def test_the_rule_file_configures_renal() -> None:
    settings = renal()
    assert (settings.min_age, settings.weight_basis, settings.unstated_sex) == (18, "actual", "lower")
    assert (settings.cap, settings.sc_interval, settings.crcl_threshold) == (1200, 48, 30)
    assert settings.creatinine_window == timedelta(hours=48)
    assert settings.sets.dialysis == SETS
    assert settings.sets.esrd == ESRD_SETS


@pytest.mark.parametrize("basis", ["actual", "ideal", "adjusted"])
def test_every_weight_basis_configures(basis: str) -> None:
    assert renal(weight_basis=basis).weight_basis == basis


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"weight_basis": "lean"}, "must be one of actual, ideal, adjusted"),
        ({"unstated_sex": "female"}, "must be one of lower, higher"),
        ({"dose_factor": 0}, "dose_factor must be above 0"),
        ({"renal_cap": 1000}, "renal_cap 1000 mg/d is not dose_factor x series_max"),
        ({"adjusted_factor": 1.5}, "adjusted_factor must be between 0 and 1"),
        ({"dialysis_sets": ["hemodialysis", "haemofiltration"]}, "haemofiltration not in rules/facts"),
        ({"min_age": None}, "must define parameter 'min_age'"),
        ({"creatinine_window": None}, "must define parameter 'creatinine_window'"),
    ],
)
def test_bad_settings_fail_configuration(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        renal(**changes)


# --- aki -----------------------------------------------------------------------------------------------


def scr(ident: str, hours_ago: float, value: float, unit: str = "mg/dL", **extra: Any) -> Any:
    code = UMOL_L if unit == "umol/L" else MG_DL
    time = (NOW - timedelta(hours=hours_ago)).isoformat()
    return observation(ident, code, value, unit, time, **extra)


def compute_aki(*results: Any, settings: AkiSettings | None = None, **facts: Any) -> dict[str, Fact]:
    return (settings or aki()).compute({}, make_facts(results, now=NOW, **facts))


def test_every_aki_fact_is_produced() -> None:
    names = {s.name for s in AcuteKidneyInjury().specs(catalog(), rule_params("acute-kidney-injury"))}
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


# --- wording ---------------------------------------------------------------------------------------------


def configured_from(path: Path) -> Params:
    spec = RuleFile.model_validate(load_yaml(path).data)
    return Params(spec.id, dict(spec.parameters), catalog())


def test_the_renal_wording_is_the_rule_file_s(tmp_path: Path) -> None:
    """The renal details and reasons are the templates of renal-dose.yaml, read from the file."""
    path = copy_rules(tmp_path) / "renal-dose.yaml"
    edit(
        path,
        "every {hours} h; the label's renal interval is every {label} h",
        "q{hours}h (label: q{label}h)",
    )
    edit(path, "Cockcroft-Gault does not apply under {min_age} years (age {age})", "CG: {age} < {min_age} y")
    edit(path, "Cockcroft-Gault **{value} mL/min** {inputs}", "CrCl **{value}** ({inputs})")
    edit(path, "value: [age, weight, sex, height]", "value: [Alter, Gewicht, Geschlecht, Größe]")
    edit(path, "creatinine must be positive, not {value}", "SCr {value} is not above 0")
    settings = Renal().configure(configured_from(path), catalog(), {})
    assert (
        compute_renal(patient(route="sc", interval=24), settings)["renal.sc_too_frequent"].detail
        == "q24h (label: q48h)"
    )
    assert compute_renal(patient(age=12), settings)["renal.crcl"].missing == "CG: 12 < 18 y"
    detail = str(compute_renal(patient(), settings)["renal.crcl"].detail)
    assert detail.startswith("CrCl **30.0** (from age 68 years; actual body weight 60 kg"), detail
    limit = compute_renal(patient(weight=None, sex=None), settings)["renal.creatinine_limit"]
    assert limit.missing == "missing Gewicht, Geschlecht"
    zero = compute_renal(patient(creatinine=0.0), settings)["renal.crcl"]
    assert zero.missing == "Cockcroft-Gault cannot use these inputs: SCr 0.0 is not above 0"


def test_the_aki_wording_is_the_rule_file_s(tmp_path: Path) -> None:
    """The aki details, summary and reasons are the templates of acute-kidney-injury.yaml."""
    path = copy_rules(tmp_path) / "acute-kidney-injury.yaml"
    edit(
        path,
        "SCr {reference}→{value} {unit} in {hours} h",
        "SCr {reference} to {value} {unit}, {hours} h",
    )
    edit(path, "KDIGO stage **{stage}**: {finding}", "Stage **{stage}** - {finding}")
    edit(path, "only one {analyte} in the last {window}", "a single {analyte} within {window}")
    settings = AcuteKidneyInjury().configure(configured_from(path), catalog(), {})
    out = compute_aki(scr("a", 30, 1.0), scr("b", 6, 1.3), settings=settings)
    assert out["aki.summary"].value == "SCr 1.0 to 1.3 mg/dL, 24 h"
    assert str(out["aki.stage"].detail).startswith("Stage **1** - creatinine 1.3 mg/dL at 2026-11-23 06:00")
    one = compute_aki(scr("a", 6, 1.1), settings=settings)["aki.stage"]
    assert one.missing == "a single creatinine within 14 days (1.1 mg/dL at 2026-11-23 06:00)"


def test_a_wrong_number_of_input_words_fails_configuration() -> None:
    with pytest.raises(ParameterError, match="must list 4 texts, for: age, weight, sex, height"):
        renal(limit_input_words=["age", "weight"])
