"""A finding's suggestions as card JSON: the one way both a rule's own card and the merged card build them."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from cds_service.ruleformat.actions import ACTIONS, SuggestionContext
from cds_service.ruleformat.text import fill

if TYPE_CHECKING:
    from cds_service.engine import Evaluation, Finding


def suggestions(
    finding: Finding,
    evaluation: Evaluation,
    context: SuggestionContext,
    skip: Collection[int] = (),
    recommend: bool = True,
) -> list[dict[str, Any]]:
    """The suggestions of `finding`'s card template but those at the indexes in `skip` (the response step
    dropped them) and those whose action has nothing to build. `recommend` False: none is marked
    isRecommended (another card of the response states a lower ceiling)."""
    built = []
    for index, suggestion in enumerate(finding.template.suggestions):
        if index in skip:
            continue
        actions = ACTIONS[suggestion.action].build(suggestion.arguments, context)
        if actions is None:
            continue
        item: dict[str, Any] = {
            "label": fill(
                suggestion.label,
                evaluation.facts,
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
        built.append(item)
    return built
