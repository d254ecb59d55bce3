"""One voice per response: which of the cards the rules ask for a response actually shows.

Configured in rules/ (never here): scopes in ruleset.yaml and each rule's `speaks_when` / `signal`, the
`supersedes` of card templates, their `data_needed`, and the ruleset's `response.data_needed` merge. The
steps, in order:

1. Service scope: a service with `speaks_when` answers with no card at all unless that scope holds.
2. Rule scope: a rule's card is shown only while one of its `speaks_when` scopes holds, or (its card when
   it fired) while its `signal` holds.
3. Supersession: a shown card hides the cards of the rules it `supersedes` (effect hide), or withdraws
   their isRecommended (effect not-recommended).
4. Merge: when at least `min_cards` shown cards ask for data, they become one card.
5. Suggestions: one response never offers the same suggestion twice (the same test, the same order); the
   card with the higher indicator keeps it.

Every decision is kept with its reason, for `rules explain` and the playground.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from cds_service.facts.named import Fact
from cds_service.ruleformat.actions import ACTIONS
from cds_service.ruleformat.rulefile import DataNeededMerge, ResponseSettings, SuggestionTemplate

if TYPE_CHECKING:  # the engine package imports this module
    from cds_service.engine import Finding, Outcome

Fate = Literal["shown", "service-silent", "out-of-scope", "suppressed", "merged"]
_SEVERITY = {"critical": 0, "warning": 1, "info": 2}


@dataclasses.dataclass(frozen=True)
class Decision:
    """What became of one rule's card."""

    rule_id: str
    fate: Fate
    why: str  # for a person: "suppressed by renal-dose: ...", "merged into data-needed"
    by: str | None = None  # the superseding rule, the merge's id, or the scope that was missing
    not_recommended_by: str | None = None  # a rule whose card withdrew this card's isRecommended


@dataclasses.dataclass(frozen=True)
class DroppedSuggestion:
    rule_id: str
    label: str  # the template's label (unfilled)
    kept_by: str  # the rule whose card keeps the same suggestion


@dataclasses.dataclass(frozen=True)
class ResponsePlan:
    speaks: bool  # False: the service's own scope does not hold, and the response is empty
    silence: str | None  # why, when it does not speak
    decisions: dict[str, Decision]
    shown: tuple[Finding, ...]  # the findings shown as their own card, in response order
    merged: tuple[Finding, ...]  # the findings merged into one card (empty: no merge)
    merge: DataNeededMerge | None
    # (rule id, suggestion index in its template) -> the rule whose card offers the same suggestion
    dropped: dict[tuple[str, int], str]
    # ruleset.yaml `response.actions`: how the suggestion builders describe their actions.
    actions: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def decision(self, rule_id: str) -> Decision | None:
        return self.decisions.get(rule_id)

    def dropped_suggestions(self) -> list[DroppedSuggestion]:
        templates = {f.rule_id: f.template for f in (*self.shown, *self.merged)}
        return [
            DroppedSuggestion(rule, templates[rule].suggestions[index].label, kept)
            for (rule, index), kept in self.dropped.items()
            if rule in templates
        ]


