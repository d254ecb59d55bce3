"""The HScore (Fardet 2014) of the `hlh` calculation: its table read from the providing rule file's
parameters, its items read from named facts in the units the table states, and the score worded as a
range over the items not known.

Facts (produced by the `hlh` calculation, hlh2004/facts.py):
- hlh.hscore, hlh.hscore_low, hlh.hscore_high: the HScore as a range over its unknown items.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable, Mapping

from cds_service.clinical import wording
from cds_service.clinical.base import ParameterError, Params
from cds_service.clinical.hscore.calculator import HScoreInputs, HScoreTable, hscore, probability
from cds_service.clinical.inputs import HlhLabs, worst
from cds_service.clinical.tristate import Tri
from cds_service.facts.catalog import FactCatalog
from cds_service.facts.named import Fact, FactSpec
from cds_service.ruleformat.text import format_number

__all__ = ["CLINICAL_ITEMS", "WIDTH", "WORDING", "HScoreSettings", "configure", "specs"]

WIDTH = 500

# The HScore items that are no laboratory analyte, in the order of the rule file's hscore_item_labels; the
# others (ferritin, triglycerides, fibrinogen, AST) are named by their analyte's label (analytes.yaml).
CLINICAL_ITEMS = ("immunosuppression", "temperature", "organomegaly", "cytopenias", "hemophagocytosis")
# How hlh.hscore is worded: template parameters of the providing rule file (hlh-2004.yaml) with the
# placeholders each may name.
WORDING: dict[str, tuple[str, ...]] = {
    "hscore_text": ("score", "most", "probability", "cutoff"),
    "hscore_probability_range_text": ("least", "most_likely"),
    "hscore_unknown_text": ("count", "items"),
    "hscore_immunosuppression_text": (),
    "hscore_points_text": ("points",),
    "hscore_item_text": ("item", "points"),
}


def specs() -> list[FactSpec]:
    return [
        FactSpec(
            "hlh.hscore",
            "text",
            None,
            "HScore (Fardet 2014) as a range over unknown items, with probability",
            width=WIDTH,
        ),
        FactSpec("hlh.hscore_low", "count", None, "HScore with every unknown item at its fewest points"),
        FactSpec("hlh.hscore_high", "count", None, "HScore with every unknown item at its most points"),
    ]


@dataclasses.dataclass(frozen=True)
class HScoreSettings:
    catalog: FactCatalog
    labs: HlhLabs
    table: HScoreTable
    cutoff: float
    items: Mapping[str, str]  # each item's label
    wording: Mapping[str, str]  # WORDING

    def say(self, name: str, **values: str) -> str:
        return self.wording[name].format(**values)

    def compute(self, named: Mapping[str, Fact], hemophagocytosis: Tri) -> dict[str, Fact]:
        """The HScore facts; `hemophagocytosis` is the HLH-2004 criterion's reading of the marrow."""
        t = self.table
        temperature = _bounded(
            _in(self.catalog, named[worst(self.labs.temperature)], "Cel"),
            named[worst(self.labs.temperature)],
            _band(t.temperature),
        )
        hb_limit, wbc_limit, plt_limit = t.cytopenia_limits
        labs = self.labs
        inputs = HScoreInputs(
            immunosuppression=None,  # no HIV status or long-term immunosuppressant data is read
            temperature=temperature,
            hepatomegaly=_present(named["conditions.hepatomegaly.status"]),
            splenomegaly=_present(named["conditions.splenomegaly.status"]),
            hemoglobin=self._item(named, worst(labs.hemoglobin), "g/dL", _at_most(hb_limit)),
            wbc=self._item(named, worst(labs.wbc), "10*9/L", _at_most(wbc_limit)),
            platelets=self._item(named, worst(labs.platelets), "10*9/L", _at_most(plt_limit)),
            ferritin=self._item(named, worst(labs.ferritin), "ug/L", _band(t.ferritin)),
            triglycerides=self._item(named, worst(labs.triglycerides), "mmol/L", _band(t.triglycerides)),
            fibrinogen=self._item(named, worst(labs.fibrinogen), "g/L", _at_most(t.fibrinogen)),
            ast=self._item(named, worst(labs.ast), "U/L", _at_least(t.ast)),
            hemophagocytosis=None if hemophagocytosis is Tri.UNKNOWN else hemophagocytosis is Tri.MET,
        )
        score = hscore(inputs, t)
        most = _most(t)
        least, most_likely = probability(score.low, t), probability(score.high, t)
        say, label = self.say, self.items
        chance = (
            least
            if least == most_likely
            else say("hscore_probability_range_text", least=least, most_likely=most_likely)
        )
        points = ", ".join(
            say("hscore_item_text", item=label[item], points=_range(low, high))
            for item, low, high in score.items
        )
        cutoff = format_number(self.cutoff)
        text = say(
            "hscore_text",
            score=_range(score.low, score.high),
            most=str(most),
            probability=chance,
            cutoff=cutoff,
        )
        if score.unknown:
            unknown = ", ".join(label[item] for item in score.unknown)
            text += say("hscore_unknown_text", count=str(len(score.unknown)), items=unknown)
            if "immunosuppression" in score.unknown:
                text += say("hscore_immunosuppression_text")
        text += say("hscore_points_text", points=points)
        return {
            "hlh.hscore": Fact("hlh.hscore", wording.clip(text, WIDTH)),
            "hlh.hscore_low": Fact("hlh.hscore_low", score.low, detail=text),
            "hlh.hscore_high": Fact("hlh.hscore_high", score.high, detail=text),
        }

    def _item(
        self, named: Mapping[str, Fact], name: str, unit: str, key: Callable[[float], Hashable]
    ) -> float | None:
        fact = named[name]
        return _bounded(_in(self.catalog, fact, unit), fact, key)


