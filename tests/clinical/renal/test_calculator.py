"""Cockcroft-Gault: known values, the unknown-sex choice, and monotonicity. KDIGO AKI from serum
creatinine, in mg/dL and in umol/L."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cds_service.clinical.ferritin.calculator import Sample
from cds_service.clinical.renal.calculator import (
    AkiLimits,
    adjusted_weight,
    cockcroft_gault,
    cockcroft_gault_any_sex,
    creatinine_at_clearance,
    ideal_weight,
    judge,
    kdigo,
)
from tests.clinical.renal.kdigo_reference import reference_judge, reference_kdigo

ages = st.floats(min_value=18, max_value=120)
weights = st.floats(min_value=20, max_value=300)
creatinines = st.floats(min_value=0.1, max_value=20)


def test_known_values() -> None:
    assert cockcroft_gault(60, 72, 1.0, female=False) == pytest.approx(80.0)
    assert cockcroft_gault(60, 72, 1.0, female=True) == pytest.approx(68.0)
    # (140 - 80) * 60 / (72 * 2.5) = 20: halving clearance by doubling creatinine.
    assert cockcroft_gault(80, 60, 2.5, female=False) == pytest.approx(20.0)
    assert cockcroft_gault(80, 60, 1.25, female=False) == pytest.approx(40.0)


def test_any_sex() -> None:
    assert cockcroft_gault_any_sex(60, 72, 1.0, "male") == pytest.approx(80.0)
    assert cockcroft_gault_any_sex(60, 72, 1.0, "female") == pytest.approx(68.0)
    assert cockcroft_gault_any_sex(60, 72, 1.0, "other") == pytest.approx(68.0)
    assert cockcroft_gault_any_sex(60, 72, 1.0, "unknown") == pytest.approx(68.0)
    with pytest.raises(ValueError, match="sex"):
        cockcroft_gault_any_sex(60, 72, 1.0, "F")


@pytest.mark.parametrize(("weight", "creatinine"), [(72, 0), (72, -1), (0, 1.0), (-5, 1.0)])
def test_rejects_non_positive_inputs(weight: float, creatinine: float) -> None:
    with pytest.raises(ValueError):
        cockcroft_gault(60, weight, creatinine, female=False)


def test_devine_ideal_body_weight() -> None:
    # Devine 1974: 50 kg (men) or 45.5 kg (women) at 60 inches, plus 2.3 kg per inch.
    assert ideal_weight(70, 50, 2.3, 60) == pytest.approx(73)
    assert ideal_weight(64, 45.5, 2.3, 60) == pytest.approx(54.7)
    assert ideal_weight(58, 50, 2.3, 60) == pytest.approx(45.4)  # extrapolated below 5 ft
    with pytest.raises(ValueError, match="no positive ideal body weight"):
        ideal_weight(30, 45.5, 2.3, 60)


def test_adjusted_body_weight_adds_the_factor_of_the_excess() -> None:
    assert adjusted_weight(120, 70, 0.4) == pytest.approx(90)
    assert adjusted_weight(70, 70, 0.4) == 70


@given(ages, weights, creatinines, creatinines, st.booleans())
def test_decreases_as_creatinine_rises(age: float, weight: float, a: float, b: float, female: bool) -> None:
    low, high = sorted((a, b))
    assert cockcroft_gault(age, weight, low, female) >= cockcroft_gault(age, weight, high, female)


@given(ages, ages, weights, creatinines, st.booleans())
def test_decreases_with_age(a: float, b: float, weight: float, creatinine: float, female: bool) -> None:
    young, old = sorted((a, b))
    assert cockcroft_gault(young, weight, creatinine, female) >= cockcroft_gault(
        old, weight, creatinine, female
    )


@given(ages, weights, weights, creatinines, st.booleans())
def test_increases_with_weight(age: float, a: float, b: float, creatinine: float, female: bool) -> None:
    light, heavy = sorted((a, b))
    assert cockcroft_gault(age, light, creatinine, female) <= cockcroft_gault(age, heavy, creatinine, female)


@given(ages, weights, creatinines, st.sampled_from(["other", "unknown"]))
def test_unknown_sex_is_the_lower_estimate(age: float, weight: float, creatinine: float, sex: str) -> None:
    both = (cockcroft_gault(age, weight, creatinine, True), cockcroft_gault(age, weight, creatinine, False))
    assert cockcroft_gault_any_sex(age, weight, creatinine, sex) == min(both)


def test_creatinine_at_clearance_known_values() -> None:
    # (140 - 80) * 60 / (72 * 30) = 1.667 mg/dL gives 30 mL/min; a woman reaches it at 0.85 of that.
    assert creatinine_at_clearance(80, 60, 30, female=False) == pytest.approx(60 * 60 / (72 * 30))
    assert creatinine_at_clearance(80, 60, 30, female=True) == pytest.approx(0.85 * 60 * 60 / (72 * 30))


@pytest.mark.parametrize(
    ("age", "weight", "clearance"), [(60, 72, 0), (60, 0, 30), (140, 72, 30), (150, 72, 30)]
)
def test_creatinine_at_clearance_rejects_what_has_no_answer(
    age: float, weight: float, clearance: float
) -> None:
    with pytest.raises(ValueError):
        creatinine_at_clearance(age, weight, clearance, female=False)


@given(ages, weights, st.floats(min_value=5, max_value=150), st.booleans())
def test_creatinine_at_clearance_is_the_inverse(
    age: float, weight: float, clearance: float, female: bool
) -> None:
    creatinine = creatinine_at_clearance(age, weight, clearance, female)
    assert cockcroft_gault(age, weight, creatinine, female) == pytest.approx(clearance)


# --- acute kidney injury (KDIGO 2012) --------------------------------------------------------------

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
UMOL_PER_MG_DL = 88.4

# KDIGO 2012 as a rule file would give it, in mg/dL and in the published umol/L figures.
MG_DL = AkiLimits(
    absolute_rise=0.3,
    absolute_window_hours=48,
    ratio=1.5,
    baseline_window_hours=7 * 24,
    stage2_ratio=2.0,
    stage3_ratio=3.0,
    stage3_value=4.0,
)
UMOL_L = AkiLimits(
    absolute_rise=26.5,
    absolute_window_hours=48,
    ratio=1.5,
    baseline_window_hours=7 * 24,
    stage2_ratio=2.0,
    stage3_ratio=3.0,
    stage3_value=353.6,
)


def at(h: float, value: float, *, censored: bool = False) -> Sample:
    return Sample(T0 + timedelta(hours=h), value, censored, f"Observation/{h:g}")


def test_absolute_rise_within_48_hours_is_stage_1() -> None:
    baseline, value = at(0, 1.0), at(24, 1.3)
    aki = kdigo([baseline, value], MG_DL)
    assert aki is not None
    assert (aki.stage, aki.criterion, aki.value, aki.reference, aki.hours) == (
        1,
        "absolute",
        value,
        baseline,
        24,
    )
    assert aki.rise == pytest.approx(0.3)
    assert aki.ratio == pytest.approx(1.3)


def test_a_rise_of_exactly_the_limit_despite_floating_point() -> None:
    # 1.2 - 0.9 is 0.29999999999999993 in binary floating point.
    assert kdigo([at(0, 0.9), at(24, 1.2)], MG_DL) is not None


def test_a_smaller_rise_is_not_aki() -> None:
    assert kdigo([at(0, 1.0), at(24, 1.29)], MG_DL) is None


def test_the_same_rise_over_60_hours_is_not_absolute() -> None:
    assert kdigo([at(0, 1.0), at(60, 1.3)], MG_DL) is None


def test_the_absolute_window_is_inclusive_at_48_hours() -> None:
    aki = kdigo([at(0, 1.0), at(48, 1.3)], MG_DL)
    assert aki is not None and aki.criterion == "absolute"


def test_ratio_within_seven_days() -> None:
    aki = kdigo([at(0, 1.0), at(5 * 24, 1.5)], MG_DL)
    assert aki is not None
    assert (aki.stage, aki.criterion, aki.hours, aki.ratio) == (1, "ratio", 120, 1.5)
    # Eight days later the first value is no longer a baseline.
    assert kdigo([at(0, 1.0), at(8 * 24, 1.5)], MG_DL) is None


@pytest.mark.parametrize(("value", "stage"), [(1.5, 1), (1.9, 1), (2.0, 2), (2.9, 2), (3.0, 3), (3.5, 3)])
def test_stage_by_ratio(value: float, stage: int) -> None:
    aki = kdigo([at(0, 1.0), at(72, value)], MG_DL)
    assert aki is not None
    assert (aki.stage, aki.criterion) == (stage, "ratio")


def test_a_high_value_with_aki_is_stage_3() -> None:
    aki = kdigo([at(0, 3.8), at(24, 4.1)], MG_DL)
    assert aki is not None
    assert (aki.stage, aki.criterion) == (3, "absolute")


def test_a_high_value_without_aki_is_nothing() -> None:
    assert kdigo([at(0, 4.1), at(24, 4.2)], MG_DL) is None


def test_the_baseline_is_the_lowest_earlier_value() -> None:
    low = at(10, 0.8)
    aki = kdigo([at(0, 1.0), low, at(30, 0.9), at(60, 1.7)], MG_DL)
    assert aki is not None
    assert aki.reference == low
    assert aki.stage == 2


def test_the_highest_stage_wins_over_a_later_lower_one() -> None:
    peak = at(48, 2.2)
    aki = kdigo([at(0, 1.0), peak, at(72, 2.5), at(200, 2.6)], MG_DL)
    assert aki is not None
    assert (aki.stage, aki.value) == (2, at(72, 2.5))
    aki = kdigo([at(0, 1.0), at(24, 3.1), at(48, 1.6)], MG_DL)
    assert aki is not None
    assert (aki.stage, aki.value.value) == (3, 3.1)


def test_a_tie_in_stage_reports_the_latest() -> None:
    aki = kdigo([at(0, 1.0), at(24, 1.5), at(48, 1.6)], MG_DL)
    assert aki is not None
    assert aki.value.value == 1.6


def test_censored_samples_are_skipped() -> None:
    assert kdigo([at(0, 0.5, censored=True), at(24, 1.0)], MG_DL) is None
    assert kdigo([at(0, 1.0), at(24, 2.0, censored=True)], MG_DL) is None


def test_samples_in_any_order_and_none_without_history() -> None:
    assert kdigo([], MG_DL) is None
    assert kdigo([at(0, 5.0)], MG_DL) is None
    aki = kdigo([at(24, 1.3), at(0, 1.0)], MG_DL)
    assert aki is not None and aki.stage == 1


def test_a_duplicate_at_the_same_instant_is_not_a_baseline() -> None:
    assert kdigo([at(0, 1.0), at(0, 1.6)], MG_DL) is None


def test_non_positive_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        kdigo([at(0, 0.0), at(24, 1.0)], MG_DL)


def test_micromoles_per_litre() -> None:
    aki = kdigo([at(0, 88), at(24, 115)], UMOL_L)
    assert aki is not None and (aki.stage, aki.criterion) == (1, "absolute")
    assert kdigo([at(0, 88), at(24, 114)], UMOL_L) is None
    aki = kdigo([at(0, 330), at(24, 360)], UMOL_L)
    assert aki is not None and aki.stage == 3
    aki = kdigo([at(0, 80), at(96, 170)], UMOL_L)
    assert aki is not None and (aki.stage, aki.criterion) == (2, "ratio")


def scaled(limits: AkiLimits, factor: float) -> AkiLimits:
    return AkiLimits(
        absolute_rise=limits.absolute_rise * factor,
        absolute_window_hours=limits.absolute_window_hours,
        ratio=limits.ratio,
        baseline_window_hours=limits.baseline_window_hours,
        stage2_ratio=limits.stage2_ratio,
        stage3_ratio=limits.stage3_ratio,
        stage3_value=limits.stage3_value * factor,
    )


# Creatinine in mg/dL to two decimals, at whole hours over ten days.
series = st.lists(
    st.tuples(st.integers(min_value=0, max_value=240), st.integers(min_value=30, max_value=800)),
    max_size=8,
)


@given(series)
def test_the_unit_does_not_change_the_stage(rows: list[tuple[int, int]]) -> None:
    mg_dl = kdigo([at(h, hundredths / 100) for h, hundredths in rows], MG_DL)
    umol_l = kdigo(
        [at(h, hundredths / 100 * UMOL_PER_MG_DL) for h, hundredths in rows], scaled(MG_DL, UMOL_PER_MG_DL)
    )
    if mg_dl is None or umol_l is None:
        assert mg_dl is umol_l
    else:
        assert (umol_l.stage, umol_l.criterion, umol_l.value.time) == (
            mg_dl.stage,
            mg_dl.criterion,
            mg_dl.value.time,
        )


@given(series)
def test_findings_are_consistent(rows: list[tuple[int, int]]) -> None:
    aki = kdigo([at(h, hundredths / 100) for h, hundredths in rows], MG_DL)
    if aki is None:
        return
    assert aki.stage in (1, 2, 3)
    assert aki.reference.time < aki.value.time
    window = MG_DL.baseline_window_hours if aki.criterion == "ratio" else MG_DL.absolute_window_hours
    assert 0 < aki.hours <= window
    assert aki.ratio == pytest.approx(aki.value.value / aki.reference.value)
    assert aki.rise == pytest.approx(aki.value.value - aki.reference.value)


# --- linear in the number of results, with the results of the quadratic version ------------------------

# Lab-like values (two decimals, many ties) at times in tenths of an hour (many equal times), so that
# ties on value, time and position, and results exactly at a window's edge, all occur.
_VALUES = st.integers(1, 600).map(lambda n: n / 100) | st.sampled_from([0.8, 1.0, 1.2, 1.6, 2.4])
_HOURS = st.integers(0, 4000).map(lambda n: n / 10) | st.integers(0, 40).map(lambda n: n * 10.0)
_WINDOWS = st.sampled_from([6.0, 24.0, 47.9, 48.0, 72.5, 168.0, 200.0])


@st.composite
def _limits(draw: st.DrawFn) -> AkiLimits:
    ratio = draw(st.sampled_from([1.2, 1.5, 1.8]))
    stage2 = ratio + draw(st.sampled_from([0.0, 0.5]))
    return AkiLimits(
        absolute_rise=draw(st.sampled_from([0.1, 0.3, 26.5])),
        absolute_window_hours=draw(_WINDOWS),
        ratio=ratio,
        baseline_window_hours=draw(_WINDOWS),
        stage2_ratio=stage2,
        stage3_ratio=stage2 + draw(st.sampled_from([0.0, 1.0])),
        stage3_value=draw(st.sampled_from([2.5, 4.0, 353.6])),
    )


def _samples(censored: st.SearchStrategy[bool]) -> st.SearchStrategy[list[Sample]]:
    sample = st.builds(
        lambda h, v, c, n: Sample(T0 + timedelta(hours=h), v, c, f"Observation/{n}"),
        _HOURS,
        _VALUES,
        censored,
        st.integers(0, 3),  # repeated refs: positions, not refs, must decide ties
    )
    return st.lists(sample, max_size=40)


@given(_samples(st.booleans()), _limits())
def test_kdigo_gives_what_the_quadratic_version_gives(samples: list[Sample], limits: AkiLimits) -> None:
    assert kdigo(samples, limits) == reference_kdigo(samples, limits)


@given(_samples(st.just(False)), _limits(), _HOURS, st.sampled_from([None, 24.0, 100.0, 400.0]))
def test_judge_gives_what_the_quadratic_version_gives(
    samples: list[Sample], limits: AkiLimits, judged_hours: float, reach: float | None
) -> None:
    reach_hours = reach or max(limits.absolute_window_hours, limits.baseline_window_hours)
    judged_from = T0 + timedelta(hours=judged_hours)
    found, compared = judge(samples, limits, judged_from, reach_hours)
    expected, expected_compared = reference_judge(samples, limits, judged_from, reach_hours)
    assert compared == expected_compared
    assert found == expected
    # Equal findings may still name different results (equal in time, value and ref): the same one.
    if found is not None and expected is not None:
        assert _position(found.value, samples) == _position(expected.value, samples)
        assert _position(found.reference, samples) == _position(expected.reference, samples)


def _position(sample: Sample, samples: list[Sample]) -> int:
    return next(index for index, candidate in enumerate(samples) if candidate is sample)


def test_judge_refuses_censored_and_non_positive_samples() -> None:
    with pytest.raises(ValueError, match="exact, positive"):
        judge([at(0, 1.0), at(24, 2.0, censored=True)], MG_DL, T0, 168)
    with pytest.raises(ValueError, match="exact, positive"):
        judge([at(0, 0.0), at(24, 2.0)], MG_DL, T0, 168)


class _Comparisons:
    count = 0


class _Value(float):
    """A float that counts the comparisons made with it."""

    def __lt__(self, other: object) -> bool:
        _Comparisons.count += 1
        return float.__lt__(self, other)  # type: ignore[operator]

    def __gt__(self, other: object) -> bool:
        _Comparisons.count += 1
        return float.__gt__(self, other)  # type: ignore[operator]

    def __le__(self, other: object) -> bool:
        _Comparisons.count += 1
        return float.__le__(self, other)  # type: ignore[operator]

    def __ge__(self, other: object) -> bool:
        _Comparisons.count += 1
        return float.__ge__(self, other)  # type: ignore[operator]


class _Time(datetime):
    """A datetime that counts the comparisons made with it (arithmetic keeps the subclass)."""

    def __lt__(self, other: object) -> bool:
        _Comparisons.count += 1
        return datetime.__lt__(self, other)  # type: ignore[operator]

    def __gt__(self, other: object) -> bool:
        _Comparisons.count += 1
        return datetime.__gt__(self, other)  # type: ignore[operator]

    def __le__(self, other: object) -> bool:
        _Comparisons.count += 1
        return datetime.__le__(self, other)  # type: ignore[operator]

    def __ge__(self, other: object) -> bool:
        _Comparisons.count += 1
        return datetime.__ge__(self, other)  # type: ignore[operator]


def _series(n: int) -> list[Sample]:
    """n creatinines over 30 days in shuffled order, every window full: the AKI denial of service."""
    rng = random.Random(n)
    start = _Time(2026, 3, 1, 8, 0, tzinfo=UTC)
    samples = [
        Sample(start + timedelta(hours=720 * i / n), _Value(rng.randint(50, 400) / 100), False, str(i))
        for i in range(n)
    ]
    rng.shuffle(samples)
    return samples


def _comparisons(judging: Callable[[list[Sample]], object], samples: list[Sample]) -> int:
    _Comparisons.count = 0
    judging(samples)
    return _Comparisons.count


def _judged(samples: list[Sample]) -> object:
    return judge(samples, MG_DL, T0, 168)


def _judged_by_reference(samples: list[Sample]) -> object:
    return reference_judge(samples, MG_DL, T0, 168)


def _bound(n: int) -> float:
    """Comparisons allowed for n results: sorting shuffled times (n log2 n) and a constant per result."""
    return n * (math.log2(n) + 50)


def test_the_bound_catches_the_quadratic_versions() -> None:
    # The instrument works: 4x the results, about 16x the comparisons, past the bound at only 400 results.
    small, large = (_comparisons(_judged_by_reference, _series(n)) for n in (100, 400))
    assert large > 12 * small
    assert large > _bound(400)
    assert _comparisons(lambda s: reference_kdigo(s, MG_DL), _series(400)) > _bound(400)


@pytest.mark.parametrize("n", [200, 2_000, 16_000])
def test_judging_is_linear_after_sorting(n: int) -> None:
    assert _comparisons(_judged, _series(n)) <= _bound(n)


@pytest.mark.parametrize("n", [200, 2_000, 16_000])
def test_kdigo_is_linear_after_sorting(n: int) -> None:
    assert _comparisons(lambda s: kdigo(s, MG_DL), _series(n)) <= _bound(n)
