"""An Evaluation and data gaps -> the CDS Hooks response, plus what the store records of each card."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cds_service.cards.actions import ACTIONS, SuggestionContext
from cds_service.cards.merge import merged_card
from cds_service.cards.text import fill
from cds_service.engine import Evaluation, Finding
from cds_service.engine.rulefile import Link
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact
from cds_service.markup import markdown_text
from cds_service.protocol.discovery import IncompleteDataCard, ServiceDefinition
from cds_service.protocol.response import SUMMARY_MAX, Card, CardsResponse
from cds_service.store.database import IssuedCard

if TYPE_CHECKING:  # charts.links reads facts through the calculations, which import the engine
    from cds_service.charts.links import ChartLinks

# Where every card says which rule, at which version, of which ruleset, produced it (docs/cards.md).
PROVENANCE_KEY = "cds-service-provenance"

log = logging.getLogger(__name__)


def render_response(
    service: ServiceDefinition,
    facts: Facts,
    evaluation: Evaluation,
    issued_at: datetime,
    charts: ChartLinks | None = None,
) -> tuple[CardsResponse, list[IssuedCard]]:
    """The response and the cards to record. Chart links get their snapshots from `charts` (read its
    `snapshots` afterwards, to store them); without it there is nowhere to keep a chart, and chart links
    are left out."""
    # Each card with the rules it speaks for, the first being the one its provenance names.
    produced: list[tuple[Card, list[tuple[str, str]]]] = []
    plan = evaluation.response
    incomplete = service.incomplete_data_card
    announced = {label: why for label, why in facts.unavailable.items() if label not in facts.unannounced}
    speaks = plan is None or plan.speaks
    if incomplete is not None and speaks and (announced or facts.problems):
        card = _incomplete_data_card(incomplete, announced, facts.problems, evaluation)
        produced.append((card, [(incomplete.id, incomplete.version)]))
    context = SuggestionContext(
        patient_id=facts.patient_id,
        facts=evaluation.facts,
        draft_orders={f"{o.resource_type}/{o.id}": o.raw for o in facts.draft_orders},
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
            produced.append((card, [(finding.rule_id, finding.rule_version)]))
        elif merged and finding.rule_id == merged[0].rule_id and plan is not None and plan.merge:
            first = merged[0]
            extension = _provenance(first.rule_id, first.rule_version, evaluation)
            card = merged_card(plan, evaluation, context, lambda link: _link(link, charts), extension)
            produced.append((card, [(f.rule_id, f.rule_version) for f in merged]))
    issued = [
        IssuedCard(
            card_uuid=card.uuid,
            service_id=service.id,
            rule_id=rules[0][0],
            rule_version=rules[0][1],
            indicator=card.indicator,
            patient_id=facts.patient_id,
            hook_instance=facts.hook_instance,
            issued_at=issued_at,
            override_reasons=[[r.system or "", r.code] for r in card.overrideReasons or ()],
            also=tuple(rules[1:]),
        )
        for card, rules in produced
    ]
    return CardsResponse(cards=[card for card, _ in produced]), issued


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
    suggestions = []
    for index, suggestion in enumerate(template.suggestions):
        if index in skip:
            continue
        actions = ACTIONS[suggestion.action].build(suggestion.arguments, context)
        if actions is None:
            continue
        item: dict[str, Any] = {
            "label": fill(
                suggestion.label,
                facts,
                finding.parameters,
                finding.missing,
                thresholds=finding.thresholds,
                units=evaluation.units,
            ),
            "uuid": str(uuid.uuid4()),
            "actions": actions,
        }
        if suggestion.isRecommended and recommend:
            item["isRecommended"] = True
        suggestions.append(item)
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
    log.warning("rule %s: summary of %d characters cut to %d", finding.rule_id, len(text), SUMMARY_MAX)
    return text[: SUMMARY_MAX - 1] + "…"


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
