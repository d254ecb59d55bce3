"""The `infusion` calculation: checks the ordered continuous-infusion bag against the pharmacy's limits
and proposes the build to use (calculator.py beside it does the arithmetic).

Every build it proposes stays within the patient's dose ceiling (infusion.ceiling): the lowest of the
maximum daily dose, the maximum dose rate per kg times the body weight (when a weight is known), and the
renal ceiling of the `renal` calculation when renal impairment applies.

Facts:
- infusion.problem: what is wrong with the order as a bag build: "unbuildable" (no bag of whole unit
  doses gives this daily dose), "violates" (the described bag breaks a limit), "undescribed" (only a daily
  dose was ordered: the pharmacy will have to build it), "above-maximum" (above the ceiling: left to the
  maximum-dose and renal-dose rules), or "ok".
- infusion.violations: the limits the ordered bag breaks, in words.
- infusion.recommended / .lower / .upper: builds (for the ordered dose; the nearest buildable doses below
  and above it within the ceiling), each a text an EHR user reads plus the data update-draft-order writes.
- infusion.lower_dose / .upper_dose: those doses in mg/d.
- infusion.ceiling, infusion.ceiling_build: the ceiling in mg/d, and the highest buildable dose within it.
- infusion.sc_alternative: for an intravenous order below the smallest buildable dose, the same drug as
  subcutaneous unit doses (the label's renal interval when renal impairment applies).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from cds_service.clinical.base import Configured, ParameterError, Params, require_dose_unit
from cds_service.clinical.infusion.calculator import BagLimits, Build, buildable_doses, check, recommended
from cds_service.facts.catalog import FactCatalog
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, FactSpec, missing
from cds_service.facts.units import Units
from cds_service.ruleformat.actions import WORDING

# The unit this calculation computes and words doses in ("mg/day", "mg/kg/h"); configure refuses a rule
# pack whose medications are dosed in another.
DOSE_UNIT = "mg"
# The units it reads the bag limits in and writes a build's numbers in (the build's `units`).
VOLUME_UNIT, RATE_UNIT, INTERVAL_UNIT = "mL", "mL/h", "h"
DAILY_UNIT, PER_KG_HOURLY_UNIT = f"{DOSE_UNIT}/d", f"{DOSE_UNIT}/kg/h"

PROBLEMS = ("unbuildable", "violates", "undescribed", "above-maximum", "ok")
# The build facts' widths (summary-length lint) are those of the longest text the configured templates
# give (InfusionSettings.widths); these names have them.
BUILDS = ("infusion.recommended", "infusion.lower", "infusion.upper", "infusion.ceiling_build")
# What the build and subcutaneous wording templates of the rule file may name.
BUILD_PLACEHOLDERS = (
    "daily_dose",
    "dose_per_bag",
    "volume",
    "diluent",
    "interval",
    "rate",
    "concentration",
    "dose_unit",
)
SC_PLACEHOLDERS = ("dose", "route", "interval", "dose_unit")
SC_DAILY_PLACEHOLDERS = ("daily_dose", "dose_unit")
# The reasons and limits the calculation words, as templates of the rule file, and what each may name
# (every one may name {dose_unit}: medications.yaml dose_unit as people write it).
REASONS: dict[str, tuple[str, ...]] = {
    "ceiling_max_text": ("dose",),
    "ceiling_weight_text": ("rate", "weight"),
    "ceiling_no_weight_text": ("rate", "why"),
    "ceiling_renal_text": ("dose", "impairment"),
    "ceiling_renal_unknown_text": ("why",),
    "above_ceiling_text": ("dose", "ceiling", "binding"),
    "no_dose_within_text": ("ceiling", "binding"),
    "no_dose_below_text": ("dose",),
    "no_dose_above_text": ("dose", "ceiling", "binding"),
    "unbuildable_text": ("dose", "unit_dose", "intervals", "min_concentration", "max_concentration"),
    "sc_not_below_text": ("dose",),
    "sc_not_whole_text": ("dose", "unit_dose"),
    "sc_renal_note": (),
}
# The rule file's parameter for each template of the order update-draft-order writes (WORDING).
ORDER_TEXT = {
    "bag": {"medication": "order_bag_text", "dosage": "order_bag_dosage_text", "change": "order_change_text"},
    "dose": {"dosage": "order_sc_dosage_text", "change": "order_change_text"},
}
_TOLERANCE = 1e-9


@runtime_checkable
class RenalCeiling(Protocol):
    """What the infusion calculation needs of the configured `renal` calculation."""

    cap: float  # mg/d
    sc_interval: float  # h
    impaired: frozenset[str]  # values of renal.impairment that apply the cap


@dataclasses.dataclass(frozen=True)
class ScForm:
    """The subcutaneous unit dose offered when no infusion build fits (e.g. 100 mg/day)."""

    route: str  # the medications.yaml route name
    label: str
    coding: Mapping[str, str] | None  # the route's first code, to write into the order
    dose: float  # mg per injection


@dataclasses.dataclass(frozen=True)
class InfusionSettings:
    """The configured calculation; the max-dose and renal-dose rules read its ceiling builds too."""

    limits: BagLimits
    max_daily_dose: float
    max_dose_rate: float  # mg/kg/h
    diluent: str
    diluent_short: str
    instruction: str
    infusion_routes: frozenset[str]
    units: Units
    sc: ScForm
    build_text: str  # the rule file's templates (BUILD_PLACEHOLDERS, SC_PLACEHOLDERS)
    sc_text: str
    sc_daily_text: str
    reasons: Mapping[str, str]  # REASONS
    intervals_joiner: str  # how unbuildable_text's {intervals} joins the bag intervals ("8 or 6")
    # The order update-draft-order writes: its wording templates (WORDING) per form, and the dose unit
    # (medications.yaml dose_unit) as UCUM code and as people write it.
    order_wording: Mapping[str, Mapping[str, str]]
    dose_unit: str
    dose_unit_text: str
    renal: RenalCeiling | None = None

    def _order(self, form: str) -> dict[str, Any]:
        """What a build's data says of the order it writes, beside the numbers (see ruleformat.actions)."""
        units = {"dose": self.dose_unit, "interval": INTERVAL_UNIT}
        if form == "bag":
            units.update(volume=VOLUME_UNIT, rate=RATE_UNIT)
        return {"units": units, "unit_text": self.dose_unit_text, "wording": dict(self.order_wording[form])}

    def say(self, reason: str, **values: str) -> str:
        """A reason or limit in the rule file's words (REASONS)."""
        return self.reasons[reason].format(dose_unit=self.dose_unit_text, **values)

    def describe(self, build: Build) -> str:
        return self.build_text.format(
            dose_unit=self.dose_unit_text,
            daily_dose=_n(build.daily_dose),
            dose_per_bag=_n(build.dose_per_bag),
            volume=_n(build.volume),
            diluent=self.diluent_short,
            interval=_n(build.interval),
            rate=_n(round(build.rate, 2)),
            concentration=_n(round(build.concentration, 2)),
        )

    def build_fact(self, name: str, build: Build | None, order: str | None, why: str) -> Fact:
        """A build fact: its text for cards, its data for update-draft-order; missing(`why`) without one.

        Its detail is the build, or "none (why)": card text can name it either way."""
        if build is None:
            return _no_build(name, why)
        data: dict[str, Any] = {
            "form": "bag",
            "daily_dose": build.daily_dose,
            "interval": build.interval,
            "dose_per_bag": build.dose_per_bag,
            "volume": build.volume,
            "rate": build.rate,
            "concentration": build.concentration,
            "diluent": self.diluent,
            "instruction": self.instruction,
            "description": self.describe(build),
            **self._order("bag"),
        }
        if order is not None:
            data["order"] = order
        text = self.describe(build)
        return Fact(name, text, evidence=(order,) if order else (), detail=text, data=data)

    def compute(self, named: Mapping[str, Fact], facts: Facts) -> dict[str, Fact]:
        present = named["order.present"]
        order = present.evidence[0] if present.value is True and present.evidence else None
        daily = named["order.daily_dose"]
        ceiling = self._ceiling(named)
        out: dict[str, Fact] = {"infusion.ceiling": ceiling}
        why = self._not_assessable(named)
        if why is not None:
            out.update(_all_missing(why))
            out["infusion.ceiling_build"] = _no_build("infusion.ceiling_build", why)
            return out
        assert isinstance(daily.value, float | int) and isinstance(ceiling.value, float | int)
        dose, top = float(daily.value), float(ceiling.value)
        doses = [d for d in buildable_doses(self.limits) if _at_most(d, top)]
        bound = {"ceiling": _n(top), "binding": ceiling.detail or ""}
        highest = max(doses, default=None)
        out["infusion.ceiling_build"] = self.build_fact(
            "infusion.ceiling_build",
            recommended(highest, self.limits) if highest is not None else None,
            order,
            self.say("no_dose_within_text", **bound),
        )
        above = not _at_most(dose, top)
        best = recommended(dose, self.limits) if not above else None
        lower_dose = max((d for d in doses if d < dose and not _close(d, dose)), default=None)
        upper_dose = min((d for d in doses if d > dose and not _close(d, dose)), default=None)
        lower = recommended(lower_dose, self.limits) if lower_dose is not None else None
        upper = recommended(upper_dose, self.limits) if upper_dose is not None else None
        cannot = self.say("above_ceiling_text", dose=_n(dose), **bound) if above else self._cannot_build(dose)
        out["infusion.recommended"] = self.build_fact("infusion.recommended", best, order, cannot)
        out["infusion.lower"] = self.build_fact(
            "infusion.lower", lower, order, self.say("no_dose_below_text", dose=_n(dose))
        )
        out["infusion.upper"] = self.build_fact(
            "infusion.upper", upper, order, self.say("no_dose_above_text", dose=_n(dose), **bound)
        )
        for key, build in (("lower", lower), ("upper", upper)):
            name = f"infusion.{key}_dose"
            out[name] = (
                Fact(name, build.daily_dose, unit=DAILY_UNIT)
                if build is not None
                else missing(name, out[f"infusion.{key}"].missing or "")
            )
        out["infusion.sc_alternative"] = self._sc_alternative(named, dose, lower, order)
        violations = self._violations(named)
        out["infusion.violations"] = Fact(
            "infusion.violations", "; ".join(violations) if violations else "none", evidence=daily.evidence
        )
        if above:
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

    def _ceiling(self, named: Mapping[str, Fact]) -> Fact:
        """The highest daily dose for this patient: the lowest of the limits that apply, and which one
        binds. A limit that cannot be applied (no weight, renal function unknown) is named in the detail."""
        limits = [(self.max_daily_dose, self.say("ceiling_max_text", dose=_n(self.max_daily_dose)))]
        notes: list[str] = []
        evidence: tuple[str, ...] = ()
        weight = named["patient.weight"]
        kg = _number(weight)
        if kg is not None and kg > 0 and weight.comparator is None:
            kilograms = self.units.convert(kg, weight.unit or "kg", "kg")
            per_kg = (
                self.max_dose_rate
                * kilograms
                * self.units.product_factor(PER_KG_HOURLY_UNIT, "kg", DAILY_UNIT)
            )
            limits.append(
                (per_kg, self.say("ceiling_weight_text", rate=_n(self.max_dose_rate), weight=_n(kilograms)))
            )
            evidence += weight.evidence
        else:
            why = weight.missing or "a bound"
            notes.append(self.say("ceiling_no_weight_text", rate=_n(self.max_dose_rate), why=why))
        if self.renal is not None:
            impairment = named["renal.impairment"]
            if impairment.value in self.renal.impaired:
                renal = self.say(
                    "ceiling_renal_text", dose=_n(self.renal.cap), impairment=str(impairment.value)
                )
                limits.append((self.renal.cap, renal))
                evidence += impairment.evidence
            elif impairment.value is None:
                notes.append(self.say("ceiling_renal_unknown_text", why=str(impairment.missing)))
        value, binding = min(limits, key=lambda limit: limit[0])
        detail = "; ".join([binding, *notes])
        return Fact("infusion.ceiling", value, unit=DAILY_UNIT, evidence=evidence, detail=detail)

    def _sc_alternative(
        self, named: Mapping[str, Fact], dose: float, lower: Build | None, order: str | None
    ) -> Fact:
        """Subcutaneous unit doses in place of an infusion that cannot be built because it is below the
        smallest buildable dose (100 mg/day IV): the same daily dose, or with renal impairment the label's
        interval."""
        name = "infusion.sc_alternative"
        unit = self.sc.dose
        count = dose / unit
        smallest = min(buildable_doses(self.limits), default=math.inf)
        if lower is not None or not dose < smallest:
            return _no_build(name, self.say("sc_not_below_text", dose=_n(dose)))
        if not (count >= 1 and _close(count, round(count))):
            return _no_build(name, self.say("sc_not_whole_text", dose=_n(dose), unit_dose=_n(unit)))
        interval = 24 / round(count)
        note = ""
        impairment = named["renal.impairment"] if self.renal is not None else None
        if self.renal is not None and impairment is not None and impairment.value in self.renal.impaired:
            interval = max(interval, self.renal.sc_interval)
            note = self.say("sc_renal_note")
        daily = unit * 24 / interval
        text = self.sc_text.format(
            dose=_n(unit), route=self.sc.label, interval=_n(interval), dose_unit=self.dose_unit_text
        )
        if not _close(daily, dose):
            text += self.sc_daily_text.format(daily_dose=_n(daily), dose_unit=self.dose_unit_text)
        data: dict[str, Any] = {
            "form": "dose",
            "route": self.sc.route,
            "route_coding": dict(self.sc.coding) if self.sc.coding else None,
            "route_label": self.sc.label,
            "dose": unit,
            "interval": interval,
            "daily_dose": daily,
            "description": text,
            **self._order("dose"),
        }
        if order is not None:
            data["order"] = order
        return Fact(name, text, evidence=(order,) if order else (), detail=text + note, data=data)

    def widths(self) -> dict[str, int]:
        """The longest text of each build fact: every build is the recommended one of a buildable dose
        within the maximum daily dose (the ceiling is never above it), and the subcutaneous form takes one
        of few intervals, so each can be rendered and measured."""
        doses = (d for d in buildable_doses(self.limits) if _at_most(d, self.max_daily_dose))
        builds = (recommended(dose, self.limits) for dose in doses)
        build = max((self._shown(self.describe(b)) for b in builds if b is not None), default=0)
        return {**dict.fromkeys(BUILDS, build), "infusion.sc_alternative": max(map(self._shown, self._sc()))}

    def _shown(self, text: str) -> int:
        """Its length on a card, whose text writes units as people do (Units.prose)."""
        return max(len(text), len(self.units.prose(text)))

    def _sc(self) -> list[str]:
        """Every subcutaneous text _sc_alternative can give: k unit doses a day below the smallest
        buildable dose, every 24/k h, or at the renal interval. Past k = 2400 the interval reads "0.01" or
        "0", no wider than 24/7 ("3.43"): the count is bounded for a pack with no buildable dose."""
        unit = self.sc.dose
        smallest = min(buildable_doses(self.limits), default=math.inf)
        most = min(math.floor(smallest / unit) + 1, 2400) if math.isfinite(smallest) else 2400
        texts = []
        for count in range(1, most + 1):
            intervals = [24 / count]
            if self.renal is not None:
                intervals.append(max(24 / count, self.renal.sc_interval))
            for interval in intervals:
                text = self.sc_text.format(
                    dose=_n(unit), route=self.sc.label, interval=_n(interval), dose_unit=self.dose_unit_text
                )
                daily = unit * 24 / interval
                if not _close(daily, unit * count):
                    text += self.sc_daily_text.format(daily_dose=_n(daily), dose_unit=self.dose_unit_text)
                texts.append(text)
        return texts

    def _cannot_build(self, dose: float) -> str:
        limits = self.limits
        return self.say(
            "unbuildable_text",
            dose=_n(dose),
            unit_dose=_n(limits.unit_dose),
            intervals=self.intervals_joiner.join(_n(i) for i in limits.intervals),
            min_concentration=_n(limits.min_concentration),
            max_concentration=_n(limits.max_concentration),
        )

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
    # Renal impairment lowers the ceiling of every build: the renal calculation runs first.
    after: tuple[str, ...] = ("renal",)

    def specs(self, catalog: FactCatalog, params: Params) -> list[FactSpec]:
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
            ),
            FactSpec(
                "infusion.lower",
                "build",
                None,
                f"{build}: the nearest buildable dose below",
            ),
            FactSpec(
                "infusion.upper",
                "build",
                None,
                f"{build}: the nearest buildable dose above, within infusion.ceiling",
            ),
            FactSpec("infusion.lower_dose", "quantity", DAILY_UNIT, "the nearest buildable daily dose below"),
            FactSpec("infusion.upper_dose", "quantity", DAILY_UNIT, "the nearest buildable daily dose above"),
            FactSpec(
                "infusion.ceiling",
                "quantity",
                DAILY_UNIT,
                "the patient's highest daily dose: the lowest of the maximum daily dose, the maximum mg/kg/h "
                "times the weight (when known) and the renal ceiling (when renal impairment applies)",
            ),
            FactSpec(
                "infusion.ceiling_build",
                "build",
                None,
                f"{build}: the highest buildable dose within infusion.ceiling",
            ),
            FactSpec(
                "infusion.sc_alternative",
                "build",
                None,
                "for an infusion below the smallest buildable dose: subcutaneous unit doses (the order "
                "update-draft-order writes)",
            ),
        ]

    def configure(
        self, params: Params, catalog: FactCatalog, before: Mapping[str, Configured]
    ) -> InfusionSettings:
        require_dose_unit(catalog, DOSE_UNIT, self.name)
        try:
            limits = BagLimits(
                unit_dose=params.number("unit_dose", DOSE_UNIT),
                volumes=params.numbers("bag_volumes", VOLUME_UNIT),
                intervals=params.numbers("bag_intervals", INTERVAL_UNIT),
                min_concentration=params.number("min_concentration", f"{DOSE_UNIT}/{VOLUME_UNIT}"),
                max_concentration=params.number("max_concentration", f"{DOSE_UNIT}/{VOLUME_UNIT}"),
                max_hang_time=params.number("max_hang_time", INTERVAL_UNIT),
                min_rate=params.number("min_rate", RATE_UNIT),
            )
        except ValueError as exc:
            if isinstance(exc, ParameterError):
                raise
            raise ParameterError("bag_volumes", f"the bag limits do not make sense: {exc}") from exc
        routes = catalog.medications.routes
        sc_route = params.text("sc_route", tuple(routes))
        if routes[sc_route].infusion:
            raise ParameterError("sc_route", f"sc_route {sc_route!r} is an infusion route")
        codes = sorted(routes[sc_route].codes)
        coding = None
        if codes:
            system, _, code = codes[0].partition("|")
            coding = {"system": system, "code": code, "display": routes[sc_route].label}
        renal = before.get("renal")
        return InfusionSettings(
            limits=limits,
            max_daily_dose=params.number("max_daily_dose", DAILY_UNIT),
            max_dose_rate=params.number("max_dose_rate", PER_KG_HOURLY_UNIT),
            diluent=params.text("diluent"),
            diluent_short=params.text("diluent_short"),
            instruction=params.text("light_protection"),
            infusion_routes=frozenset(name for name, route in routes.items() if route.infusion),
            units=catalog.units,
            sc=ScForm(sc_route, routes[sc_route].label, coding, params.number("sc_dose", DOSE_UNIT)),
            build_text=params.template("build_text", BUILD_PLACEHOLDERS),
            sc_text=params.template("sc_text", SC_PLACEHOLDERS),
            sc_daily_text=params.template("sc_daily_text", SC_DAILY_PLACEHOLDERS),
            reasons={name: params.template(name, (*names, "dose_unit")) for name, names in REASONS.items()},
            intervals_joiner=params.text("intervals_joiner"),
            order_wording={
                form: {part: params.template(ORDER_TEXT[form][part], names) for part, names in parts.items()}
                for form, parts in WORDING.items()
            },
            dose_unit=catalog.medications.dose_unit,
            dose_unit_text=catalog.units.text(catalog.medications.dose_unit),
            renal=renal if isinstance(renal, RenalCeiling) else None,
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
        "infusion.sc_alternative",
    )
    return {name: _no_build(name, why) for name in names}


def _no_build(name: str, why: str) -> Fact:
    return missing(name, why, detail=f"none ({why})")


def _number(fact: Fact) -> float | None:
    value = fact.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_TOLERANCE)


def _at_most(value: float, limit: float) -> bool:
    return value <= limit or _close(value, limit)


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")