def configure(params: Params, catalog: FactCatalog, labs: HlhLabs) -> HScoreSettings:
    clinical = params.texts("hscore_item_labels")
    if len(clinical) != len(CLINICAL_ITEMS):
        raise ParameterError(
            "hscore_item_labels",
            f"parameter 'hscore_item_labels' must list {len(CLINICAL_ITEMS)} texts ({', '.join(CLINICAL_ITEMS)})",
        )
    items = {
        **dict(zip(CLINICAL_ITEMS, clinical, strict=True)),
        "ferritin": labs.ferritin.label,
        "triglycerides": labs.triglycerides.label,
        "fibrinogen": labs.fibrinogen.label,
        "ast": labs.ast.label,
    }
    return HScoreSettings(
        catalog=catalog,
        labs=labs,
        table=_table(params),
        cutoff=params.number("hscore_cutoff"),
        items=items,
        wording={name: params.template(name, names) for name, names in WORDING.items()},
    )


# --- configuration helpers --------------------------------------------------------------------------


def _points(params: Params, name: str, count: int) -> tuple[int, ...]:
    values = params.numbers(name)
    if len(values) != count or any(v != int(v) for v in values):
        raise ParameterError(name, f"parameter {name!r} must list {count} whole numbers of points")
    return tuple(int(v) for v in values)


def _pair(params: Params, name: str, unit: str) -> tuple[float, float]:
    values = params.numbers(name, unit)
    if len(values) != 2 or values[0] > values[1]:
        raise ParameterError(name, f"parameter {name!r} must list two ascending cut-offs")
    return values[0], values[1]


