"""The incomplete-data card is the rule pack's: declared once in rules/ruleset.yaml, used by every service,
and checked by lint like any other card text."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.protocol.discovery import load_services
from tests.conftest import RULES
from tests.engine.rulesdir import copy_rules, edit
from tests.engine.test_ruleset import errors, line_of


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    return copy_rules(tmp_path)


def test_every_service_shows_the_one_card_of_the_rule_pack() -> None:
    cards = {s.id: s.incomplete_data_card for s in load_services(RULES).services.values()}
    assert len(cards) == 3
    (card,) = set(cards.values())
    assert card is not None
    assert (card.id, card.version, card.indicator) == ("incomplete-data", "1.0.0", "info")
    assert card.summary == "Could not read {sources}: some checks could not run"
    assert card.detail.endswith("instead of passing silently:\n\n{details}\n")
    assert card.source_label == "CDS service data check"


def test_a_service_file_may_not_word_its_own_card(rules_copy: Path) -> None:
    path = rules_copy / "services" / "mas-patient-view.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "incomplete_data_card:\n  id: mine\n", encoding="utf-8")
    found = errors(rules_copy)
    assert any(
        p.startswith(f"{path}:{line_of(path, 'incomplete_data_card:')}:") and "ruleset.yaml" in p
        for p in found
    ), found


def test_an_unknown_placeholder_in_the_card_is_a_lint_error_at_its_line(rules_copy: Path) -> None:
    path = rules_copy / "ruleset.yaml"
    edit(path, 'summary: "Could not read {sources}:', 'summary: "Could not read {source}:')
    found = errors(rules_copy)
    assert any(
        p.startswith(f"{path}:{line_of(path, 'Could not read {source}')}:") and "unknown placeholder" in p
        for p in found
    ), found


def test_without_the_card_no_service_has_one(rules_copy: Path) -> None:
    path = rules_copy / "ruleset.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("\n  # The card every service shows")] + "\n", encoding="utf-8")
    assert all(s.incomplete_data_card is None for s in load_services(rules_copy).services.values())
