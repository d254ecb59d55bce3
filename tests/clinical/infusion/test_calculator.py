"""Bag builds: the protocol table, the nearest buildable doses, and the limits for any sane protocol."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.clinical.infusion.calculator import (
    BagLimits,
    Build,
    buildable_doses,
    builds,
    check,
    nearest,
    nearest_dose,
    recommended,
)

# The pharmacy protocol (rules-logic.md (d)), as a rule file would give it.
PROTOCOL = BagLimits(
    unit_dose=100,
    volumes=(100, 250, 50),
    intervals=(8, 6),
    min_concentration=1,
    max_concentration=5,
    max_hang_time=8,
    min_rate=5,
)

BUILDABLE = [
    300,
    400,
    600,
    800,
    900,
    1200,
    1500,
    1600,
    1800,
    2000,
    2100,
    2400,
    2700,
    2800,
    3000,
    3200,
    3300,
    3600,
]

# The "Recommended bag" column: daily dose -> (interval h, mg per bag, mL).
RECOMMENDED = {
    300: (8, 100, 100),
    400: (6, 100, 100),
    600: (8, 200, 100),
    800: (6, 200, 100),
    900: (8, 300, 100),
    1200: (8, 400, 100),
    1500: (8, 500, 100),
    1600: (6, 400, 100),
    1800: (8, 600, 250),
    2000: (6, 500, 100),
    2100: (8, 700, 250),
    2400: (8, 800, 250),
    2700: (8, 900, 250),
    2800: (6, 700, 250),
    3000: (8, 1000, 250),
    3200: (6, 800, 250),
    3300: (8, 1100, 250),
    3600: (8, 1200, 250),
}


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9)


def assert_within_limits(build: Build, limits: BagLimits) -> None:
    """The constraints restated independently of check()."""
    syringes = build.dose_per_bag / limits.unit_dose
    assert syringes >= 1 and abs(syringes - round(syringes)) <= 1e-6
    assert any(close(build.volume, volume) for volume in limits.volumes)
    assert any(close(build.interval, interval) for interval in limits.intervals)
    assert build.concentration >= limits.min_concentration or close(
        build.concentration, limits.min_concentration
    )
    assert build.concentration <= limits.max_concentration or close(
        build.concentration, limits.max_concentration
    )
    assert build.hang_time <= limits.max_hang_time or close(build.hang_time, limits.max_hang_time)
    assert build.rate >= limits.min_rate or close(build.rate, limits.min_rate)
    assert math.isclose(build.dose_per_bag * build.bags_per_day, build.daily_dose, rel_tol=1e-6)
    assert (
        check(
            limits,
            dose_per_bag=build.dose_per_bag,
            volume=build.volume,
            interval=build.interval,
            rate=build.rate,
        )
        == []
    )


def test_the_protocol_builds_exactly_the_published_doses() -> None:
    assert [dose for dose in range(100, 3700, 100) if builds(dose, PROTOCOL)] == BUILDABLE
    assert [dose for dose in buildable_doses(PROTOCOL) if dose <= 3600] == BUILDABLE


def test_buildable_doses_end_at_a_full_bag_every_six_hours() -> None:
    # 1200 mg in 250 mL is 4.8 mg/mL; q6h that is 4800 mg/day, the largest dose any bag can carry.
    assert buildable_doses(PROTOCOL)[-3:] == [4000, 4400, 4800]


@pytest.mark.parametrize(("dose", "expected"), sorted(RECOMMENDED.items()))
def test_recommended_builds_match_the_protocol_table(dose: int, expected: tuple[int, int, int]) -> None:
    build = recommended(dose, PROTOCOL)
    assert build is not None
    assert (build.interval, build.dose_per_bag, build.volume) == expected


def test_other_valid_builds_follow_in_preference_order() -> None:
    assert [(b.interval, b.dose_per_bag, b.volume) for b in builds(1200, PROTOCOL)] == [
        (8, 400, 100),
        (8, 400, 250),
        (6, 300, 100),
        (6, 300, 250),
    ]
    assert [(b.interval, b.dose_per_bag, b.volume) for b in builds(2400, PROTOCOL)] == [
        (8, 800, 250),
        (6, 600, 250),
    ]


@pytest.mark.parametrize("dose", [100, 200, 500, 700, 1000, 2500, 0, -300, 350])
def test_unbuildable_doses_have_no_build(dose: float) -> None:
    assert builds(dose, PROTOCOL) == []
    assert recommended(dose, PROTOCOL) is None


def test_build_figures_and_description() -> None:
    build = recommended(2400, PROTOCOL)
    assert build is not None
    assert (build.bags_per_day, build.concentration, build.rate, build.hang_time) == (3, 3.2, 31.25, 8)
    assert build.describe() == "q8h: 800 mg in 250 mL at 31.25 mL/h (3.2 mg/mL)"
    build = recommended(400, PROTOCOL)
    assert build is not None
    assert build.describe() == "q6h: 100 mg in 100 mL at 16.67 mL/h (1 mg/mL)"
    assert Build(300, 8, 100, 50).describe() == "q8h: 100 mg in 50 mL at 6.25 mL/h (2 mg/mL)"


def test_nearest_of_an_unbuildable_dose() -> None:
    lower, higher = nearest(500, PROTOCOL)
    assert lower is not None and higher is not None
    assert (lower.daily_dose, lower.interval, lower.dose_per_bag, lower.volume) == (400, 6, 100, 100)
    assert (higher.daily_dose, higher.interval, higher.dose_per_bag, higher.volume) == (600, 8, 200, 100)


def test_nearest_below_the_smallest_dose() -> None:
    lower, higher = nearest(100, PROTOCOL)
    assert lower is None
    assert higher is not None and higher.daily_dose == 300


def test_nearest_is_strict_for_a_buildable_dose() -> None:
    lower, higher = nearest(2400, PROTOCOL)
    assert lower is not None and higher is not None
    assert (lower.daily_dose, higher.daily_dose) == (2100, 2700)
    assert nearest(5000, PROTOCOL)[1] is None


@given(st.floats(min_value=-100, max_value=6000, allow_nan=False))
def test_nearest_brackets_the_dose_with_nothing_buildable_between(dose: float) -> None:
    lower, higher = nearest(dose, PROTOCOL)
    doses = buildable_doses(PROTOCOL)
    if lower is not None:
        assert lower.daily_dose < dose
        assert not [d for d in doses if lower.daily_dose < d < dose]
    else:
        assert not [d for d in doses if d < dose]
    if higher is not None:
        assert higher.daily_dose > dose
        assert not [d for d in doses if dose < d < higher.daily_dose]
    else:
        assert not [d for d in doses if d > dose]


def test_nearest_dose() -> None:
    def dose_of(build: Build | None) -> float | None:
        return None if build is None else build.daily_dose

    assert dose_of(nearest_dose(600, PROTOCOL)) == 600
    assert dose_of(nearest_dose(1000, PROTOCOL)) == 900
    assert dose_of(nearest_dose(1100, PROTOCOL)) == 1200
    # 500 is as far from 400 as from 600.
    assert dose_of(nearest_dose(500, PROTOCOL)) == 400
    assert dose_of(nearest_dose(500, PROTOCOL, prefer="higher")) == 600
    assert dose_of(nearest_dose(100, PROTOCOL)) == 300
    assert dose_of(nearest_dose(9000, PROTOCOL)) == 4800


def test_check_accepts_the_published_builds_and_partial_orders() -> None:
    assert check(PROTOCOL, dose_per_bag=800, volume=250, interval=8, rate=31.25) == []
    assert check(PROTOCOL, dose_per_bag=100, volume=100, interval=6, rate=16.67) == []
    assert check(PROTOCOL, dose_per_bag=None, volume=None, interval=None, rate=None) == []
    assert check(PROTOCOL, dose_per_bag=500, volume=None, interval=None, rate=None) == []


@pytest.mark.parametrize(
    ("order", "limit", "text"),
    [
        ({"dose_per_bag": 250}, "unit_dose", "dose per bag 250 mg is not a whole number of 100 mg units"),
        ({"dose_per_bag": 0}, "unit_dose", "dose per bag 0 mg is not a whole number of 100 mg units"),
        ({"volume": 75}, "volume", "bag volume 75 mL is not one of the allowed volumes (100, 250, 50 mL)"),
        ({"interval": 12}, "interval", "bag interval 12 h is not one of the allowed intervals (8, 6 h)"),
        (
            {"dose_per_bag": 600, "volume": 100},
            "max_concentration",
            "concentration 6 mg/mL is above the 5 mg/mL maximum",
        ),
        (
            {"dose_per_bag": 100, "volume": 250},
            "min_concentration",
            "concentration 0.4 mg/mL is below the 1 mg/mL minimum",
        ),
        ({"rate": 4}, "min_rate", "rate 4 mL/h is below the 5 mL/h minimum"),
        # Hang time is how long the bag actually runs: 50 mL at 5 mL/h is 10 h, whatever the interval.
        (
            {"volume": 50, "rate": 5, "interval": 8},
            "max_hang_time",
            "hang time 10 h is above the 8 h maximum",
        ),
        ({"interval": 10}, "max_hang_time", "hang time 10 h is above the 8 h maximum"),
    ],
)
def test_check_names_the_violated_limit(order: dict[str, float], limit: str, text: str) -> None:
    arguments: dict[str, float | None] = {
        "dose_per_bag": None,
        "volume": None,
        "interval": None,
        "rate": None,
    }
    arguments.update(order)
    violations = check(PROTOCOL, **arguments)
    assert limit in [violation.limit for violation in violations]
    assert text in [violation.text for violation in violations]


def test_check_reports_every_violation_of_a_bad_bag() -> None:
    violations = check(PROTOCOL, dose_per_bag=250, volume=75, interval=12, rate=4)
    assert [violation.limit for violation in violations] == [
        "unit_dose",
        "volume",
        "interval",
        "max_hang_time",
        "continuity",
        "min_rate",
    ]


@pytest.mark.parametrize(
    ("interval", "text"),
    [(6, "runs 6.67 h but a new bag is due every 6 h"), (8, "runs 6.67 h but a new bag is due every 8 h")],
    ids=["runs-long", "runs-dry"],
)
def test_a_bag_that_does_not_last_its_interval_breaks_continuity(interval: float, text: str) -> None:
    violations = check(PROTOCOL, dose_per_bag=200, volume=100, interval=interval, rate=15)
    assert [v.limit for v in violations] == ["continuity"]
    assert text in violations[0].text


def test_limits_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="unit_dose"):
        BagLimits(0, (100,), (8,), 1, 5, 8, 5)
    with pytest.raises(ValueError, match="volumes"):
        BagLimits(100, (), (8,), 1, 5, 8, 5)
    with pytest.raises(ValueError, match="intervals"):
        BagLimits(100, (100,), (0,), 1, 5, 8, 5)
    with pytest.raises(ValueError, match="concentration"):
        BagLimits(100, (100,), (8,), 5, 1, 8, 5)


@given(st.integers(min_value=-10, max_value=60).map(lambda n: n * 100))
def test_every_protocol_build_is_within_the_limits(dose: int) -> None:
    for build in builds(dose, PROTOCOL):
        assert_within_limits(build, PROTOCOL)


@st.composite
def sane_limits(draw: st.DrawFn) -> BagLimits:
    minimum = draw(st.floats(min_value=0.1, max_value=5))
    return BagLimits(
        unit_dose=draw(st.sampled_from([10, 25, 50, 100, 150, 200]) | st.floats(min_value=10, max_value=500)),
        volumes=tuple(
            draw(
                st.lists(
                    st.sampled_from([25, 50, 100, 250, 500]) | st.floats(min_value=10, max_value=500),
                    min_size=1,
                    max_size=4,
                    unique=True,
                )
            )
        ),
        intervals=tuple(
            draw(
                st.lists(
                    st.sampled_from([1, 2, 3, 4, 6, 8, 12, 24]) | st.floats(min_value=0.5, max_value=24),
                    min_size=1,
                    max_size=3,
                    unique=True,
                )
            )
        ),
        min_concentration=minimum,
        max_concentration=minimum + draw(st.floats(min_value=0, max_value=15)),
        max_hang_time=draw(st.floats(min_value=1, max_value=24)),
        min_rate=draw(st.floats(min_value=0, max_value=50)),
    )


@st.composite
def limits_and_dose(draw: st.DrawFn) -> tuple[BagLimits, float]:
    """Limits, and a dose that is often buildable: whole syringes at one of the intervals."""
    limits = draw(sane_limits())
    syringes = draw(st.integers(min_value=0, max_value=80))
    interval = draw(st.sampled_from(limits.intervals))
    dose = draw(
        st.just(syringes * limits.unit_dose * 24 / interval) | st.floats(min_value=0, max_value=50_000)
    )
    return limits, dose


@settings(max_examples=150, deadline=None)
@given(limits_and_dose())
def test_every_build_for_any_limits_is_within_them(case: tuple[BagLimits, float]) -> None:
    limits, dose = case
    for build in builds(dose, limits):
        assert build.daily_dose == dose
        assert_within_limits(build, limits)


@settings(max_examples=150, deadline=None)
@given(limits_and_dose())
def test_a_dose_is_buildable_exactly_when_it_has_a_build(case: tuple[BagLimits, float]) -> None:
    limits, dose = case
    doses = buildable_doses(limits)
    assert doses == sorted(doses)
    assert any(close(dose, listed) for listed in doses) == bool(builds(dose, limits))


@settings(max_examples=50, deadline=None)
@given(sane_limits())
def test_every_listed_dose_has_a_build(limits: BagLimits) -> None:
    for dose in buildable_doses(limits):
        build = recommended(dose, limits)
        assert build is not None
        assert_within_limits(build, limits)
