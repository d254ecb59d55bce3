"""Compound daily growth and the ferritin trend."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cds_service.clinical.ferritin.calculator import compound_daily_growth, grows_at_least, trend
from cds_service.clinical.sample import Sample

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SPACING = 12  # h; the rule file's minimum spacing

values = st.floats(min_value=1, max_value=1e6)
hours = st.floats(min_value=1, max_value=24 * 14)
rates = st.floats(min_value=-0.9, max_value=10)


def at(h: float, value: float, *, censored: bool = False) -> Sample:
    return Sample(T0 + timedelta(hours=h), value, censored, f"Observation/{h:g}")


def test_sixty_percent_in_a_day_is_exactly_sixty_percent() -> None:
    assert compound_daily_growth(1000, 1600, 24) == pytest.approx(0.6)
    assert grows_at_least(1000, 1600, 24, 0.6)
    assert grows_at_least(100, 160, 24, 0.6)
    assert not grows_at_least(1000, 1599, 24, 0.6)


def test_growth_compounds_rather_than_averaging() -> None:
    # x2.2 over 48 h is 48 %/day compounded, though a linear reading would say 60 %/day.
    assert compound_daily_growth(1000, 2200, 48) == pytest.approx(0.483, abs=5e-4)
    assert not grows_at_least(1000, 2200, 48, 0.6)
    # x2.56 over 48 h is exactly 60 %/day compounded.
    assert grows_at_least(1000, 2560, 48, 0.6)
    assert compound_daily_growth(1000, 2560, 48) == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("v0", "v1", "h"), [(0, 10, 24), (-1, 10, 24), (10, 0, 24), (10, 20, 0), (10, 20, -1)]
)
def test_rate_inputs_must_be_positive(v0: float, v1: float, h: float) -> None:
    with pytest.raises(ValueError):
        compound_daily_growth(v0, v1, h)
    with pytest.raises(ValueError):
        grows_at_least(v0, v1, h, 0.6)


@given(values, values)
def test_growth_over_a_day_is_the_simple_ratio(v0: float, v1: float) -> None:
    assert math.isclose(compound_daily_growth(v0, v1, 24), v1 / v0 - 1, rel_tol=1e-9, abs_tol=1e-12)


@given(values, values, hours, rates)
def test_rate_and_threshold_test_agree_away_from_the_boundary(
    v0: float, v1: float, h: float, r: float
) -> None:
    growth = compound_daily_growth(v0, v1, h)
    assume(math.isfinite(growth) and not math.isclose(growth, r, rel_tol=1e-6, abs_tol=1e-9))
    assert grows_at_least(v0, v1, h, r) == (growth >= r)


@given(values, values, hours)
def test_a_rise_meets_its_own_rate(v0: float, v1: float, h: float) -> None:
    growth = compound_daily_growth(v0, v1, h)
    # Near -100 %/day, 1 + growth cancels to a few significant digits and cannot round-trip.
    assume(math.isfinite(growth) and growth > -0.9)
    assert grows_at_least(v0, v1, h, growth)


def test_no_samples() -> None:
    result = trend([], SPACING)
    assert (result.status, result.first, result.last, result.hours, result.daily_growth) == (
        "none",
        None,
        None,
        None,
        None,
    )
    assert result.steps == ()


def test_single_sample() -> None:
    only = at(0, 900)
    result = trend([only], SPACING)
    assert (result.status, result.first, result.last, result.daily_growth) == ("single", only, only, None)


def test_endpoints_too_close() -> None:
    result = trend([at(0, 900), at(11.5, 2000)], SPACING)
    assert result.status == "too-close"
    assert result.hours == 11.5
    assert result.daily_growth is None
    assert result.steps[0][2] is None


def test_minimum_spacing_is_inclusive() -> None:
    result = trend([at(0, 1000), at(12, 1600)], SPACING)
    assert result.status == "rate"
    assert result.daily_growth == pytest.approx(1.6**2 - 1)


def test_samples_at_one_instant_never_give_a_rate() -> None:
    assert trend([at(0, 1000), at(0, 1600)], 0).status == "too-close"


def test_censored_endpoint() -> None:
    result = trend([at(0, 1000), at(24, 40000, censored=True)], SPACING)
    assert result.status == "censored"
    assert result.daily_growth is None
    assert result.hours == 24


def test_rate_from_the_earliest_to_the_latest_in_any_order() -> None:
    first, middle, last = at(0, 1000), at(20, 3000), at(48, 2560)
    result = trend([last, first, middle], SPACING)
    assert result.status == "rate"
    assert (result.first, result.last, result.hours) == (first, last, 48)
    assert result.daily_growth == pytest.approx(0.6)
    # The fall between 20 h and 48 h is shown and does not cancel the endpoint rise.
    assert [(a, b) for a, b, _ in result.steps] == [(first, middle), (middle, last)]
    rise, fall = (growth for _, _, growth in result.steps)
    assert rise is not None and rise == pytest.approx(3 ** (24 / 20) - 1)
    assert fall is not None and fall < 0


def test_steps_skip_censored_and_close_pairs() -> None:
    samples = [at(0, 1000), at(6, 1200), at(30, 40000, censored=True), at(48, 5000)]
    result = trend(samples, SPACING)
    assert result.status == "rate"
    assert [growth is None for _, _, growth in result.steps] == [True, True, True]


def test_trend_rejects_non_positive_values() -> None:
    with pytest.raises(ValueError, match="positive"):
        trend([at(0, 0), at(24, 100)], SPACING)


@given(st.lists(st.tuples(st.integers(min_value=0, max_value=48), values, st.booleans()), max_size=6))
def test_trend_invariants(rows: list[tuple[int, float, bool]]) -> None:
    samples = [at(h, value, censored=censored) for h, value, censored in rows]
    result = trend(samples, SPACING)
    assert len(result.steps) == max(len(samples) - 1, 0)
    assert (result.daily_growth is not None) == (result.status == "rate")
    if result.status == "rate":
        assert result.first is not None and result.last is not None and result.hours is not None
        assert result.hours >= SPACING
        assert result.first.time == min(sample.time for sample in samples)
        assert result.last.time == max(sample.time for sample in samples)


def test_a_rise_too_steep_for_a_float_is_infinite_not_an_error() -> None:
    """Found by fuzzing: x1e160 in 12 h raised OverflowError (float power) and every service answered 500.
    The facts refuse such values now (facts/numbers.py); the calculator still answers for any input."""
    assert compound_daily_growth(1e-150, 1e10, 12) == math.inf
    assert grows_at_least(1.0, 2.0, 1e9, 0.6) is False  # (1.6) ** (1e9 / 24) overflows: no rise is enough
    t0 = datetime(2026, 11, 22, 23, tzinfo=UTC)
    steep = trend([Sample(t0, 1e-150), Sample(t0 + timedelta(hours=12), 1e10)], 12)
    assert steep.status == "rate" and steep.daily_growth == math.inf
