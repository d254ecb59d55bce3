"""Per-analyte lab facts: latest, worst (censored values as bounds), count, age, windows, units, ANC."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cds_service.data.resources import CodeableConcept, Coding
from cds_service.facts import units as units_module
from cds_service.facts.labs import Point, _nearest_in_time
from tests.facts.support import LOINC, NOW, facts_of, fixture, observation

FERRITIN = "2276-4"
PLATELETS = "777-3"


def iso(delta: timedelta) -> str:
    return (NOW - delta).isoformat()


def test_fixture_ferritin_censored_above_every_exact_value_is_a_lower_bound() -> None:
    facts = facts_of(fixture("mas-adult-female"))
    worst = facts["ferritin.worst"]
    assert (worst.value, worst.comparator, worst.unit) == (40000, ">", "ug/L")
    assert worst.evidence == ("Observation/mas-f1-ferritin-10",)
    latest = facts["ferritin.latest"]
    assert (latest.value, latest.comparator, latest.native_value, latest.native_unit) == (
        40000,
        ">",
        40000,
        "ug/L",
    )
    assert facts["ferritin.count"].value == 10
    assert facts["ferritin.hours_since_latest"].value == 30
    assert facts["ferritin.hours_since_latest"].unit == "h"


def test_fixture_lowest_values() -> None:
    facts = facts_of(fixture("mas-adult-female"))
    assert facts["hemoglobin.worst"].value == 8.3
    # The entered-in-error 412 never counts.
    assert facts["platelets.worst"].value == 48
    assert facts["platelets.count"].value == 6
    assert facts["anc.worst"].value == 0.9
    assert facts["temperature.worst"].value == 39.8


def test_an_exact_value_above_a_censored_one_is_still_only_a_lower_bound() -> None:
    labs = [
        observation("exact", FERRITIN, 50000, "ug/L", iso(timedelta(days=2))),
        observation("censored", FERRITIN, 40000, "ug/L", iso(timedelta(days=1)), comparator=">"),
    ]
    worst = facts_of(labs)["ferritin.worst"]
    assert (worst.value, worst.comparator, worst.evidence) == (50000, ">=", ("Observation/exact",))
    assert worst.detail is not None and ">40000 ug/L (Observation/censored) may be higher" in worst.detail


def test_censored_values_below_a_minimum_bound_it_from_above() -> None:
    labs = [
        observation("exact", PLATELETS, 40, "10*9/L", iso(timedelta(days=2))),
        observation("low", PLATELETS, 10, "10*9/L", iso(timedelta(days=1)), comparator="<"),
    ]
    worst = facts_of(labs)["platelets.worst"]
    assert (worst.value, worst.comparator) == (10, "<")


def test_an_upper_bound_above_the_lowest_exact_value_may_still_hide_a_lower_one() -> None:
    labs = [
        observation("exact", PLATELETS, 5, "10*9/L", iso(timedelta(days=2))),
        observation("low", PLATELETS, 10, "10*9/L", iso(timedelta(days=1)), comparator="<"),
    ]
    worst = facts_of(labs)["platelets.worst"]
    assert (worst.value, worst.comparator, worst.evidence) == (5, "<=", ("Observation/exact",))


def test_a_lower_bound_above_the_lowest_exact_value_leaves_it_exact() -> None:
    labs = [
        observation("exact", PLATELETS, 5, "10*9/L", iso(timedelta(days=2))),
        observation("high", PLATELETS, 1000, "10*9/L", iso(timedelta(days=1)), comparator=">"),
    ]
    worst = facts_of(labs)["platelets.worst"]
    assert (worst.value, worst.comparator) == (5, None)


def test_si_units_are_converted_and_the_reported_value_kept() -> None:
    facts = facts_of(fixture("si-units-male"))
    tg = facts["triglycerides.latest"]
    assert tg.value == pytest.approx(318.852)
    assert (tg.unit, tg.native_value, tg.native_unit) == ("mg/dL", 3.6, "mmol/L")
    assert facts["temperature.worst"].value == pytest.approx(39.5)
    assert facts["temperature.worst"].native_unit == "[degF]"
    assert facts["hemoglobin.worst"].value == pytest.approx(10.9)
    assert facts["creatinine.latest"].value == pytest.approx(97 / 88.4016973, rel=1e-9)
    assert facts["fibrinogen.worst"].value == pytest.approx(160)
    assert facts["patient.weight"].value == pytest.approx(83.27955913)


@pytest.mark.parametrize(
    ("age", "used"),
    [(timedelta(days=14), True), (timedelta(days=14, seconds=1), False), (timedelta(days=-1), True)],
)
def test_window_edges(age: timedelta, used: bool) -> None:
    facts = facts_of([observation("f", FERRITIN, 900, "ug/L", iso(age))])
    if used:
        assert facts["ferritin.worst"].value == 900
        assert facts["ferritin.count"].value == 1
    else:
        assert facts["ferritin.worst"].value is None
        assert facts["ferritin.worst"].missing == "no ferritin in the last 14 days (last on 2026-11-09)"
        assert facts["ferritin.count"].value == 0


def test_weight_has_its_own_seven_day_window() -> None:
    old = observation("w", "29463-7", 70, "kg", iso(timedelta(days=8)))
    facts = facts_of([old])
    assert facts["patient.weight"].value is None
    assert facts["patient.weight"].missing is not None
    assert facts["patient.weight"].missing.startswith("no body weight in the last 7 days")


def test_a_unit_that_does_not_convert_is_named_not_dropped() -> None:
    facts = facts_of([observation("bad", FERRITIN, 900, "mg")])
    assert facts["ferritin.latest"].value is None
    assert facts["ferritin.latest"].missing == "Observation/bad is in mg, which does not convert to µg/L"
    assert facts["ferritin.count"].value is None


def test_an_unknown_unit_is_named() -> None:
    facts = facts_of([observation("odd", FERRITIN, 900, "xyz")])
    assert facts["ferritin.worst"].missing == "Observation/odd is in an unrecognised unit"


def test_a_bad_unit_beside_good_values_is_noted_and_counted_as_a_bound() -> None:
    labs = [
        observation("good", FERRITIN, 900, "ng/mL", iso(timedelta(days=1))),
        observation("bad", FERRITIN, 2, "mg", iso(timedelta(days=2))),
    ]
    facts = facts_of(labs)
    assert facts["ferritin.worst"].value == 900
    assert (
        facts["ferritin.worst"].detail == "not used: Observation/bad is in mg, which does not convert to µg/L"
    )
    assert (facts["ferritin.count"].value, facts["ferritin.count"].comparator) == (1, ">=")


def test_an_ehr_unit_alias_is_read() -> None:
    latest = facts_of([observation("p", PLATELETS, 150, "K/uL")])["platelets.latest"]
    assert (latest.value, latest.native_unit) == (150, "10*3/uL")


def test_untimed_results_cannot_be_placed_in_the_window() -> None:
    facts = facts_of([observation("untimed", FERRITIN, 900, "ug/L", time=None)])
    assert facts["ferritin.latest"].missing == "Observation/untimed has no time"


def test_scd25_in_pg_per_ml_is_not_converted() -> None:
    facts = facts_of([observation("il2r", "76039-7", 858, "pg/mL")])
    assert facts["scd25.worst"].value is None
    assert facts["scd25.worst"].missing == "Observation/il2r is in pg/mL, which does not convert to U/mL"
    facts = facts_of([observation("il2r", "76039-7", 3000, "U/mL")])
    assert (facts["scd25.worst"].value, facts["scd25.worst"].native_unit) == (3000, "U/mL")


def test_one_observation_with_two_codes_counts_once() -> None:
    both = observation("cr", "2160-0", 1.2, "mg/dL")
    coded_twice = msgspec.structs.replace(
        both, code=CodeableConcept(coding=[Coding(LOINC, "2160-0"), Coding(LOINC, "14682-9")])
    )
    assert facts_of([coded_twice])["creatinine.count"].value == 1


def test_anc_is_derived_from_wbc_and_neutrophil_percent_at_the_same_time() -> None:
    labs = [
        observation("wbc", "6690-2", 2.0, "10*9/L", iso(timedelta(hours=5))),
        observation("neut", "770-8", 40, "%", iso(timedelta(hours=5, minutes=30))),
    ]
    anc = facts_of(labs)["anc.latest"]
    assert (anc.value, anc.unit) == (0.8, "10*9/L")
    assert anc.detail == "derived from WBC x neutrophils %"
    assert anc.evidence == ("Observation/wbc", "Observation/neut")


def test_anc_is_not_derived_from_results_hours_apart() -> None:
    labs = [
        observation("wbc", "6690-2", 2.0, "10*9/L", iso(timedelta(hours=2))),
        observation("neut", "770-8", 40, "%", iso(timedelta(hours=5))),
    ]
    anc = facts_of(labs)["anc.latest"]
    assert anc.value is None
    assert anc.missing == (
        "no ANC in the last 14 days, and no WBC with neutrophils % within 1 hour of each other"
    )


def test_an_absolute_anc_is_preferred_to_a_derived_one() -> None:
    labs = [
        observation("abs", "751-8", 1.5, "10*9/L", iso(timedelta(days=3))),
        observation("wbc", "6690-2", 2.0, "10*9/L", iso(timedelta(hours=5))),
        observation("neut", "770-8", 40, "%", iso(timedelta(hours=5))),
    ]
    anc = facts_of(labs)["anc.latest"]
    assert (anc.value, anc.evidence, anc.detail) == (1.5, ("Observation/abs",), None)


def test_unreadable_lab_data_makes_every_lab_fact_unknown() -> None:
    facts = facts_of(unavailable={"labs": "the FHIR server timed out"})
    reason = "laboratory results and vital signs could not be read: the FHIR server timed out"
    assert facts["ferritin.worst"].missing == reason
    assert facts["ferritin.count"].value is None
    assert facts["ferritin.count"].missing == reason


def test_when_every_result_is_below_a_limit_the_maximum_is_too() -> None:
    labs = [
        observation("a", FERRITIN, 15, "ug/L", iso(timedelta(days=1)), comparator="<"),
        observation("b", FERRITIN, 15, "ug/L", iso(timedelta(days=2)), comparator="<="),
    ]
    worst = facts_of(labs)["ferritin.worst"]
    assert (worst.value, worst.comparator, worst.evidence) == (15, "<=", ("Observation/b",))


def test_a_comparator_that_is_no_bound_is_not_used() -> None:
    facts = facts_of([observation("ad", FERRITIN, 900, "ug/L", comparator="ad")])
    assert facts["ferritin.worst"].missing == "Observation/ad has comparator 'ad', which bounds nothing"


def test_a_hundred_results_with_one_bad_unit_parse_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = units_module._registry()
    parsed: list[str] = []
    original = registry.from_ucum
    monkeypatch.setattr(registry, "from_ucum", lambda code: parsed.append(code) or original(code))
    bad, too_long = "ng/mL.ng/mL?", "ng/mL." * 200
    labs = [
        observation(f"r{n}", FERRITIN, 900 + n, bad if n % 2 else too_long, iso(timedelta(hours=n)))
        for n in range(100)
    ]
    facts = facts_of(labs)
    assert parsed.count(bad) == 1
    assert too_long not in parsed
    missing = facts["ferritin.worst"].missing or ""
    # Named as unusable, and the EHR's unit never echoed (it reaches card text).
    assert "Observation/r1 is in an unrecognised unit" in missing
    assert "Observation/r0 is in an unrecognised unit" in missing
    assert bad not in missing and "ng/mL.ng/mL." not in missing


@given(
    st.lists(st.integers(0, 200), min_size=1, max_size=30),
    st.integers(-20, 220),
)
def test_the_nearest_result_in_time_is_the_one_a_full_scan_finds(minutes: list[int], asked: int) -> None:
    # Found by bisection since the ANC pairing scanned every percentage for every count (n x m); many
    # equal times and equal distances, where the first in list order must win as it did.
    points = [
        Point(float(n), None, float(n), "%", NOW + timedelta(minutes=m), (f"Observation/{n}",))
        for n, m in enumerate(minutes)
    ]
    time = NOW + timedelta(minutes=asked)
    expected = min(points, key=lambda p: abs((p.time - time).total_seconds()))
    assert _nearest_in_time(points)(time) is expected