def plan_response(
    findings: Sequence[Finding],
    outcomes: Sequence[Outcome],
    scopes: Mapping[str, bool],
    service_scope: str | None,
    settings: ResponseSettings,
    facts: Mapping[str, Fact],
) -> ResponsePlan:
    """What the response shows of `findings` (the cards the rules ask for), and why."""
    decisions: dict[str, Decision] = {}
    if service_scope is not None and not scopes.get(service_scope, False):
        why = f"the service speaks only when {service_scope} holds"
        for finding in findings:
            decisions[finding.rule_id] = Decision(finding.rule_id, "service-silent", why, service_scope)
        return ResponsePlan(False, why, decisions, (), (), None, {}, settings.actions)
    signals = {o.rule.id: o.signal for o in outcomes}
    specs = {o.rule.id: o.rule.spec for o in outcomes}
    in_scope: list[Finding] = []
    for finding in findings:
        spec = specs[finding.rule_id]
        held = [name for name in spec.speaks_when if scopes.get(name, False)]
        if held or finding.status == "fired" and signals.get(finding.rule_id, False):
            in_scope.append(finding)
        else:
            names = " or ".join(spec.speaks_when)
            signal = "; its signal does not hold" if spec.signal is not None else ""
            decisions[finding.rule_id] = Decision(
                finding.rule_id, "out-of-scope", f"out of scope: speaks when {names}{signal}", names
            )
    # Supersession: declared on the card that wins; applied from every card in scope.
    hidden: dict[str, tuple[str, str]] = {}
    unrecommended: dict[str, str] = {}
    by_rule = {f.rule_id: f for f in in_scope}
    for finding in in_scope:
        for entry in finding.template.supersedes:
            other = by_rule.get(entry.rule)
            if other is None or other.status not in entry.outcomes:
                continue
            if entry.effect == "hide":
                hidden.setdefault(entry.rule, (finding.rule_id, entry.because))
            else:
                unrecommended.setdefault(entry.rule, finding.rule_id)
    visible: list[Finding] = []
    for finding in in_scope:
        if finding.rule_id in hidden:
            winner, because = hidden[finding.rule_id]
            decisions[finding.rule_id] = Decision(
                finding.rule_id, "suppressed", f"suppressed by {winner}: {because}", winner
            )
        else:
            visible.append(finding)
    merge = settings.data_needed
    asking = [f for f in visible if f.template.data_needed is not None]
    merged: list[Finding] = asking if merge is not None and len(asking) >= merge.min_cards else []
    for finding in visible:
        by = unrecommended.get(finding.rule_id)
        if finding in merged:
            assert merge is not None
            decisions[finding.rule_id] = Decision(
                finding.rule_id, "merged", f"merged into {merge.id}", merge.id, by
            )
        else:
            decisions[finding.rule_id] = Decision(finding.rule_id, "shown", "shown", None, by)
    shown = tuple(f for f in visible if f not in merged)
    return ResponsePlan(
        True,
        None,
        decisions,
        shown,
        tuple(merged),
        merge if merged else None,
        _duplicates(shown, tuple(merged), facts),
        settings.actions,
    )


def _duplicates(
    shown: Sequence[Finding], merged: Sequence[Finding], facts: Mapping[str, Fact]
) -> dict[tuple[str, int], str]:
    """Suggestions offered by an earlier card (the more severe first; the merged card counts as info)."""
    cards: list[tuple[int, int, Finding]] = [
        (_SEVERITY[f.template.indicator], index, f) for index, f in enumerate(shown)
    ]
    cards += [(_SEVERITY["info"], len(shown) + index, f) for index, f in enumerate(merged)]
    kept: dict[tuple[Any, ...], tuple[str, int, bool, int]] = {}
    dropped: dict[tuple[str, int], str] = {}
    for severity, _, finding in sorted(cards, key=lambda item: (item[0], item[1])):
        for index, suggestion in enumerate(finding.template.suggestions):
            key = suggestion_key(suggestion, facts)
            if key is None:
                continue
            held = kept.get(key)
            if held is None:
                kept[key] = (finding.rule_id, index, suggestion.isRecommended, severity)
            elif suggestion.isRecommended and not held[2] and held[3] == severity:
                # The same test, recommended by this card and not by the other of the same indicator: the
                # recommendation is kept with it.
                dropped[(held[0], held[1])] = finding.rule_id
                kept[key] = (finding.rule_id, index, True, severity)
            else:
                dropped[(finding.rule_id, index)] = held[0]
    return dropped


def suggestion_key(suggestion: SuggestionTemplate, facts: Mapping[str, Fact]) -> tuple[Any, ...] | None:
    action = ACTIONS.get(suggestion.action)
    return action.key(suggestion.arguments, facts) if action is not None else None
