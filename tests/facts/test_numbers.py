"""One policy for numbers entering the facts (facts/numbers.py), and for durations (facts/time.py)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from cds_service.facts import numbers
from cds_service.facts.named import Fact
from cds_service.facts.time import MAX_DAYS, after, duration_days


@pytest.mark.parametrize("value", [0, 0.0, -0.0, 1e-15, -1e-15, 1e15, -1e15, 5200, 0.85, 4.5e11, 1.5e12])
def test_zero_and_every_magnitude_a_measurement_or_order_can_have_are_usable(value: float) -> None:
    assert numbers.problem(value) is None


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (math.inf, "is not a finite number"),
        (-math.inf, "is not a finite number"),
        (math.nan, "is not a finite number"),
        (10**400, "is not a finite number"),
        (5e-324, "is outside the magnitudes"),
        (-1e-16, "is outside the magnitudes"),
        (1.7e308, "is outside the magnitudes"),
        (1.0000001e15, "is outside the magnitudes"),
    ],
)
def test_what_no_calculation_could_use_is_refused_with_the_reason(value: float, why: str) -> None:
    problem = numbers.problem(value)
    assert problem is not None and problem.startswith(why)


def test_the_range_keeps_any_ratio_and_product_of_two_usable_values_finite_and_nonzero() -> None:
    for a in (numbers.SMALLEST, numbers.LARGEST, -numbers.LARGEST):
        for b in (numbers.SMALLEST, numbers.LARGEST):
            for result in (a / b, a * b, (a / b) ** 2):
                assert math.isfinite(result) and result != 0


def test_a_computed_fact_that_is_not_finite_becomes_could_not_evaluate_with_the_reason() -> None:
    named = {
        "a.rate": Fact("a.rate", math.inf, unit="%/d", evidence=("Observation/1",), detail="x to y"),
        "a.count": Fact("a.count", 3),
        "a.text": Fact("a.text", "inf"),
    }
    numbers.finite_facts(named)
    assert (
        named["a.rate"].value is None
        and named["a.rate"].missing == "the computed value inf is not a finite number"
    )
    assert named["a.rate"].evidence == ("Observation/1",) and named["a.rate"].detail == "x to y"
    assert named["a.count"].value == 3 and named["a.text"].value == "inf"


def test_a_duration_is_a_number_of_days_within_the_calendar() -> None:
    assert duration_days(0) == 0 and duration_days(7.5) == 7.5 and duration_days(MAX_DAYS) == MAX_DAYS
    for days in (None, -1, math.inf, math.nan, MAX_DAYS + 1, 9999 * 365.25, 1e300):
        assert duration_days(days) is None, days


def test_an_end_outside_the_calendar_is_no_end() -> None:
    start = datetime(2026, 11, 20, tzinfo=UTC)
    assert after(start, 2) == datetime(2026, 11, 22, tzinfo=UTC)
    assert after(start, 9999 * 365.25) is None  # was OverflowError: date value out of range
    assert after(start, 200 * 365.25) is None  # 2226: no date, as parse_datetime says of "2226-11-20"
    assert after(datetime(2199, 12, 31, tzinfo=UTC), 0.5) == datetime(2199, 12, 31, 12, tzinfo=UTC)
