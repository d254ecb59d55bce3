"""Cockcroft-Gault: known values, the unknown-sex choice, and monotonicity."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cds_service.clinical.renal.calculator import (
    adjusted_weight,
    cockcroft_gault,
    cockcroft_gault_any_sex,
    creatinine_at_clearance,
    ideal_weight,
)

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
