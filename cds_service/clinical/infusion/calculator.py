"""Continuous-infusion bag builds: a daily dose split into bags of whole syringes that a pharmacy can make.

Doses, volumes and times are nominal (syringe volume and bag overfill are ignored), as pharmacy protocols
state them. Comparisons allow a 1e-9 relative tolerance so that computed figures such as 100 mL / 8 h
meet limits written as decimals.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BagLimits",
    "Build",
    "Limit",
    "Violation",
    "buildable_doses",
    "builds",
    "check",
    "nearest",
    "nearest_dose",
    "recommended",
]

_REL_TOL = 1e-9
# A per-bag dose counts as whole syringes within this many syringes; it absorbs dose * interval / 24.
_UNIT_TOL = 1e-6


@dataclass(frozen=True)
class BagLimits:
    """A pharmacy protocol's limits; the caller reads them from the rule files.

    `volumes` and `intervals` are in order of preference: the first valid combination is the recommended
    build, and intervals are preferred over volumes. The four limits are inclusive.
    """

    unit_dose: float  # mg in one syringe; bags hold whole syringes so none is wasted
    volumes: tuple[float, ...]  # mL
    intervals: tuple[float, ...]  # h
    min_concentration: float  # mg/mL
    max_concentration: float  # mg/mL
    max_hang_time: float  # h
    min_rate: float  # mL/h

    def __post_init__(self) -> None:
        if not self.unit_dose > 0:
            raise ValueError(f"unit_dose must be positive, not {self.unit_dose}")
        if not self.volumes or not all(volume > 0 for volume in self.volumes):
            raise ValueError(f"volumes must be positive and non-empty, not {self.volumes}")
        if not self.intervals or not all(interval > 0 for interval in self.intervals):
            raise ValueError(f"intervals must be positive and non-empty, not {self.intervals}")
        if not 0 <= self.min_concentration <= self.max_concentration:
            raise ValueError(
                f"need 0 <= min_concentration <= max_concentration, not "
                f"{self.min_concentration} and {self.max_concentration}"
            )


@dataclass(frozen=True)
class Build:
    """One way to give `daily_dose`: a bag of `dose_per_bag` mg in `volume` mL, hung every `interval` h."""

    daily_dose: float  # mg/day
    interval: float  # h
    dose_per_bag: float  # mg
    volume: float  # mL

    @property
    def bags_per_day(self) -> float:
        return 24 / self.interval

    @property
    def concentration(self) -> float:
        """mg/mL."""
        return self.dose_per_bag / self.volume

    @property
    def rate(self) -> float:
        """mL/h: each bag runs for exactly its interval, so the infusion never stops between bags."""
        return self.volume / self.interval

    @property
    def hang_time(self) -> float:
        """h."""
        return self.interval

    def describe(self) -> str:
        """Pharmacy wording, e.g. "q8h: 800 mg in 250 mL at 31.25 mL/h (3.2 mg/mL)"."""
        return (
            f"q{_number(self.interval)}h: {_number(self.dose_per_bag)} mg in {_number(self.volume)} mL "
            f"at {_number(self.rate)} mL/h ({_number(self.concentration)} mg/mL)"
        )


Limit = Literal[
    "unit_dose",
    "volume",
    "interval",
    "min_concentration",
    "max_concentration",
    "max_hang_time",
    "min_rate",
    "continuity",  # volume / rate disagrees with the interval: the infusion would stop or overlap
]


@dataclass(frozen=True)
class Violation:
    """A limit an ordered bag breaks; `limit` is the BagLimits field ("volume" and "interval" for the lists)."""

    limit: Limit
    text: str  # plain English with the numbers, ready for a card


def builds(daily_dose: float, limits: BagLimits) -> list[Build]:
    """Every valid build of `daily_dose`, most preferred first (interval preference, then volume)."""
    found = []
    for interval in limits.intervals:
        syringes = _whole_units(daily_dose * interval / 24, limits.unit_dose)
        if syringes is None:
            continue
        for volume in limits.volumes:
            build = Build(daily_dose, interval, float(syringes * limits.unit_dose), volume)
            # check() is the single statement of the limits, so a proposed build can never fail it.
            if not check(
                limits, dose_per_bag=build.dose_per_bag, volume=volume, interval=interval, rate=build.rate
            ):
                found.append(build)
    return found


def recommended(daily_dose: float, limits: BagLimits) -> Build | None:
    candidates = builds(daily_dose, limits)
    return candidates[0] if candidates else None


def buildable_doses(limits: BagLimits) -> list[float]:
    """Every buildable daily dose, ascending.

    The list is finite because a bag cannot hold more than max_concentration * the largest volume.
    """
    return list(_buildable(limits))


# Each candidate goes through check(); a ruleset's limits never change, so compute the set once.
@functools.lru_cache(maxsize=32)
def _buildable(limits: BagLimits) -> tuple[float, ...]:
    most_syringes = math.floor(limits.max_concentration * max(limits.volumes) / limits.unit_dose + _UNIT_TOL)
    candidates = sorted(
        syringes * limits.unit_dose * 24 / interval
        for interval in limits.intervals
        for syringes in range(1, most_syringes + 1)
    )
    doses: list[float] = []
    for dose in candidates:
        # Two intervals can reach one dose (800 mg q8h and 600 mg q6h are both 2400 mg/day).
        if doses and _close(dose, doses[-1]):
            continue
        if builds(dose, limits):
            doses.append(dose)
    return tuple(doses)


def nearest(daily_dose: float, limits: BagLimits) -> tuple[Build | None, Build | None]:
    """The recommended builds of the nearest buildable doses strictly below and strictly above `daily_dose`."""
    doses = _buildable(limits)
    below = [dose for dose in doses if dose < daily_dose and not _close(dose, daily_dose)]
    above = [dose for dose in doses if dose > daily_dose and not _close(dose, daily_dose)]
    return (
        recommended(below[-1], limits) if below else None,
        recommended(above[0], limits) if above else None,
    )


def nearest_dose(
    target: float, limits: BagLimits, prefer: Literal["lower", "higher"] = "lower"
) -> Build | None:
    """The recommended build of the buildable dose nearest `target` (`target` itself when buildable).

    `prefer` breaks a tie between a dose as far below as the other is above, e.g. 500 between 400 and 600.
    """
    exact = recommended(target, limits)
    if exact is not None:
        return exact
    lower, higher = nearest(target, limits)
    if lower is None or higher is None:
        return lower or higher
    below = target - lower.daily_dose
    above = higher.daily_dose - target
    if _close(below, above):
        return lower if prefer == "lower" else higher
    return lower if below < above else higher


def check(
    limits: BagLimits,
    *,
    dose_per_bag: float | None,
    volume: float | None,
    interval: float | None,
    rate: float | None,
) -> list[Violation]:
    """The limits an ordered bag breaks, in BagLimits field order; [] when it is acceptable.

    Orders are often partial, so a None input skips only the checks that need it. The hang time is
    volume / rate when both are known (how long the bag actually runs), else the interval.
    """
    violations = []
    if dose_per_bag is not None and _whole_units(dose_per_bag, limits.unit_dose) is None:
        violations.append(
            Violation(
                "unit_dose",
                f"dose per bag {_number(dose_per_bag)} mg is not a whole number of "
                f"{_number(limits.unit_dose)} mg units",
            )
        )
    if volume is not None and not any(_close(volume, allowed) for allowed in limits.volumes):
        violations.append(
            Violation(
                "volume",
                f"bag volume {_number(volume)} mL is not one of the allowed volumes "
                f"({_numbers(limits.volumes)} mL)",
            )
        )
    if interval is not None and not any(_close(interval, allowed) for allowed in limits.intervals):
        violations.append(
            Violation(
                "interval",
                f"bag interval {_number(interval)} h is not one of the allowed intervals "
                f"({_numbers(limits.intervals)} h)",
            )
        )
    if dose_per_bag is not None and volume is not None and volume > 0:
        violations.extend(_concentration(dose_per_bag / volume, limits))
    hang_time = volume / rate if volume is not None and rate is not None and rate > 0 else interval
    if hang_time is not None and not _at_most(hang_time, limits.max_hang_time):
        violations.append(
            Violation(
                "max_hang_time",
                f"hang time {_number(hang_time)} h is above the {_number(limits.max_hang_time)} h maximum",
            )
        )
    if (
        volume is not None
        and rate is not None
        and interval is not None
        and rate > 0
        # Rates are written to two decimals (100 mL / 6 h = 16.67 mL/h), so allow 1 %.
        and abs(volume / rate - interval) > 0.01 * interval
    ):
        # The protocol runs bags back to back with no interruption: a bag that empties early leaves a
        # gap; one still running when the next is due is partly discarded.
        violations.append(
            Violation(
                "continuity",
                f"a {_number(volume)} mL bag at {_number(rate)} mL/h runs {_number(volume / rate)} h "
                f"but a new bag is due every {_number(interval)} h",
            )
        )
    if rate is not None and not _at_least(rate, limits.min_rate):
        violations.append(
            Violation(
                "min_rate", f"rate {_number(rate)} mL/h is below the {_number(limits.min_rate)} mL/h minimum"
            )
        )
    return violations


def _concentration(concentration: float, limits: BagLimits) -> list[Violation]:
    if not _at_least(concentration, limits.min_concentration):
        return [
            Violation(
                "min_concentration",
                f"concentration {_number(concentration)} mg/mL is below the "
                f"{_number(limits.min_concentration)} mg/mL minimum",
            )
        ]
    if not _at_most(concentration, limits.max_concentration):
        return [
            Violation(
                "max_concentration",
                f"concentration {_number(concentration)} mg/mL is above the "
                f"{_number(limits.max_concentration)} mg/mL maximum",
            )
        ]
    return []


def _whole_units(dose: float, unit: float) -> int | None:
    """How many whole units make `dose`; None when it is not a positive whole number of them."""
    units = dose / unit
    if not math.isfinite(units):  # an absurd dose (1e308 mg/day x 8 h) overflows: no build of it
        return None
    whole = round(units)
    if whole < 1 or abs(units - whole) > _UNIT_TOL:
        return None
    return whole


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL_TOL)


def _at_least(value: float, limit: float) -> bool:
    return value >= limit or _close(value, limit)


def _at_most(value: float, limit: float) -> bool:
    return value <= limit or _close(value, limit)


def _number(value: float) -> str:
    """At most 2 decimals and no trailing zeros, as on a pharmacy label: 12.5, 16.67, 800."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _numbers(values: tuple[float, ...]) -> str:
    return ", ".join(_number(value) for value in values)
