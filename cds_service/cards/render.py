"""An Evaluation and data gaps -> the CDS Hooks response, plus what the store records of each card."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cds_service.engine import Evaluation, Finding
from cds_service.facts.model import Facts
from cds_service.facts.named import Fact
from cds_service.markup import markdown_text
from cds_service.protocol.discovery import IncompleteDataCard, ServiceDefinition
from cds_service.protocol.response import SUMMARY_MAX, Card, CardsResponse
from cds_service.ruleformat.actions import ACTIONS, SuggestionContext
from cds_service.ruleformat.rulefile import Link
from cds_service.ruleformat.text import fill
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
    produced: list[tuple[Card, str, str]] = []  # the card, the rule id and version that produced it
    incomplete = service.incomplete_data_card
    announced = {label: why for label, why in facts.unavailable.items() if label not in facts.unannounced}
    if incomplete is not None and (announced or facts.problems):
        card = _incomplete_data_card(incomplete, announced, facts.problems, evaluation)
        produced.append((card, incomplete.id, incomplete.version))
    context = SuggestionContext(
        patient_id=facts.patient_id,
        facts=evaluation.facts,
        draft_orders={f"{o.resource_type}/{o.id}": o.raw for o in facts.draft_orders},
    )
    for finding in evaluation.findings():
        produced.append((_card(finding, evaluation, context, charts), finding.rule_id, finding.rule_version))
    issued = [
        IssuedCard(
            card_uuid=card.uuid,
            service_id=service.id,
            rule_id=rule_id,
            rule_version=version,
            indicator=card.indicator,
            patient_id=facts.patient_id,
            hook_instance=facts.hook_instance,
            issued_at=issued_at,
            override_reasons=[[r.system or "", r.code] for r in card.overrideReasons or ()],
        )
        for card, rule_id, version in produced
    ]
    return CardsResponse(cards=[card for card, _, _ in produced]), issued


def _card(
    finding: Finding, evaluation: Evaluation, context: SuggestionContext, charts: ChartLinks | None
) -> Card:
    template = finding.template
    facts: Mapping[str, Fact] = evaluation.facts
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": _summary(
            fill(template.summary, facts, finding.parameters, finding.missing, thresholds=finding.thresholds),
            finding,
        ),
        "indicator": template.indicator,
        "source": template.source.model_dump(exclude_none=True),
        "extension": _provenance(finding.rule_id, finding.rule_version, evaluation),
    }
    if template.detail:
        card["detail"] = fill(
            template.detail, facts, finding.parameters, finding.missing, True, finding.thresholds
        )
    suggestions = []
    for suggestion in template.suggestions:
        actions = ACTIONS[suggestion.action].build(suggestion.arguments, context)
        if actions is None:
            continue
        item: dict[str, Any] = {
            "label": fill(
                suggestion.label, facts, finding.parameters, finding.missing, thresholds=finding.thresholds
            ),
            "uuid": str(uuid.uuid4()),
            "actions": actions,
        }
        if suggestion.isRecommended:
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
