"""Why each rule fired, did not fire, or could not evaluate: the facts it read, as reported and as
converted, and the parameters it compared them with."""

from __future__ import annotations

from typing import Any

from cds_service.engine import Evaluation, Outcome
from cds_service.engine.response import Decision
from cds_service.facts.named import Fact
from cds_service.ruleformat.text import format_number, format_time

_STATUS = {"fired": "FIRED", "not-fired": "not fired", "unknown": "COULD NOT EVALUATE"}


def explain_text(evaluation: Evaluation) -> str:
    lines = [
        f"ruleset {evaluation.ruleset_name} {evaluation.ruleset_version} (sha256 {evaluation.ruleset_hash[:12]})",
    ]
    if not evaluation.outcomes:
        lines.append("no rules run for this service")
    lines += _response_lines(evaluation)
    for outcome in evaluation.outcomes:
        lines.append("")
        lines += _outcome_lines(outcome, evaluation)
    return "\n".join(lines) + "\n"


def _response_lines(evaluation: Evaluation) -> list[str]:
    """The response step: scopes, and what became of each card a rule asked for."""
    plan = evaluation.response
    if plan is None:
        return []
    held = [name for name, holds in evaluation.scopes.items() if holds]
    lines = ["", f"scopes holding: {', '.join(held) or 'none'}"]
    if not plan.speaks:
        lines.append(f"response: no card at all ({plan.silence})")
    changed = [d for d in plan.decisions.values() if d.fate != "shown" or d.not_recommended_by]
    if changed:
        lines.append("response:")
        for decision in changed:
            lines.append(f"  {decision.rule_id}: {response_note(decision)}")
    if plan.merged:
        rules = ", ".join(f.rule_id for f in plan.merged)
        assert plan.merge is not None
        lines.append(f"  {plan.merge.id} {plan.merge.version}: one card for {rules}")
    for dropped in plan.dropped_suggestions():
        lines.append(
            f"  {dropped.rule_id}: suggestion {dropped.label!r} left out, {dropped.kept_by}'s card offers it"
        )
    return lines


def response_note(decision: Decision) -> str:
    """What the response did with a rule's card, for a person: "suppressed by renal-dose: ..."."""
    note = decision.why
    if decision.not_recommended_by is not None:
        note += f"; not recommended: {decision.not_recommended_by}'s card says the dose is too high"
    return note


def explain_json(evaluation: Evaluation) -> dict[str, Any]:
    plan = evaluation.response
    return {
        "ruleset": {
            "name": evaluation.ruleset_name,
            "version": evaluation.ruleset_version,
            "hash": evaluation.ruleset_hash,
        },
        "scopes": dict(evaluation.scopes),
        "response": {
            "speaks": plan.speaks,
            "silence": plan.silence,
            "merged": {
                "id": plan.merge.id,
                "version": plan.merge.version,
                "rules": [f.rule_id for f in plan.merged],
            }
            if plan.merge is not None
            else None,
        }
        if plan is not None
        else None,
        "rules": [
            {
                "id": o.rule.id,
                "version": o.rule.version,
                "status": o.status,
                "card": _card_kind(o),
                "variant": o.variant,
                "response": _response_json(evaluation, o),
                "facts": [fact_json(f) for f in o.facts_read(evaluation.facts)],
                "parameters": {
                    name: {
                        "value": p.value,
                        "unit": p.unit,
                        "also": [a.model_dump() for a in p.also],
                        "source": p.source,
                    }
                    for name, p in o.rule.spec.parameters.items()
                },
            }
            for o in evaluation.outcomes
        ],
    }


def _response_json(evaluation: Evaluation, outcome: Outcome) -> dict[str, Any] | None:
    plan = evaluation.response
    decision = plan.decision(outcome.rule.id) if plan is not None else None
    if decision is None:
        return None
    assert plan is not None
    return {
        "fate": decision.fate,
        "why": response_note(decision),
        "by": decision.by,
        "notRecommendedBy": decision.not_recommended_by,
        "signal": outcome.signal,
        "droppedSuggestions": [
            {"label": d.label, "keptBy": d.kept_by}
            for d in plan.dropped_suggestions()
            if d.rule_id == outcome.rule.id
        ],
    }


def fact_json(fact: Fact) -> dict[str, Any]:
    return {
        "name": fact.name,
        "value": fact.value,
        "unit": fact.unit,
        "missing": fact.missing,
        "reported": {"value": fact.native_value, "unit": fact.native_unit, "comparator": fact.comparator}
        if fact.native_value is not None
        else None,
        "time": fact.time.isoformat() if fact.time else None,
        "evidence": list(fact.evidence),
        "detail": fact.detail,
    }


def describe_fact(fact: Fact) -> str:
    """One line: value and unit, what was reported if that differs, when, and from which resources."""
    if fact.value is None:
        return f"could not be computed: {fact.missing or 'no reason given'}"
    text = _value(fact.value, fact.comparator)
    if fact.unit:
        text += f" {fact.unit}"
    notes = []
    if fact.native_value is not None and (fact.native_unit != fact.unit or fact.native_value != fact.value):
        notes.append(
            f"reported {_value(fact.native_value, fact.comparator)} {fact.native_unit or ''}".rstrip()
        )
    if fact.time is not None:
        notes.append(f"at {format_time(fact.time)}")
    if fact.detail:
        notes.append(fact.detail)
    if notes:
        text += f" ({'; '.join(notes)})"
    if fact.evidence:
        text += f" [{', '.join(fact.evidence)}]"
    return text


def _outcome_lines(outcome: Outcome, evaluation: Evaluation) -> list[str]:
    rule = outcome.rule
    decision = evaluation.response.decision(rule.id) if evaluation.response is not None else None
    fate = f" [{response_note(decision)}]" if decision is not None and decision.fate != "shown" else ""
    lines = [f"{rule.id} {rule.version}: {_STATUS[outcome.status]}{_card_note(outcome)}{fate}"]
    facts = outcome.facts_read(evaluation.facts)
    if facts:
        width = max(len(f.name) for f in facts)
        lines.append("  facts read:")
        lines += [f"    {f.name.ljust(width)}  {describe_fact(f)}" for f in facts]
    if rule.spec.parameters:
        lines.append("  parameters:")
        for name, parameter in rule.spec.parameters.items():
            value = parameter.value
            if isinstance(value, list):
                shown: Any = ", ".join(str(v) for v in value)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                shown = format_number(float(value))
            else:
                shown = value
            also = "".join(f" = {format_number(a.value)} {a.unit}" for a in parameter.also)
            lines.append(f"    {name} = {shown} {parameter.unit or ''}{also}".rstrip())
    return lines


def _card_kind(outcome: Outcome) -> str | None:
    spec = outcome.rule.spec
    if outcome.status == "fired":
        card = spec.card if outcome.variant is None else spec.variants[outcome.variant].card
        return card.indicator
    if outcome.status == "unknown" and spec.unknown.card is not None:
        return spec.unknown.card.indicator
    return None


def _card_note(outcome: Outcome) -> str:
    kind = _card_kind(outcome)
    if kind and outcome.variant is not None:
        return f" -> {kind} card (variant {outcome.variant + 1})"
    if kind:
        return f" -> {kind} card"
    if outcome.status == "unknown":
        return f" -> no card ({outcome.rule.spec.unknown.silent})"
    return ""


def _value(value: Any, comparator: str | None) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{comparator or ''}{format_number(float(value))}"
    return str(value)
