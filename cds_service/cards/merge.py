"""The one card that several "data needed" cards of a response become (engine/response.py decides which).

It lists each missing item once, with every check it is needed for, and offers each test once; its
provenance names every rule it speaks for, so the audit trail, feedback and the report count per rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cds_service.cards.suggestions import suggestions as built_suggestions
from cds_service.protocol.response import Card
from cds_service.ruleformat.actions import SuggestionContext
from cds_service.ruleformat.rulefile import DataNeededMerge, Link
from cds_service.ruleformat.summary import compose_summary
from cds_service.ruleformat.text import fill

if TYPE_CHECKING:  # the engine package imports the cards it plans
    from cds_service.engine import Evaluation, Finding
    from cds_service.engine.response import ResponsePlan

PROVENANCE_KEY = "cds-service-provenance"


def merged_card(
    plan: ResponsePlan,
    evaluation: Evaluation,
    context: SuggestionContext,
    link: Callable[[Link], dict[str, Any] | None],
    extension: dict[str, Any],
) -> Card:
    """One card for `plan.merged`; `extension` is the primary rule's provenance, to which the list of every
    rule the card speaks for is added."""
    merge = plan.merge
    assert merge is not None and plan.merged
    findings = plan.merged
    checks = list(dict.fromkeys(f.template.data_needed.check for f in findings if f.template.data_needed))
    items: dict[str, tuple[str, list[str]]] = {}
    for finding in findings:
        for need in _needs(finding, evaluation):
            key = need.casefold().rstrip(". ")
            held = items.setdefault(key, (need, []))
            unblocks = _unblocks(finding, evaluation)
            if unblocks not in held[1]:
                held[1].append(unblocks)
    lines = [f"- **{_capital(need)}**: needed for {'; '.join(uses)}." for need, uses in items.values()]
    suggestions = []
    for finding in findings:
        decision = plan.decision(finding.rule_id)
        skip = {index for (rule, index) in plan.dropped if rule == finding.rule_id}
        recommend = decision is None or decision.not_recommended_by is None
        suggestions.extend(built_suggestions(finding, evaluation, context, skip, recommend))
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": compose_summary(merge.summary, checks),
        "indicator": "info",
        "detail": merge.detail.replace("{items}", "\n".join(lines)),
        "source": {"label": _sources(findings)},
        "extension": _speaks_for(extension, findings, merge),
    }
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "any"
    links: list[dict[str, Any]] = []
    for finding in findings:
        for template in finding.template.links:
            shown = link(template)
            if shown is not None and all(shown["label"] != other["label"] for other in links):
                links.append(shown)
    if links:
        card["links"] = links
    reasons = [r.model_dump() for r in merge.overrideReasons]
    if not reasons:
        seen: set[str] = set()
        for finding in findings:
            for reason in finding.template.overrideReasons:
                if reason.code not in seen:
                    seen.add(reason.code)
                    reasons.append(reason.model_dump())
    if reasons:
        card["overrideReasons"] = reasons
    return Card.model_validate(card)


def _needs(finding: Finding, evaluation: Evaluation) -> list[str]:
    needed = finding.template.data_needed
    assert needed is not None
    facts, units = evaluation.facts, evaluation.units
    if needed.needs.strip() == "{missing}":
        # Each reason the rule could not evaluate is its own item, so that one missing weight asked for
        # by two rules is listed once.
        reasons = finding.missing_reasons or (finding.missing,)
        parts = [part.strip() for reason in reasons for part in reason.split("; ")]
        return [
            fill("{missing}", facts, finding.parameters, part, True, units=units)
            for part in dict.fromkeys(parts)
            if part
        ]
    return [fill(needed.needs, facts, finding.parameters, finding.missing, True, finding.thresholds, units)]


def _unblocks(finding: Finding, evaluation: Evaluation) -> str:
    needed = finding.template.data_needed
    assert needed is not None
    return fill(
        needed.unblocks,
        evaluation.facts,
        finding.parameters,
        finding.missing,
        True,
        finding.thresholds,
        evaluation.units,
    )


def _capital(text: str) -> str:
    # "no weight" -> "No weight"; a word written with capitals of its own ("doseQuantity", "ANC") is kept.
    first = text.split(" ", 1)[0]
    return text[:1].upper() + text[1:] if first.isalpha() and first.islower() else text


def _sources(findings: Sequence[Finding]) -> str:
    """Every reference the merged cards cite, once each."""
    parts = [part.strip() for f in findings for part in f.template.source.label.split(";")]
    return "; ".join(dict.fromkeys(p for p in parts if p))


def _speaks_for(
    extension: dict[str, Any], findings: Sequence[Finding], merge: DataNeededMerge
) -> dict[str, Any]:
    provenance = dict(extension[PROVENANCE_KEY])
    provenance["rules"] = [{"ruleId": f.rule_id, "ruleVersion": f.rule_version} for f in findings]
    provenance["mergedInto"] = {"id": merge.id, "version": merge.version}
    return {PROVENANCE_KEY: provenance}
