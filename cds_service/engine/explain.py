"""Why each rule fired, did not fire, or could not evaluate: the facts it read, as reported and as
converted, and the parameters it compared them with."""

from __future__ import annotations

from typing import Any

from cds_service.engine import Evaluation, Outcome
from cds_service.facts.named import Fact
from cds_service.ruleformat.text import format_number, format_time

_STATUS = {"fired": "FIRED", "not-fired": "not fired", "unknown": "COULD NOT EVALUATE"}


def explain_text(evaluation: Evaluation) -> str:
    lines = [
        f"ruleset {evaluation.ruleset_name} {evaluation.ruleset_version} (sha256 {evaluation.ruleset_hash[:12]})",
    ]
    if not evaluation.outcomes:
        lines.append("no rules run for this service")
    for outcome in evaluation.outcomes:
        lines.append("")
        lines += _outcome_lines(outcome, evaluation)
    return "\n".join(lines) + "\n"


def explain_json(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "ruleset": {
            "name": evaluation.ruleset_name,
            "version": evaluation.ruleset_version,
            "hash": evaluation.ruleset_hash,
        },
        "rules": [
            {
                "id": o.rule.id,
                "version": o.rule.version,
                "status": o.status,
                "card": _card_kind(o),
                "variant": o.variant,
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
    lines = [f"{rule.id} {rule.version}: {_STATUS[outcome.status]}{_card_note(outcome)}"]
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
