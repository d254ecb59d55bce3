"""The 2016 EULAR/ACR/PRINTO classification of MAS in sJIA (Ravelli 2016) of the `hlh` calculation: its
thresholds read from the providing rule file's parameters, its items from named facts, and the
classification worded item by item.

Facts (produced by the `hlh` calculation, hlh2004/facts.py):
- hlh.mas2016, hlh.mas2016_status: the 2016 MAS classification, item by item.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from cds_service.clinical import wording
from cds_service.clinical.base import Params, Threshold
from cds_service.clinical.inputs import HlhLabs, worst
from cds_service.clinical.mas2016.calculator import classify
from cds_service.clinical.tristate import Tri
from cds_service.facts.named import Fact, FactSpec

__all__ = ["STATUSES", "WIDTH", "WORDING", "MasSettings", "configure", "specs"]

STATUSES = ("classified", "not_classified", "undecided")
WIDTH = 500

# How hlh.mas2016 is worded: template parameters of the providing rule file (hlh-2004.yaml) with the
# placeholders each may name; {label} is the analyte's label (analytes.yaml), {limit} the threshold in the
# unit the value was reported in.
WORDING: dict[str, tuple[str, ...]] = {
    "mas_fever_item": ("limit",),
    "mas_ferritin_item": ("label", "limit"),
    "mas_platelets_item": ("label", "limit"),
    "mas_ast_item": ("label", "limit"),
    "mas_triglycerides_item": ("label", "limit"),
    "mas_fibrinogen_item": ("label", "limit"),
    "mas_item_text": ("item", "result", "seen"),
    "mas_classified_text": (),
    "mas_not_classified_text": (),
    "mas_undecided_text": (),
    "mas_summary_text": ("heading", "met", "items", "required", "parts"),
    "mas_not_validated_text": (),
}


def specs() -> list[FactSpec]:
    return [
        FactSpec(
            "hlh.mas2016",
            "text",
            None,
            "2016 EULAR/ACR/PRINTO MAS classification, item by item",
            width=WIDTH,
        ),
        FactSpec(
            "hlh.mas2016_status",
            "text",
            None,
            "2016 MAS classification: classified, not_classified, or undecided (data missing)",
            STATUSES,
        ),
    ]


@dataclasses.dataclass(frozen=True)
class MasSettings:
    labs: HlhLabs
    fever: Threshold
    ferritin: Threshold
    platelets: Threshold
    ast: Threshold
    triglycerides: Threshold
    fibrinogen: Threshold
    required_items: int
    wording: Mapping[str, str]  # WORDING

    def say(self, name: str, **values: str) -> str:
        return self.wording[name].format(**values)

    def _item(self, name: str, threshold: Threshold, fact: Fact, label: str) -> str:
        return self.say(name, label=label, limit=wording.limit(threshold, fact))

    def compute(self, named: Mapping[str, Fact]) -> dict[str, Fact]:
        labs = self.labs
        temperature, ferritin = named[worst(labs.temperature)], named[worst(labs.ferritin)]
        platelets, ast = named[worst(labs.platelets)], named[worst(labs.ast)]
        tg, fib = named[worst(labs.triglycerides)], named[worst(labs.fibrinogen)]
        fever = self.fever.compare(temperature, ">=")
        high_ferritin = self.ferritin.compare(ferritin, ">")
        items = [
            (
                self._item("mas_platelets_item", self.platelets, platelets, labs.platelets.label),
                self.platelets.compare(platelets, "<="),
                platelets,
            ),
            (self._item("mas_ast_item", self.ast, ast, labs.ast.label), self.ast.compare(ast, ">"), ast),
            (
                self._item("mas_triglycerides_item", self.triglycerides, tg, labs.triglycerides.label),
                self.triglycerides.compare(tg, ">"),
                tg,
            ),
            (
                self._item("mas_fibrinogen_item", self.fibrinogen, fib, labs.fibrinogen.label),
                self.fibrinogen.compare(fib, "<="),
                fib,
            ),
        ]
        result = classify(fever, high_ferritin, [(label, r) for label, r, _ in items], self.required_items)
        status = {Tri.MET: "classified", Tri.NOT_MET: "not_classified", Tri.UNKNOWN: "undecided"}[
            result.status
        ]
        heading = {
            Tri.MET: "mas_classified_text",
            Tri.NOT_MET: "mas_not_classified_text",
            Tri.UNKNOWN: "mas_undecided_text",
        }
        fever_item = self.say("mas_fever_item", limit=wording.limit(self.fever, temperature))
        ferritin_item = self._item("mas_ferritin_item", self.ferritin, ferritin, labs.ferritin.label)
        shown = [(fever_item, fever, temperature), (ferritin_item, high_ferritin, ferritin), *items]
        parts = [
            self.say("mas_item_text", item=item, result=wording.SHOWN[r], seen=wording.seen(fact))
            for item, r, fact in shown
        ]
        validated = any(named[f"conditions.{c}.status"].value == "present" for c in ("sjia", "aosd"))
        text = self.say(
            "mas_summary_text",
            heading=self.say(heading[result.status]),
            met=str(result.met_items),
            items=str(len(items)),
            required=str(self.required_items),
            parts="; ".join(parts),
        )
        if not validated:
            text += self.say("mas_not_validated_text")
        return {
            "hlh.mas2016": Fact("hlh.mas2016", wording.clip(text, WIDTH)),
            "hlh.mas2016_status": Fact("hlh.mas2016_status", status, detail=text),
        }


def configure(params: Params, labs: HlhLabs) -> MasSettings:
    return MasSettings(
        labs=labs,
        fever=params.threshold("mas_fever", "Cel", labs.temperature.name),
        ferritin=params.threshold("mas_ferritin", "ug/L", labs.ferritin.name),
        platelets=params.threshold("mas_platelets", "10*9/L", labs.platelets.name),
        ast=params.threshold("mas_ast", "U/L", labs.ast.name),
        triglycerides=params.threshold("mas_triglycerides", "mg/dL", labs.triglycerides.name),
        fibrinogen=params.threshold("mas_fibrinogen", "mg/dL", labs.fibrinogen.name),
        required_items=params.whole("mas_required_items"),
        wording={name: params.template(name, names) for name, names in WORDING.items()},
    )
