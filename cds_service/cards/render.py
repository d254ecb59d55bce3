"""An Evaluation and data gaps -> the CDS Hooks response, and which rule produced each card."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Collection, Mapping
from typing import Any

from cds_service.cards.merge import merged_card
from cds_service.cards.suggestions import suggestions as built_suggestions
from cds_service.charts.links import ChartLinks, LinkedChart
from cds_service.engine import Evaluation, Finding
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact
from cds_service.markup import markdown_text
from cds_service.protocol.discovery import IncompleteDataCard, ServiceDefinition
from cds_service.protocol.response import SUMMARY_MAX, Card, CardsResponse
from cds_service.ruleformat.actions import SuggestionContext
from cds_service.ruleformat.rulefile import Link
from cds_service.ruleformat.text import fill

# Where every card says which rule, at which version, of which ruleset, produced it (docs/cards.md).
PROVENANCE_KEY = "cds-service-provenance"

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RenderedCard:
    """A card of the response and the rule, at its version, that produced it."""

    card: Card
    rule_id: str
    rule_version: str
    # A merged card speaks for several rules: the others, after the one its provenance names.
    also: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class Rendered:
    response: CardsResponse
    cards: tuple[RenderedCard, ...]
    # The data behind the chart links on the cards, one snapshot per chart linked to.
    charts: tuple[LinkedChart, ...] = ()


_READING_ORDER = {"critical": 0, "warning": 1, "info": 2}


def render_response(
    service: ServiceDefinition, facts: Facts, evaluation: Evaluation, charts: ChartLinks | None = None
) -> Rendered:
    """The response, and what produced each of its cards. Chart links get their snapshots from `charts`;
    without it there is nowhere to keep a chart, and chart links are left out."""
    produced: list[RenderedCard] = []
    plan = evaluation.response
    incomplete = service.incomplete_data_card
    announced = {label: why for label, why in facts.unavailable.items() if label not in facts.unannounced}
    speaks = plan is None or plan.speaks
    if incomplete is not None and speaks and (announced or facts.problems):
        card = _incomplete_data_card(incomplete, announced, facts.problems, evaluation)
        produced.append(RenderedCard(card, incomplete.id, incomplete.version))
    context = SuggestionContext(
        patient_id=facts.patient_id,
        facts=evaluation.facts,
        draft_orders={f"{o.resource_type}/{o.id}": o.raw for o in facts.draft_orders},
        descriptions=plan.actions if plan is not None else {},
    )
    findings = evaluation.findings()
    shown = {f.rule_id for f in plan.shown} if plan is not None else {f.rule_id for f in findings}
    merged = [f for f in plan.merged] if plan is not None else []
    dropped = plan.dropped if plan is not None else {}
    for finding in findings:
        if finding.rule_id in shown:
            decision = plan.decision(finding.rule_id) if plan is not None else None
            skip = {index for (rule, index) in dropped if rule == finding.rule_id}
            recommend = decision is None or decision.not_recommended_by is None
            card = _card(finding, evaluation, context, charts, skip, recommend)
            produced.append(RenderedCard(card, finding.rule_id, finding.rule_version))
        elif merged and finding.rule_id == merged[0].rule_id and plan is not None and plan.merge:
            first = merged[0]
            extension = _provenance(first.rule_id, first.rule_version, evaluation)
            card = merged_card(plan, evaluation, context, lambda link: _link(link, charts), extension)
            also = tuple((f.rule_id, f.rule_version) for f in merged[1:])
            produced.append(RenderedCard(card, first.rule_id, first.rule_version, also))
    # The most severe first, as a clinician should read them (a critical bacteremia before a data card);
    # within one indicator, the rule pack's order.
    produced.sort(key=lambda p: _READING_ORDER[p.card.indicator])
    return Rendered(
        response=CardsResponse(cards=[p.card for p in produced]),
        cards=tuple(produced),
        charts=tuple(charts.snapshots.values()) if charts is not None else (),
    )


def _card(
    finding: Finding,
    evaluation: Evaluation,
    context: SuggestionContext,
    charts: ChartLinks | None,
    skip: Collection[int] = (),
    recommend: bool = True,
) -> Card:
    """The card of one finding; `skip`: suggestions another card of the response already offers;
    `recommend` False: another card says not to recommend any of its suggestions."""
    template = finding.template
    facts: Mapping[str, Fact] = evaluation.facts
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": _summary(
            fill(
                template.summary,
                facts,
                finding.parameters,
                finding.missing,
                thresholds=finding.thresholds,
                units=evaluation.units,
                fit=evaluation.specs,
            ),
            finding,
        ),
        "indicator": template.indicator,
        "source": template.source.model_dump(exclude_none=True),
        "extension": _provenance(finding.rule_id, finding.rule_version, evaluation),
    }
    if template.detail:
        card["detail"] = fill(
            template.detail,
            facts,
            finding.parameters,
            finding.missing,
            True,
            finding.thresholds,
            evaluation.units,
        )
    suggestions = built_suggestions(finding, evaluation, context, skip, recommend)
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = template.selectionBehavior or "at-most-one"
    links = [shown for link in template.links if (shown := _link(link, charts)) is not None]
    if links:
        card["links"] = links
    if template.overrideReasons:
        card["overrideReasons"] = [reason.model_dump() for reason in template.overrideReasons]
    return Card.model_validate(card)


def _link(link: Link, charts: ChartLinks | None) -> dict[str, Any] | None:
    if link.chart is None:
        return {"label": link.label, "url": link.url, "type": link.type}
    url = charts.url(link.chart) if charts is not None else None
    if url is None:
        return None
    return {"label": link.label, "url": url, "type": "absolute"}


def _summary(text: str, finding: Finding) -> str:
    # Lint proves summaries fit with the widest values it assumes; a longer real value is cut, never
    # allowed to turn a clinical answer into an error.
    if len(text) <= SUMMARY_MAX:
        return text
    # Once per rule and process at WARNING: the same rule cuts the same way on every call for the same
    # patient, and a line per call buries everything else in the log (and costs the call).
    level = logging.DEBUG if finding.rule_id in _CUT_WARNED else logging.WARNING
    _CUT_WARNED.add(finding.rule_id)
    log.log(
        level,
        "rule %s: summary of %d characters cut to %d (said once per rule and worker; the rest at DEBUG)",
        finding.rule_id,
        len(text),
        SUMMARY_MAX,
    )
    return text[: SUMMARY_MAX - 1] + "…"


_CUT_WARNED: set[str] = set()


def _incomplete_data_card(
    template: IncompleteDataCard, unavailable: dict[str, str], problems: list[str], evaluation: Evaluation
) -> Card:
    labels = list(unavailable) or ["part of the data"]
    summary = template.summary.format(sources=", ".join(labels))
    if len(summary) > SUMMARY_MAX:
        summary = template.summary.format(sources=f"{len(labels)} data sources")
    # Reasons and problems quote the EHR (a resource type, a unit, an id): escaped, never rendered.
    lines = [f"- **{markdown_text(label)}**: {markdown_text(why)}" for label, why in unavailable.items()]
    lines += [f"- {markdown_text(problem)}" for problem in problems]
    return Card.model_validate(
        {
            "summary": summary,
            "indicator": template.indicator,
            "detail": template.detail.format(details="\n".join(lines)),
            "source": {"label": template.source_label},
            "extension": _provenance(template.id, template.version, evaluation),
        }
    )


def _provenance(rule_id: str, version: str, evaluation: Evaluation) -> dict[str, Any]:
    return {
        PROVENANCE_KEY: {
            "ruleId": rule_id,
            "ruleVersion": version,
            "ruleset": evaluation.ruleset_name,
            "rulesetVersion": evaluation.ruleset_version,
            "rulesetHash": evaluation.ruleset_hash,
        }
    }
