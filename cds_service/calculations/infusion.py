"""The `infusion` calculation: checks the ordered continuous-infusion bag against the pharmacy's limits
and proposes the build to use (cds_service/calculators/bags.py does the arithmetic).

Facts:
- infusion.problem: what is wrong with the order as a bag build: "unbuildable" (no bag of whole unit
  doses gives this daily dose), "violates" (the described bag breaks a limit), "undescribed" (only a daily
  dose was ordered: the pharmacy will have to build it), "above-maximum" (left to the maximum-dose rule),
  or "ok".
- infusion.violations: the limits the ordered bag breaks, in words.
- infusion.recommended / .lower / .upper: builds (for the ordered dose; the nearest buildable doses below
  and above it), each a text an EHR user reads plus the data update-draft-order writes back.
- infusion.lower_dose / .upper_dose: those doses in mg/d.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from cds_service.calculations.base import Configured, ParameterError, Params
from cds_service.calculators.bags import BagLimits, Build, check, nearest, recommended
from cds_service.facts.catalog import FactCatalog
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, FactSpec, missing

PROBLEMS = ("unbuildable", "violates", "undescribed", "above-maximum", "ok")
BUILD_WIDTH = 80  # "2400 mg/day as 800 mg in 250 mL NS q8h at 31.25 mL/h (3.2 mg/mL)" and longer diluents


@dataclasses.dataclass(frozen=True)
class InfusionSettings:
    """The configured calculation; other calculations (renal dosing) build bags with it too."""

    limits: BagLimits
    max_daily_dose: float
    diluent: str
    diluent_short: str
    instruction: str
    infusion_routes: frozenset[str]

    def describe(self, build: Build) -> str:
        return (
            f"{_n(build.daily_dose)} mg/day as {_n(build.dose_per_bag)} mg in {_n(build.volume)} mL "
            f"{self.diluent_short} q{_n(build.interval)}h at {_n(round(build.rate, 2))} mL/h "
            f"({_n(round(build.concentration, 2))} mg/mL)"
        )

    def build_fact(self, name: str, build: Build | None, order: str | None, why: str) -> Fact:
        """A build fact: its text for cards, its data for update-draft-order; missing(`why`) without one."""
        if build is None:
            return missing(name, why)
        data: dict[str, Any] = {
            "daily_dose": build.daily_dose,
            "interval": build.interval,
            "dose_per_bag": build.dose_per_bag,
            "volume": build.volume,
            "rate": build.rate,
            "concentration": build.concentration,
            "diluent": self.diluent,
            "instruction": self.instruction,
            "description": self.describe(build),
        }
        if order is not None:
            data["order"] = order
        text = self.describe(build)
        return Fact(name, text, evidence=(order,) if order else (), data=data)

    def compute(self, named: Mapping[str, Fact], facts: Facts) -> dict[str, Fact]:
        present = named["order.present"]
        order = present.evidence[0] if present.value is True and present.evidence else None
        daily = named["order.daily_dose"]
        why = self._not_assessable(named)
        if why is not None:
            return _all_missing(why)
        assert isinstance(daily.value, float | int)
        dose = float(daily.value)
        out: dict[str, Fact] = {}
        best = recommended(dose, self.limits)
        lower, upper = nearest(dose, self.limits)
        if upper is not None and upper.daily_dose > self.max_daily_dose:
            upper = None
        cannot = _cannot_build(dose, self.limits)
        out["infusion.recommended"] = self.build_fact("infusion.recommended", best, order, cannot)
        out["infusion.lower"] = self.build_fact(
            "infusion.lower", lower, order, f"no buildable dose below {_n(dose)} mg/day"
        )
        out["infusion.upper"] = self.build_fact(
            "infusion.upper",
            upper,
            order,
            f"no buildable dose above {_n(dose)} mg/day within the {_n(self.max_daily_dose)} mg/day maximum",
        )
        for key, build in (("lower", lower), ("upper", upper)):
            name = f"infusion.{key}_dose"
            out[name] = (
                Fact(name, build.daily_dose, unit="mg/d")
                if build is not None
                else missing(name, out[f"infusion.{key}"].missing or "")
            )
        violations = self._violations(named)
        out["infusion.violations"] = Fact(
            "infusion.violations", "; ".join(violations) if violations else "none", evidence=daily.evidence
        )
        if dose > self.max_daily_dose:
            problem = "above-maximum"
        elif best is None:
            problem = "unbuildable"
        elif violations:
            problem = "violates"
        elif named["order.bag_described"].value is not True:
            problem = "undescribed"
        else:
            problem = "ok"
        out["infusion.problem"] = Fact(
            "infusion.problem", problem, evidence=daily.evidence, detail=daily.detail
        )
        return out

    def _not_assessable(self, named: Mapping[str, Fact]) -> str | None:
        present, route, daily = named["order.present"], named["order.route"], named["order.daily_dose"]
        if present.value is not True:
            return present.missing or "no draft order to check"
        if route.value is None:
            return f"the route is unknown ({route.missing}), so it is not known to be an infusion"
        if route.value not in self.infusion_routes:
            return f"not an infusion order (route {route.value})"
        if not isinstance(daily.value, float | int) or isinstance(daily.value, bool):
            return f"no daily dose: {daily.missing}"
        return None

    def _violations(self, named: Mapping[str, Fact]) -> list[str]:
        if named["order.bag_described"].value is not True:
            return []
        values = {
            name: named[f"order.{name}"].value for name in ("dose_per_bag", "bag_volume", "interval", "rate")
        }
        numbers = {
            k: float(v) if isinstance(v, float | int) and not isinstance(v, bool) else None
            for k, v in values.items()
        }
        found = check(
            self.limits,
            dose_per_bag=numbers["dose_per_bag"],
            volume=numbers["bag_volume"],
            interval=numbers["interval"],
            rate=numbers["rate"],
        )
        return [violation.text for violation in found]


class Infusion:
    name = "infusion"
    after: tuple[str, ...] = ()

    def specs(self, catalog: FactCatalog) -> list[FactSpec]:
        build = "a bag build (text, and the order update-draft-order writes)"
        return [
            FactSpec(
                "infusion.problem",
                "text",
                None,
                "the ordered infusion as a bag build: unbuildable, violates (a limit), undescribed (daily dose "
                "only), above-maximum, or ok",
                PROBLEMS,
            ),
            FactSpec("infusion.violations", "text", None, "the limits the ordered bag breaks", width=60),
            FactSpec(
                "infusion.recommended",
                "build",
                None,
                f"{build} for the ordered daily dose",
                width=BUILD_WIDTH,
            ),
            FactSpec(
                "infusion.lower",
                "build",
                None,
                f"{build}: the nearest buildable dose below",
                width=BUILD_WIDTH,
            ),
            FactSpec(
                "infusion.upper",
                "build",
                None,
                f"{build}: the nearest buildable dose above, within the maximum",
                width=BUILD_WIDTH,
            ),
            FactSpec("infusion.lower_dose", "quantity", "mg/d", "the nearest buildable daily dose below"),
            FactSpec("infusion.upper_dose", "quantity", "mg/d", "the nearest buildable daily dose above"),
        ]

    def configure(
        self, params: Params, catalog: FactCatalog, before: Mapping[str, Configured]
    ) -> InfusionSettings:
        try:
            limits = BagLimits(
                unit_dose=params.number("unit_dose", "mg"),
                volumes=params.numbers("bag_volumes", "mL"),
                intervals=params.numbers("bag_intervals", "h"),
                min_concentration=params.number("min_concentration", "mg/mL"),
                max_concentration=params.number("max_concentration", "mg/mL"),
                max_hang_time=params.number("max_hang_time", "h"),
                min_rate=params.number("min_rate", "mL/h"),
            )
        except ValueError as exc:
            if isinstance(exc, ParameterError):
                raise
            raise ParameterError("bag_volumes", f"the bag limits do not make sense: {exc}") from exc
        routes = frozenset(name for name, route in catalog.medications.routes.items() if route.infusion)
        return InfusionSettings(
            limits=limits,
            max_daily_dose=params.number("max_daily_dose", "mg/d"),
            diluent=params.text("diluent"),
            diluent_short=params.text("diluent_short"),
            instruction=params.text("light_protection"),
            infusion_routes=routes,
        )


def _cannot_build(dose: float, limits: BagLimits) -> str:
    return (
        f"{_n(dose)} mg/day cannot be given as bags of whole {_n(limits.unit_dose)} mg syringes "
        f"every {' or '.join(_n(i) for i in limits.intervals)} h within "
        f"{_n(limits.min_concentration)}-{_n(limits.max_concentration)} mg/mL"
    )


def _all_missing(why: str) -> dict[str, Fact]:
    names = (
        "infusion.problem",
        "infusion.violations",
        "infusion.recommended",
        "infusion.lower",
        "infusion.upper",
        "infusion.lower_dose",
        "infusion.upper_dose",
    )
    return {name: missing(name, why) for name in names}


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")
