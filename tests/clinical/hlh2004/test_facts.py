"""The hlh calculation: the HLH-2004 criteria from real named facts (observation hygiene, units, censoring
as the service applies them), configured by rules/hlh-2004.yaml. The 5-of-8 arithmetic is tested in
test_calculator.py; the HScore and MAS 2016 facts in tests/clinical/hscore and tests/clinical/mas2016."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from cds_service.clinical.base import ParameterError, Params
from cds_service.clinical.hlh2004.facts import CRITERIA, Hlh
from cds_service.ruleformat.rulefile import Parameter
from tests.clinical.hlh2004.support import (
    LOCAL,
    compute,
    condition,
    flagged,
    full_workup,
    patient,
    rule,
    settings,
)
from tests.facts.support import catalog, observation, rule_params

# --- contract --------------------------------------------------------------------------------------


def test_every_fact_of_the_specs_is_produced_and_no_other() -> None:
    names = {s.name for s in Hlh().specs(catalog(), rule_params("hlh-2004"))}
    for resources in (full_workup(), [patient()], [patient(None)]):
        assert set(compute(*resources)) == names


def test_text_facts_stay_within_their_declared_width_and_values() -> None:
    specs = {s.name: s for s in Hlh().specs(catalog(), rule_params("hlh-2004"))}
    for resources in (full_workup(), [patient()], [patient(), observation("t1", "8310-5", 36.9, "Cel")]):
        for name, fact in compute(*resources).items():
            spec = specs[name]
            if spec.kind == "text" and isinstance(fact.value, str):
                if spec.values:
                    assert fact.value in spec.values, name
                else:
                    assert spec.width is not None and len(fact.value) <= spec.width, name


# --- aggregation -----------------------------------------------------------------------------------


def test_full_workup_fulfils_six_of_eight() -> None:
    out = compute(*full_workup())
    assert out["hlh.status"].value == "fulfilled"
    assert (out["hlh.met"].value, out["hlh.unknown"].value, out["hlh.not_met"].value) == (6, 2, 0)
    assert out["hlh.met_list"].value == "fever, splenomegaly, cytopenias +3 more"
    assert out["hlh.unknown_list"].value == "hemophagocytosis, NK activity"
    assert out["hlh.not_met_list"].value == "none"
    assert "Observation/t1" in out["hlh.met"].evidence
    evidence = str(out["hlh.evidence"].value)
    assert evidence.count("\n- **") == len(CRITERIA) - 1
    assert "- **fever**: met: highest 39.7 Cel (criterion >=38.5 Cel)" in evidence
    assert "triglycerides 412 mg/dL high (criterion >=265 mg/dL; fasting status unknown)" in evidence
    assert out["hlh.missing_tests"].value == (
        "bone marrow (or spleen, lymph node, liver) for hemophagocytosis; NK-cell activity"
    )


def test_no_data_for_any_criterion_leaves_the_status_missing_with_the_reason() -> None:
    out = compute(patient())
    assert out["hlh.status"].value is None
    assert "no data for any of the 8 HLH-2004 criteria" in str(out["hlh.status"].missing)
    assert "no ferritin in the last 14 days" in str(out["hlh.status"].missing)
    assert out["hlh.unknown"].value == 8


def test_five_criteria_not_met_cannot_fulfil() -> None:
    out = compute(
        patient(),
        observation("t1", "8310-5", 37.4, "Cel"),
        observation("hb1", "718-7", 13.1, "g/dL"),
        observation("plt1", "777-3", 231, "10*9/L"),
        observation("anc1", "751-8", 4.2, "10*9/L"),
        observation("tg1", "2571-8", 142, "mg/dL"),
        observation("fib1", "3255-7", 388, "mg/dL"),
        observation("fer1", "2276-4", 310, "ug/L"),
        condition("spleen", "16294009", "refuted"),
    )
    assert out["hlh.status"].value == "cannot_fulfil"
    assert out["hlh.not_met"].value == 5
    assert out["hlh.splenomegaly"].value == "not_met"


# --- criteria: native-unit boundaries --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [(38.5, "Cel", "met"), (38.4, "Cel", "not_met"), (101.3, "[degF]", "met"), (101.2, "[degF]", "not_met")],
)
def test_fever_is_inclusive_in_celsius_and_fahrenheit(value: float, unit: str, expected: str) -> None:
    assert compute(patient(), observation("t1", "8310-5", value, unit))["hlh.fever"].value == expected


@pytest.mark.parametrize(
    ("tg", "fibrinogen", "expected"),
    [
        ((3.0, "mmol/L"), (2.0, "g/L"), "met"),  # 3.0 mmol/L is 265.7 mg/dL converted, but met natively
        ((2.99, "mmol/L"), (1.5, "g/L"), "met"),  # fibrinogen exactly 1.5 g/L: inclusive
        ((2.99, "mmol/L"), (1.51, "g/L"), "not_met"),
        ((265, "mg/dL"), (151, "mg/dL"), "met"),
        ((264, "mg/dL"), (151, "mg/dL"), "not_met"),
        ((264, "mg/dL"), None, "unknown"),  # one normal and one unmeasured decides nothing
    ],
)
def test_triglycerides_or_fibrinogen(tg: Any, fibrinogen: Any, expected: str) -> None:
    resources = [patient(), observation("tg1", "14927-8" if tg[1] == "mmol/L" else "2571-8", *tg)]
    if fibrinogen:
        resources.append(observation("fib1", "3255-7", *fibrinogen))
    assert compute(*resources)["hlh.tg_fibrinogen"].value == expected


def test_hemoglobin_90_g_per_l_is_not_low_and_89_is() -> None:
    base = [
        patient(),
        observation("plt1", "777-3", 80, "10*9/L"),
        observation("anc1", "751-8", 1.5, "10*9/L"),
    ]
    out = compute(*base, observation("hb1", "718-7", 90, "g/L"))
    assert out["hlh.cytopenias"].value == "not_met"
    assert "hemoglobin 90 g/L not low (criterion <90 g/L)" in str(out["hlh.cytopenias"].detail)
    assert compute(*base, observation("hb1", "718-7", 89, "g/L"))["hlh.cytopenias"].value == "met"


@pytest.mark.parametrize(
    ("birth", "hemoglobin", "expected"),
    [
        ("2026-10-27", 9.5, "met"),  # 27 days old: infant limit 10 g/dL
        ("2026-10-26", 9.5, "not_met"),  # 28 days old: adult limit 9 g/dL
        (None, 9.5, "undecided"),  # no age: between the two limits; measured, the age is missing
        (None, 8.9, "met"),
        (None, 10.0, "not_met"),
    ],
)
def test_infant_hemoglobin_limit_applies_under_28_days(
    birth: str | None, hemoglobin: float, expected: str
) -> None:
    out = compute(
        patient(birth),
        observation("hb1", "718-7", hemoglobin, "g/dL"),
        observation("plt1", "777-3", 60, "10*9/L"),
        observation("anc1", "751-8", 2.0, "10*9/L"),
    )
    assert out["hlh.cytopenias"].value == expected


def test_wbc_below_one_proves_the_anc_low_but_above_one_decides_nothing() -> None:
    base = [patient(), observation("plt1", "777-3", 60, "10*9/L"), observation("hb1", "718-7", 11, "g/dL")]
    proved = compute(*base, observation("wbc1", "6690-2", 0.9, "10*9/L"))
    assert proved["hlh.cytopenias"].value == "met"
    assert "Observation/wbc1" in proved["hlh.cytopenias"].evidence
    undecided = compute(*base, observation("wbc1", "6690-2", 1.2, "10*9/L"))
    assert undecided["hlh.cytopenias"].value == "unknown"
    assert "WBC 1.2 10*9/L does not decide it" in str(undecided["hlh.cytopenias"].detail)


@pytest.mark.parametrize(
    ("ferritin", "comparator", "expected"),
    [(40000, ">", "met"), (500, None, "met"), (499, None, "not_met"), (400, "<", "not_met")],
)
def test_ferritin_inclusive_and_censored(ferritin: float, comparator: str | None, expected: str) -> None:
    out = compute(patient(), observation("fer1", "2276-4", ferritin, "ug/L", comparator=comparator))
    assert out["hlh.ferritin"].value == expected


def test_splenomegaly_present_refuted_or_unknown() -> None:
    assert compute(patient(), condition("s", "16294009"))["hlh.splenomegaly"].value == "met"
    refuted = compute(patient(), condition("s", "16294009", "refuted"))["hlh.splenomegaly"]
    assert refuted.value == "not_met"
    assert refuted.evidence == ("Condition/s",)
    assert compute(patient())["hlh.splenomegaly"].value == "unknown"


# --- criteria read from Observations directly -------------------------------------------------------

RANGE = [{"low": {"value": 175, "code": "pg/mL"}, "high": {"value": 858, "code": "pg/mL"}}]


@pytest.mark.parametrize(
    ("value", "unit", "flags", "ranges", "expected"),
    [
        (2400, "[U]/mL", (), None, "met"),  # inclusive
        (2399, "U/mL", (), None, "not_met"),
        (3150, "pg/mL", ("H",), None, "met"),
        (900, "pg/mL", (), RANGE, "met"),  # above the reference range in its own unit
        (700, "pg/mL", (), RANGE, "not_met"),
        (700, "pg/mL", ("N",), None, "not_met"),
        (5000, "pg/mL", (), None, "undecided"),  # never converted: no flag, no range; measured, not "unknown"
        (900, "pg/mL", (), [{"high": {"value": 0.9, "code": "ng/mL"}}], "undecided"),  # range in another unit
    ],
)
def test_scd25_units_or_the_labs_own_flag(
    value: float, unit: str, flags: tuple[str, ...], ranges: Any, expected: str
) -> None:
    obs = flagged("cd25", "76039-7", value, unit, *flags, referenceRange=ranges)
    out = compute(patient(), obs)
    assert out["hlh.scd25"].value == expected
    if expected == "undecided":
        assert "pg/mL is not converted to [U]/mL" in str(out["hlh.scd25"].detail)
        assert "cannot be compared with the 2400 [U]/mL criterion" in str(out["hlh.scd25"].detail)
        # Measured: not a test to order again.
        assert "sCD25 (soluble IL-2 receptor)" not in str(out["hlh.missing_tests"].value)
        assert "sCD25: measured, not comparable" in str(out["hlh.missing_tests"].value)
        assert (out["hlh.unmeasured"].value, out["hlh.undecided"].value) == (
            out["hlh.unknown"].value - 1,
            1,
        )


def test_scd25_flagged_pg_per_ml_counts_even_beside_a_normal_u_per_ml_result() -> None:
    out = compute(
        patient(),
        observation("cd25-u", "76039-7", 900, "[U]/mL"),
        flagged("cd25-pg", "76039-7", 3150, "pg/mL", "HH", time="2026-11-21T06:00:00Z"),
    )
    assert out["hlh.scd25"].value == "met"
    assert set(out["hlh.scd25"].evidence) == {"Observation/cd25-u", "Observation/cd25-pg"}


def test_nk_activity_without_configured_codes_is_unknown_and_says_so() -> None:
    out = compute(patient(), flagged("nk1", "NK", 2, "1", "L", system=LOCAL))
    assert out["hlh.nk_activity"].value == "unknown"
    # Said in words a clinician reads: no parameter name in card text.
    assert "no local code is configured" in str(out["hlh.nk_activity"].detail)


@pytest.mark.parametrize(
    ("value", "flags", "ranges", "time", "expected"),
    [
        (2, ("L",), None, "2026-11-22T06:00:00Z", "met"),
        (2, ("LL",), None, "2026-11-22T06:00:00Z", "met"),
        (2, (), [{"low": {"value": 10}}], "2026-11-22T06:00:00Z", "met"),
        (14, (), [{"low": {"value": 10}}], "2026-11-22T06:00:00Z", "not_met"),
        (14, ("N",), None, "2026-11-22T06:00:00Z", "not_met"),
        (14, (), None, "2026-11-22T06:00:00Z", "undecided"),  # a result without a flag or range
        (2, ("L",), None, "2026-11-01T06:00:00Z", "unknown"),  # older than the 14-day window
    ],
)
def test_nk_activity_from_configured_local_codes(
    value: float, flags: tuple[str, ...], ranges: Any, time: str, expected: str
) -> None:
    configured = settings(nk_activity_codes=[f"{LOCAL}|NK"])
    obs = flagged("nk1", "NK", value, "1", *flags, system=LOCAL, time=time, referenceRange=ranges)
    out = compute(patient(), obs, configured=configured)
    assert out["hlh.nk_activity"].value == expected
    if time.startswith("2026-11-01"):
        assert "no NK-cell activity result in the last 14 days" in str(out["hlh.nk_activity"].detail)


def test_hemophagocytosis_unknown_unless_a_configured_code_is_flagged() -> None:
    marrow = flagged("bm1", "HPC", None, None, "POS", system=LOCAL)
    assert compute(patient(), marrow)["hlh.hemophagocytosis"].value == "unknown"
    configured = settings(hemophagocytosis_codes=[f"{LOCAL}|HPC"])
    assert compute(patient(), marrow, configured=configured)["hlh.hemophagocytosis"].value == "met"
    negative = compute(
        patient(), flagged("bm1", "HPC", None, None, "NEG", system=LOCAL), configured=configured
    )
    assert negative["hlh.hemophagocytosis"].value == "not_met"
    assert "does not exclude HLH" in str(negative["hlh.hemophagocytosis"].detail)
    silent = compute(patient(), flagged("bm1", "HPC", None, None, system=LOCAL), configured=configured)
    assert silent["hlh.hemophagocytosis"].value == "undecided"  # a report, but no flag says what it found


# --- configuration ---------------------------------------------------------------------------------


def test_every_threshold_comes_from_the_rule_file() -> None:
    spec = rule()
    for name in ("fever", "required_criteria", "hscore_probability_percents", "mas_ferritin"):
        parameters: Mapping[str, Parameter] = {k: v for k, v in spec.parameters.items() if k != name}
        with pytest.raises(ParameterError) as error:
            Hlh().configure(Params(spec.id, parameters, catalog()), catalog(), {})
        assert error.value.name == name


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("criterion_labels", ["fever", "spleen"]),
        ("hscore_probability_percents", [1, 3, 5]),
        ("nk_activity_codes", ["NK-without-system"]),
        ("required_criteria", 4.5),
    ],
)
def test_malformed_parameters_are_refused(name: str, value: Any) -> None:
    with pytest.raises(ParameterError):
        settings(**{name: value})


def test_the_evidence_lines_are_worded_by_the_rule_file_and_quote_the_ehr_escaped() -> None:
    """The line and reading formats are hlh-2004.yaml's templates; EHR text inside them (an
    interpretation code, a unit) is escaped as Markdown, the template's own Markdown is not."""
    configured = settings(
        nk_activity_codes=[f"{LOCAL}|NK"],
        evidence_line="* _{label}_ -> {text}",
        reading_text="{resource} at {time}: {value} [{interpretation}; {range}]",
        reading_interpretation_text="flag {codes}",
        reading_no_range_text="no range",
    )
    nk = flagged("nk1", "NK", 2, "1", "*L_", system=LOCAL, time="2026-11-22T06:00:00Z")
    evidence = str(compute(patient(), nk, configured=configured)["hlh.evidence"].value)
    assert (
        "* _NK activity_ -> unknown: Observation/nk1 at 2026-11-22 06:00: 2 1 \\[flag \\*L\\_; no range\\]"
        in evidence.splitlines()
    ), evidence


