"""The `hlh` calculation: the eight HLH-2004 criteria (Henter 2007) as tri-state results, counted against
"5 of 8" (rules-logic.md (a)), with the HScore (Fardet 2014, hscore/facts.py) and the 2016 MAS
classification (Ravelli 2016, mas2016/facts.py) as texts for the card's detail.

Every criterion is MET, NOT_MET or UNKNOWN (criteria.py reads each); missing data never counts as
NOT_MET. Lab values are compared in the unit they were reported in, so 3.0 mmol/L triglycerides or 1.5 g/L
fibrinogen meet the criterion exactly at the boundary.

Facts:
- hlh.met / .unknown / .not_met: how many criteria are in each state (counts).
- hlh.status: fulfilled (>= required met), cannot_fulfil (met + unknown < required), else
  indeterminate; missing when no criterion has any data at all.
- hlh.unmeasured / .undecided: of the unknown criteria, those without any result yet, and those measured
  but not comparable (sCD25 in pg/mL without a flag); hlh.open says both, short, for a summary.
- hlh.<criterion>: met, not_met, unknown (not yet measured) or undecided (measured, not comparable), for
  each of the eight criteria (CRITERIA).
- hlh.met_list / .unknown_list / .not_met_list: the criteria in each state, short enough for a summary.
- hlh.evidence: markdown, one line per criterion with the values, units, times and resources used.
- hlh.missing_tests: the tests that would decide the criteria not yet measured (a test already done is not
  asked for again).
- hlh.hscore, hlh.hscore_low, hlh.hscore_high: the HScore (hscore/facts.py).
- hlh.mas2016, hlh.mas2016_status: the 2016 MAS classification (mas2016/facts.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime

from cds_service.clinical.base import Configured, ParameterError, Params
from cds_service.clinical.hlh2004 import criteria as hlh_criteria
from cds_service.clinical.hlh2004 import lists as hlh_lists
from cds_service.clinical.hlh2004.calculator import counts, hlh_status
from cds_service.clinical.hlh2004.criteria import CRITERIA, Criteria, per_criterion
from cds_service.clinical.hlh2004.lists import open_text, short_list
from cds_service.clinical.hscore import facts as hscore_facts
from cds_service.clinical.inputs import HlhLabs
from cds_service.clinical.inputs import count as _count
from cds_service.clinical.inputs import worst as _worst
from cds_service.clinical.mas2016 import facts as mas2016_facts
from cds_service.clinical.tristate import Tri
from cds_service.clinical.wording import clip
from cds_service.facts.catalog import FactCatalog
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact, FactSpec, missing
from cds_service.markup import Markdown

RESULTS = ("met", "not_met", "unknown", "undecided")
STATUSES = ("fulfilled", "indeterminate", "cannot_fulfil")
_WORD = {Tri.MET: "met", Tri.NOT_MET: "not_met", Tri.UNKNOWN: "unknown"}

# Widest renderings (FactSpec.width); texts are clipped to them so the summary-length lint stays true.
LIST_WIDTH = 43  # the summary "HLH-2004: N of 8 criteria met, N not yet measured (LIST), N not met"
# The summary's middle part, "N not yet measured (LIST), N not comparable (LIST)".
OPEN_WIDTH = 75
EVIDENCE_WIDTH = 4000
TESTS_WIDTH = 300

# The named facts this calculation reads besides its lab inputs (HlhLabs, named by the rule file);
# configure refuses a catalog without them.
READS = (
    "patient.age_days",
    "conditions.splenomegaly.status",
    "conditions.hepatomegaly.status",
    "conditions.sjia.status",
    "conditions.aosd.status",
)


@dataclasses.dataclass(frozen=True)
class HlhSettings:
    """The configured calculation: every threshold and setting comes from the providing rule file."""

    required: int
    tests: Mapping[str, str]
    criteria: Criteria  # the eight criteria's readers (criteria.py)
    hscore: hscore_facts.HScoreSettings
    mas: mas2016_facts.MasSettings
    list_wording: Mapping[str, str]  # the summary lists' templates (lists.py WORDING)

    @property
    def labels(self) -> Mapping[str, str]:
        return self.criteria.labels

    @property
    def labs(self) -> HlhLabs:
        return self.criteria.labs

    def compute(self, named: Mapping[str, Fact], facts: Facts) -> dict[str, Fact]:
        criteria = self.criteria.read(named, facts)
        results = [c.result for c in criteria]
        met, unknown, not_met = counts(results)
        by_state = {state: [c for c in criteria if c.result is state] for state in Tri}
        out: dict[str, Fact] = {}
        for state, name in ((Tri.MET, "met"), (Tri.UNKNOWN, "unknown"), (Tri.NOT_MET, "not_met")):
            chosen = by_state[state]
            labels = [self.labels[c.key] for c in chosen]
            evidence = tuple(e for c in chosen for e in c.evidence)
            out[f"hlh.{name}"] = Fact(
                f"hlh.{name}", len(chosen), evidence=evidence, detail=", ".join(labels) or "none"
            )
            out[f"hlh.{name}_list"] = Fact(
                f"hlh.{name}_list", short_list(self.list_wording, labels, LIST_WIDTH), evidence=evidence
            )
        unmeasured = [c for c in by_state[Tri.UNKNOWN] if not c.measured]
        undecided = [c for c in by_state[Tri.UNKNOWN] if c.measured]
        # Of those not measured in the window, the ones with an older result: "none in the last 14 days
        # (last on DATE)", not "not yet measured".
        last = {c.key: when for c in unmeasured if (when := self._last_before(named, c.key)) is not None}
        out["hlh.unmeasured"] = Fact(
            "hlh.unmeasured",
            len(unmeasured),
            detail=", ".join(self.labels[c.key] for c in unmeasured) or "none",
        )
        out["hlh.undecided"] = Fact(
            "hlh.undecided",
            len(undecided),
            evidence=tuple(e for c in undecided for e in c.evidence),
            detail=", ".join(self.labels[c.key] for c in undecided) or "none",
        )
        out["hlh.open"] = Fact(
            "hlh.open",
            open_text(
                self.list_wording,
                [self.labels[c.key] for c in unmeasured if c.key not in last],
                [self.labels[c.key] for c in undecided],
                OPEN_WIDTH,
                [(self.labels[key], when) for key, when in last.items()],
                self._window_text(list(last)),
            ),
            evidence=tuple(e for c in undecided for e in c.evidence),
        )
        for criterion in criteria:
            name = f"hlh.{criterion.key}"
            word = "undecided" if criterion.result is Tri.UNKNOWN and criterion.measured else None
            out[name] = Fact(
                name, word or _WORD[criterion.result], evidence=criterion.evidence, detail=criterion.text
            )
        everything = tuple(dict.fromkeys(e for c in criteria for e in c.evidence))
        counted = f"{met} met, {unknown} unknown, {not_met} not met of {len(criteria)}"
        if unknown == len(criteria):
            out["hlh.status"] = missing(
                "hlh.status",
                f"no data for any of the {len(criteria)} HLH-2004 criteria "
                f"({self.labs.ferritin.label}: {named[_worst(self.labs.ferritin)].missing or 'unknown'})",
            )
        else:
            out["hlh.status"] = Fact(
                "hlh.status",
                hlh_status(results, self.required),
                evidence=everything,
                detail=f"{counted}; {self.required} needed",
            )
        lines = [self.criteria.line(c) for c in criteria]
        out["hlh.evidence"] = Fact(
            "hlh.evidence",
            Markdown(clip("\n".join(lines), EVIDENCE_WIDTH)),
            evidence=everything,
            detail=counted,
        )
        # A test already done whose result could not be compared is not asked for again: it is named, and
        # its evidence line says why it does not decide the criterion.
        tests = [self.tests[c.key] for c in unmeasured]
        tests += [f"{self.labels[c.key]}: measured, not comparable (see its evidence)" for c in undecided]
        out["hlh.missing_tests"] = Fact(
            "hlh.missing_tests", clip("; ".join(tests) if tests else "none", TESTS_WIDTH)
        )
        hemophagocytosis = next(c.result for c in criteria if c.key == "hemophagocytosis")
        out.update(self.hscore.compute(named, hemophagocytosis))
        out.update(self.mas.compute(named))
        return out

    def _last_before(self, named: Mapping[str, Fact], key: str) -> datetime | None:
        """The newest result before the lookback window of a criterion's analytes that have none in it."""
        times = [
            fact.time
            for analyte in self.criteria.analytes(key)
            if (fact := named.get(_count(analyte))) is not None and fact.value == 0 and fact.time is not None
        ]
        return max(times, default=None)

    def _window_text(self, keys: Sequence[str]) -> str:
        for key in keys:
            for analyte in self.criteria.analytes(key):
                return analyte.window_text
        return ""


