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

__all__ = ["STATUSES", "WIDTH", "MasSettings", "configure", "specs"]

STATUSES = ("classified", "not_classified", "undecided")
WIDTH = 500


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

    def compute(self, named: Mapping[str, Fact]) -> dict[str, Fact]:
        labs = self.labs
        temperature, ferritin = named[worst(labs.temperature)], named[worst(labs.ferritin)]
        platelets, ast = named[worst(labs.platelets)], named[worst(labs.ast)]
        tg, fib = named[worst(labs.triglycerides)], named[worst(labs.fibrinogen)]
        fever = self.fever.compare(temperature, ">=")
        high_ferritin = self.ferritin.compare(ferritin, ">")
        items = [
            (
                f"platelets <={wording.limit(self.platelets, platelets)}",
                self.platelets.compare(platelets, "<="),
                platelets,
            ),
            (f"AST >{wording.limit(self.ast, ast)}", self.ast.compare(ast, ">"), ast),
            (
                f"triglycerides >{wording.limit(self.triglycerides, tg)}",
                self.triglycerides.compare(tg, ">"),
                tg,
            ),
            (f"fibrinogen <={wording.limit(self.fibrinogen, fib)}", self.fibrinogen.compare(fib, "<="), fib),
        ]
        result = classify(fever, high_ferritin, [(label, r) for label, r, _ in items], self.required_items)
        status = {Tri.MET: "classified", Tri.NOT_MET: "not_classified", Tri.UNKNOWN: "undecided"}[
            result.status
        ]
        heading = {
            Tri.MET: "classified as MAS",
            Tri.NOT_MET: "not classified as MAS",
            Tri.UNKNOWN: "cannot be decided",
        }
        fever_part = f"fever >={wording.limit(self.fever, temperature)} {wording.SHOWN[fever]}"
        ferritin_part = f"ferritin >{wording.limit(self.ferritin, ferritin)} {wording.SHOWN[high_ferritin]}"
        parts = [fever_part + wording.seen(temperature), ferritin_part + wording.seen(ferritin)]
        parts += [f"{label} {wording.SHOWN[r]}{wording.seen(fact)}" for label, r, fact in items]
        validated = any(named[f"conditions.{c}.status"].value == "present" for c in ("sjia", "aosd"))
        text = (
            f"{heading[result.status]} ({result.met_items} of {len(items)} items met, {self.required_items} "
            f"needed with fever and ferritin): {'; '.join(parts)}"
        )
        if not validated:
            text += ". Not validated for this population (no sJIA or AOSD recorded)"
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
    )