def test_the_criterion_texts_and_words_are_the_rule_files() -> None:
    """Lineage and triglyceride words, the ANC proved by the WBC, splenomegaly and the unknown texts: each
    reads as hlh-2004.yaml words it."""
    configured = settings(
        lineage_words=["LOW", "NOT-LOW", "UNDECIDED"],
        triglycerides_words=["HIGH", "NOT-HIGH", "UNDECIDED"],
        unknown_text="?? {missing}",
        lineage_unknown_text="{label}?? {missing}",
        splenomegaly_text="<{result}|{finding}>",
        cytopenias_text="{result} {low}/{count} need {needed} [{hemoglobin}] [{platelets}] [{anc}]",
        anc_by_wbc_text="{wbc} {value} < {limit} proves {label}",
        triglycerides_text="TG {value} {word}",
        tg_fibrinogen_text="{result} <{triglycerides}> <{fibrinogen}>",
    )
    base = [patient(), observation("plt1", "777-3", 60, "10*9/L"), observation("hb1", "718-7", 11, "g/dL")]
    out = compute(
        *base,
        observation("wbc1", "6690-2", 0.9, "10*9/L"),
        observation("tg1", "2571-8", 412, "mg/dL"),
        condition("s", "16294009", "refuted"),
        configured=configured,
    )
    cytopenias = str(out["hlh.cytopenias"].detail).replace("\\", "")
    assert "met 2/3 need 2 [hemoglobin 11 g/dL NOT-LOW" in cytopenias, cytopenias
    assert "[platelets 60 10*9/L LOW" in cytopenias, cytopenias
    assert "[WBC 0.9 10*9/L < 1 10*9/L proves ANC]" in cytopenias, cytopenias
    evidence = str(out["hlh.evidence"].value).replace("\\", "")
    assert "**splenomegaly**: <not met|splenomegaly refuted>" in evidence, evidence
    assert "met <TG 412 mg/dL HIGH> <fibrinogen?? no fibrinogen" in evidence, evidence
    for label in ("fever", "ferritin", "sCD25"):
        assert f"**{label}**: ?? no " in evidence, evidence
    undecided = compute(
        *base,
        observation("wbc1", "6690-2", 1.2, "10*9/L"),
        configured=settings(anc_unknown_wbc_text="{label}: {wbc} {value} decides nothing ({missing})"),
    )
    assert "ANC: WBC 1.2 10*9/L decides nothing (" in str(undecided["hlh.cytopenias"].detail)