class Hlh:
    name = "hlh"
    after: tuple[str, ...] = ()

    def specs(self, catalog: FactCatalog, params: Params) -> list[FactSpec]:
        specs = [
            FactSpec("hlh.met", "count", None, "HLH-2004 criteria met"),
            FactSpec(
                "hlh.unknown",
                "count",
                None,
                "HLH-2004 criteria without a decision: not yet measured, or measured but not comparable",
            ),
            FactSpec("hlh.not_met", "count", None, "HLH-2004 criteria not met"),
            FactSpec(
                "hlh.unmeasured",
                "count",
                None,
                "HLH-2004 criteria without any result yet (of the unknown ones): a test would decide them",
            ),
            FactSpec(
                "hlh.undecided",
                "count",
                None,
                "HLH-2004 criteria measured but not comparable (of the unknown ones): e.g. sCD25 in pg/mL "
                "without a flag or reference range; repeating the test would not decide them",
            ),
            FactSpec(
                "hlh.open",
                "text",
                None,
                "the unknown criteria, short: those not yet measured and those measured but not comparable",
                width=OPEN_WIDTH,
            ),
            FactSpec(
                "hlh.status",
                "text",
                None,
                "HLH-2004: fulfilled (enough criteria met), cannot_fulfil (even every unknown criterion "
                "could not reach the number needed), or indeterminate",
                STATUSES,
            ),
            FactSpec("hlh.met_list", "text", None, "the HLH-2004 criteria met, short", width=LIST_WIDTH),
            FactSpec(
                "hlh.unknown_list",
                "text",
                None,
                "the HLH-2004 criteria without a decision, short",
                width=LIST_WIDTH,
            ),
            FactSpec(
                "hlh.not_met_list", "text", None, "the HLH-2004 criteria not met, short", width=LIST_WIDTH
            ),
            FactSpec(
                "hlh.evidence",
                "text",
                None,
                "markdown: each HLH-2004 criterion with the values, units, times and resources used",
                width=EVIDENCE_WIDTH,
            ),
            FactSpec(
                "hlh.missing_tests",
                "text",
                None,
                "tests that would decide the unknown HLH-2004 criteria",
                width=TESTS_WIDTH,
            ),
            *hscore_facts.specs(),
            *mas2016_facts.specs(),
        ]
        for key in CRITERIA:
            specs.append(
                FactSpec(
                    f"hlh.{key}",
                    "text",
                    None,
                    f"HLH-2004 criterion {key}: met, not_met, unknown (not yet measured) or undecided "
                    "(measured, but the result cannot be compared with the criterion)",
                    RESULTS,
                )
            )
        return specs

    def configure(
        self, params: Params, catalog: FactCatalog, before: Mapping[str, Configured]
    ) -> HlhSettings:
        absent = [name for name in READS if name not in catalog.specs]
        if absent:
            raise ParameterError(
                "", f"the facts catalog lacks {', '.join(absent)}, which the hlh calculation reads"
            )
        labels = per_criterion(params, "criterion_labels")
        tests = per_criterion(params, "criterion_tests")
        labs = HlhLabs.configure(params)
        mas = mas2016_facts.configure(params, labs)
        return HlhSettings(
            required=params.whole("required_criteria"),
            tests=tests,
            criteria=hlh_criteria.configure(params, catalog, labs, labels),
            hscore=hscore_facts.configure(params, catalog, labs),
            mas=mas,
            list_wording={name: params.template(name, names) for name, names in hlh_lists.WORDING.items()},
        )


__all__ = ["CRITERIA", "Hlh", "HlhSettings", "open_text", "short_list"]
