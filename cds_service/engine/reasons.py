"""The override reasons the rule files offer on their cards, by rule and code: what the feedback report
shows for a reason an EHR sends as a bare code (the CDS Hooks sandbox sends `reason.code` alone)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import ValidationError

from cds_service.engine.ruleset import RULESET_FILE, rule_files
from cds_service.ruleformat.rulefile import OverrideReason, RuleFile, RulesetFile
from cds_service.yamlfile import FileProblems, load_yaml

Offered = dict[tuple[str, str], tuple[str | None, str]]


def offered_reasons(specs: Iterable[RuleFile], merged: Sequence[OverrideReason] = ()) -> Offered:
    """(rule id, code) -> (system, display) of every overrideReason on a rule's cards; the first card that
    offers a code (main card, then variants, then the could-not-evaluate card) gives its display. `merged`:
    the reasons of the card that merges the cards asking for data (ruleset.yaml), offered for each rule
    with such a card, since feedback on a merged card counts for each rule it speaks for."""
    offered: Offered = {}
    for spec in specs:
        cards = [spec.card, *(variant.card for variant in spec.variants), spec.unknown.card]
        for card in cards:
            for reason in card.overrideReasons if card is not None else ():
                offered.setdefault((spec.id, reason.code), (reason.system, reason.display))
        if any(card is not None and card.data_needed is not None for card in cards):
            for reason in merged:
                offered.setdefault((spec.id, reason.code), (reason.system, reason.display))
    return offered


def offered_reasons_in(rules_dir: Path) -> Offered:
    """offered_reasons of the rule files in `rules_dir`, without compiling them: the report reads what the
    files say even when one of them does not lint (that one offers nothing)."""
    specs = []
    for path in rule_files(rules_dir):
        try:
            specs.append(RuleFile.model_validate(load_yaml(path).data))
        except (FileProblems, ValidationError):
            continue
    merged: Sequence[OverrideReason] = ()
    try:
        settings = RulesetFile.model_validate(load_yaml(rules_dir / RULESET_FILE).data)
        if settings.response.data_needed is not None:
            merged = settings.response.data_needed.overrideReasons
    except (FileProblems, ValidationError):
        pass
    return offered_reasons(specs, merged)
