"""Findings and data gaps -> the CDS Hooks response, plus what the store records of each card."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cds_service.engine import Finding
from cds_service.facts.model import Facts
from cds_service.protocol.discovery import IncompleteDataCard, ServiceDefinition
from cds_service.protocol.response import SUMMARY_MAX, Card, CardsResponse
from cds_service.store.database import IssuedCard

# Where every card says which rule, at which version, produced it.
PROVENANCE_KEY = "cds-service-provenance"


def render_response(
    service: ServiceDefinition, facts: Facts, findings: list[Finding], issued_at: datetime
) -> tuple[CardsResponse, list[IssuedCard]]:
    produced: list[tuple[Card, str, str]] = []
    incomplete = service.incomplete_data_card
    if incomplete is not None and (facts.unavailable or facts.problems):
        produced.append((_incomplete_data_card(incomplete, facts), incomplete.id, incomplete.version))
    for finding in findings:
        card = Card.model_validate(
            {**finding.card, "extension": _provenance(finding.rule_id, finding.rule_version)}
        )
        produced.append((card, finding.rule_id, finding.rule_version))
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
        )
        for card, rule_id, version in produced
    ]
    return CardsResponse(cards=[card for card, _, _ in produced]), issued


def _incomplete_data_card(template: IncompleteDataCard, facts: Facts) -> Card:
    labels = list(facts.unavailable) or ["part of the data"]
    summary = template.summary.format(sources=", ".join(labels))
    if len(summary) > SUMMARY_MAX:
        summary = template.summary.format(sources=f"{len(labels)} data sources")
    lines = [f"- **{label}**: {why}" for label, why in facts.unavailable.items()]
    lines += [f"- {problem}" for problem in facts.problems]
    return Card.model_validate(
        {
            "summary": summary,
            "indicator": template.indicator,
            "detail": template.detail.format(details="\n".join(lines)),
            "source": {"label": template.source_label},
            "extension": _provenance(template.id, template.version),
        }
    )


def _provenance(rule_id: str, version: str) -> dict[str, Any]:
    return {PROVENANCE_KEY: {"ruleId": rule_id, "ruleVersion": version}}