def _table(params: Params) -> HScoreTable:
    scores = params.numbers("hscore_probability_scores")
    percents = params.numbers("hscore_probability_percents")
    if len(scores) != len(percents) or list(scores) != sorted(scores):
        raise ParameterError(
            "hscore_probability_scores",
            "hscore_probability_scores must ascend and pair one to one with hscore_probability_percents",
        )
    temperature_points = _points(params, "hscore_temperature_points", 3)
    organomegaly_points = _points(params, "hscore_organomegaly_points", 3)
    cytopenia_points = _points(params, "hscore_cytopenia_points", 4)
    ferritin_points = _points(params, "hscore_ferritin_points", 3)
    triglycerides_points = _points(params, "hscore_triglycerides_points", 3)
    return HScoreTable(
        immunosuppression=_points(params, "hscore_immunosuppression_points", 1)[0],
        temperature=_pair(params, "hscore_temperature_limits", "Cel"),
        temperature_points=(temperature_points[0], temperature_points[1], temperature_points[2]),
        organomegaly_points=(organomegaly_points[0], organomegaly_points[1], organomegaly_points[2]),
        cytopenia_limits=(
            params.number("hscore_hemoglobin_max", "g/dL"),
            params.number("hscore_wbc_max", "10*9/L"),
            params.number("hscore_platelets_max", "10*9/L"),
        ),
        cytopenia_points=(cytopenia_points[0], cytopenia_points[1], cytopenia_points[2], cytopenia_points[3]),
        ferritin=_pair(params, "hscore_ferritin_limits", "ug/L"),
        ferritin_points=(ferritin_points[0], ferritin_points[1], ferritin_points[2]),
        triglycerides=_pair(params, "hscore_triglycerides_limits", "mmol/L"),
        triglycerides_points=(triglycerides_points[0], triglycerides_points[1], triglycerides_points[2]),
        fibrinogen=params.number("hscore_fibrinogen_max", "g/L"),
        fibrinogen_points=_points(params, "hscore_fibrinogen_points", 1)[0],
        ast=params.number("hscore_ast_min", "U/L"),
        ast_points=_points(params, "hscore_ast_points", 1)[0],
        hemophagocytosis=_points(params, "hscore_hemophagocytosis_points", 1)[0],
        probability=tuple(zip(scores, percents, strict=True)),
    )


# --- items ----------------------------------------------------------------------------------------


def _range(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}-{high}"


def _most(table: HScoreTable) -> int:
    return (
        max(0, table.immunosuppression)
        + max(table.temperature_points)
        + max(table.organomegaly_points)
        + max(table.cytopenia_points)
        + max(table.ferritin_points)
        + max(table.triglycerides_points)
        + max(0, table.fibrinogen_points)
        + max(0, table.ast_points)
        + max(0, table.hemophagocytosis)
    )


def _present(fact: Fact) -> bool | None:
    if fact.value == "present":
        return True
    if fact.value == "refuted":
        return False
    return None


def _in(catalog: FactCatalog, fact: Fact, unit: str) -> float | None:
    """The fact's value in `unit`: the reported number when reported in it (no conversion rounding)."""
    if fact.value is None or isinstance(fact.value, bool | str):
        return None
    if fact.native_unit == unit and fact.native_value is not None:
        return fact.native_value
    if fact.unit == unit:
        return float(fact.value)
    return catalog.convert(float(fact.value), fact.unit or unit, unit, analyte=fact.name.split(".")[0])


def _bounded(value: float | None, fact: Fact, key: Callable[[float], Hashable]) -> float | None:
    """`value` for a score item, or None when a censored result (">6000") leaves the item's points open.

    A lower bound decides the item when every value above it falls in the same band as the bound itself;
    an upper bound likewise below it.
    """
    if value is None or fact.comparator is None:
        return value
    if fact.comparator not in wording.BOUNDS:
        return None
    upward = fact.comparator.startswith(">")
    extreme = math.inf if upward else -math.inf
    # A strict bound (">6000") excludes the bound itself: score the nearest value it allows.
    probe = math.nextafter(value, extreme) if fact.comparator in (">", "<") else value
    return probe if key(probe) == key(extreme) else None


def _band(limits: tuple[float, float]) -> Callable[[float], Hashable]:
    # As HScoreTable reads a two-cut-off item: below the first, between them inclusive, above the second.
    return lambda x: 0 if x < limits[0] else 1 if x <= limits[1] else 2


def _at_most(limit: float) -> Callable[[float], Hashable]:
    return lambda x: x <= limit


def _at_least(limit: float) -> Callable[[float], Hashable]:
    return lambda x: x >= limit
