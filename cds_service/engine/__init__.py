"""The rules engine behind one interface: Facts in, an Evaluation (every rule's outcome) out.

durable-rules is touched only by engine/durable.py, so the engine could be replaced without touching
rule files, facts or cards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

from cds_service.engine.durable import DurableRules
from cds_service.engine.response import ResponsePlan, plan_response
from cds_service.engine.ruleset import SCOPE_PREFIX, Rule, RuleSet
from cds_service.facts.named import Fact, FactSpec
from cds_service.facts.units import Units
from cds_service.protocol.discovery import ServiceDefinition
from cds_service.ruleformat.rulefile import CardTemplate, Parameter

__all__ = ["Evaluation", "Finding", "Outcome", "RuleEngine", "Status"]

Status = Literal["fired", "not-fired", "unknown"]


@dataclasses.dataclass(frozen=True)
class Outcome:
    rule: Rule
    status: Status
    variant: int | None = None  # which card variant applies when the rule fired (None: the main card)
    signal: bool = False  # the rule's `signal` certainly holds (its card may speak outside its scopes)

    def facts_read(self, facts: Mapping[str, Fact]) -> list[Fact]:
        """The facts the rule's condition and card text read, for explain."""
        return [facts[name] for name in self.rule.reads if name in facts]


@dataclasses.dataclass(frozen=True)
class Finding:
    """A card a rule asks for: its template, and what fills it."""

    rule_id: str
    rule_version: str
    status: Status
    template: CardTemplate
    parameters: Mapping[str, Parameter]
    missing: str  # why the facts this rule needed could not be computed (for unknown cards)
    thresholds: Mapping[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)
    missing_reasons: tuple[str, ...] = ()  # `missing`, one reason each


@dataclasses.dataclass(frozen=True)
class Evaluation:
    ruleset_name: str
    ruleset_version: str
    ruleset_hash: str
    facts: Mapping[str, Fact]
    outcomes: tuple[Outcome, ...]
    scopes: Mapping[str, bool] = dataclasses.field(default_factory=dict)  # ruleset.yaml scopes that hold
    # What the response shows of the findings, and why (engine/response.py); None for a bare evaluation.
    response: ResponsePlan | None = None
    units: Units | None = None  # how card text writes units (rules/facts/units.yaml display)
    # The fact catalog's specs: the widths a summary's placeholders are held to (ruleformat/text.py fill).
    specs: Mapping[str, FactSpec] = dataclasses.field(default_factory=dict)

    def unit_text(self, code: str | None) -> str:
        if self.units is None:
            return code or ""
        return self.units.text(code)

    def findings(self) -> list[Finding]:
        findings = []
        for outcome in self.outcomes:
            spec = outcome.rule.spec
            if outcome.status == "fired":
                template = spec.card if outcome.variant is None else spec.variants[outcome.variant].card
            elif outcome.status == "unknown" and spec.unknown.card is not None:
                template = spec.unknown.card
            else:
                continue
            findings.append(
                Finding(
                    spec.id,
                    spec.version,
                    outcome.status,
                    template,
                    spec.parameters,
                    self.missing_for(outcome),
                    outcome.rule.thresholds,
                    self.missing_reasons(outcome),
                )
            )
        return findings

    def missing_for(self, outcome: Outcome) -> str:
        """Why the facts the condition needed could not be computed."""
        return "; ".join(self.missing_reasons(outcome))

    def missing_reasons(self, outcome: Outcome) -> tuple[str, ...]:
        # Facts read only as "false when missing" never leave the condition undecided: not named.
        names = outcome.rule.undecided_by or outcome.rule.compiled.reads
        needed = [self.facts[name] for name in names if name in self.facts]
        return tuple(dict.fromkeys(f.missing for f in needed if f.value is None and f.missing))


class RuleEngine:
    """Evaluates the current ruleset. `swap` replaces it atomically: a request takes the ruleset once,
    at its start, and uses that one to the end."""

    def __init__(self, ruleset: RuleSet, durable: DurableRules) -> None:
        self._ruleset = ruleset
        self.durable = durable

    @property
    def ruleset(self) -> RuleSet:
        return self._ruleset

    def swap(self, ruleset: RuleSet) -> RuleSet:
        """Serve `ruleset` from now on. The old one is returned, not released: requests that started
        with it may still be fetching data; the caller releases it once they are done."""
        old, self._ruleset = self._ruleset, ruleset
        return old

    def evaluate(
        self, service: ServiceDefinition, derived: Mapping[str, Fact], ruleset: RuleSet | None = None
    ) -> Evaluation:
        """The service's rules over the derived facts (pipeline.derive_facts), with `ruleset` (the one the
        request started with) or the current one, and the response-level step the rule files declare
        (which findings are shown, merged or superseded).

        Blocks while durable-rules runs on its own thread: call it from the compute thread (pipeline.py),
        never on the event loop."""
        ruleset = ruleset or self._ruleset
        service_rules = ruleset.by_service.get(service.id)
        outcomes: list[Outcome] = []
        named = derived
        scopes: dict[str, bool] = {}
        if service_rules is not None and service_rules.rules:
            flat = ruleset.fields.flatten(named)
            fired = self.durable.evaluate(service_rules.engine_rules, flat)
            scopes = {
                name: scope.true is True or f"{SCOPE_PREFIX}{name}" in fired
                for name, scope in ruleset.scopes.items()
            }
            for rule in service_rules.rules:
                status = _status(rule, fired)
                outcomes.append(
                    Outcome(
                        rule,
                        status,
                        _variant(rule, fired) if status == "fired" else None,
                        rule.signal is not None and (rule.signal.true is True or f"{rule.id}|S" in fired),
                    )
                )
        else:
            scopes = {name: False for name in ruleset.scopes}
        evaluation = Evaluation(
            ruleset.name,
            ruleset.version,
            ruleset.hash,
            named,
            tuple(outcomes),
            scopes=scopes,
            units=ruleset.catalog.units,
            specs=ruleset.catalog.specs,
        )
        plan = plan_response(
            evaluation.findings(), evaluation.outcomes, scopes, service.speaks_when, ruleset.response, named
        )
        return dataclasses.replace(evaluation, response=plan)

    def close(self) -> None:
        self._ruleset.release(self.durable)
        self.durable.close()


def _variant(rule: Rule, fired: frozenset[str]) -> int | None:
    for index, variant in enumerate(rule.variants):
        if variant.true is True or f"{rule.id}|V{index}" in fired:
            return index
    return None


def _status(rule: Rule, fired: frozenset[str]) -> Status:
    true = rule.compiled.true is True or f"{rule.id}|T" in fired
    false = rule.compiled.false is True or f"{rule.id}|F" in fired
    if true and false:
        # Both sides cannot hold for one set of facts; if they do, the compiler is wrong. Say so
        # rather than pick one.
        raise RuntimeError(f"rule {rule.id} evaluated both true and false")
    if true:
        return "fired"
    return "not-fired" if false else "unknown"