@pytest.mark.parametrize("name", ["lineage_words", "triglycerides_words"])
@pytest.mark.parametrize("value", [["low", "not low"], "low", [1, 2, 3]])
def test_the_comparison_words_are_three_texts(name: str, value: Any) -> None:
    with pytest.raises(ParameterError) as error:
        settings(**{name: value})
    assert error.value.name == name


def test_the_readings_and_limits_are_worded_by_the_rule_file() -> None:
    """Hemophagocytosis, NK-cell activity, sCD25 in another unit and the hemoglobin limits by age read as
    hlh-2004.yaml words them."""
    configured = settings(
        hemophagocytosis_codes=[f"{LOCAL}|HPC"],
        readings_text="{result} = {readings}",
        hemophagocytosis_negative_text="{text} [look elsewhere]",
        nk_not_configured_text="NK not set up",
        scd25_other_unit_text="{unit} vs {canonical}",
        reading_note_text="{text} / {note}",
        scd25_not_comparable_text="{text} [cannot compare with {limit}]",
        infant_limit_text="{limit} if under {days} d",
        any_age_limit_text="{adult} | {infant} | {missing}",
    )
    out = compute(
        patient(None),
        flagged("bm1", "HPC", None, None, "NEG", system=LOCAL),
        flagged("cd25", "76039-7", 3150, "pg/mL"),
        observation("hb1", "718-7", 9.5, "g/dL"),
        configured=configured,
    )
    evidence = str(out["hlh.evidence"].value).replace("\\", "")
    assert "**hemophagocytosis**: not met = NEG, " in evidence and "[look elsewhere]" in evidence, evidence
    assert "**NK activity**: unknown: NK not set up" in evidence, evidence
    assert "/ pg/mL vs [U]/mL [cannot compare with 2400 [U]/mL]" in evidence, evidence
    assert "(criterion <9 g/dL | <10 g/dL if under 28 d | " in evidence, evidence
