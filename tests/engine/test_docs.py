"""docs/rules.md is generated from the rule files; it must match them, and say what each rule does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cds_service.derived import REGEN_COMMAND
from cds_service.engine.docs import condition_text, rule_pack_markdown
from cds_service.engine.durable import DurableRules
from cds_service.engine.ruleset import RuleSet, load_ruleset
from cds_service.ruleformat.rulefile import RuleFile
from tests.conftest import ROOT, RULES


@pytest.fixture(scope="module")
def ruleset() -> Iterator[RuleSet]:
    durable = DurableRules()
    loaded = load_ruleset(RULES, durable)
    yield loaded
    loaded.release(durable)
    durable.close()


def test_the_committed_rule_pack_document_is_the_generated_one(ruleset: RuleSet) -> None:
    committed = (ROOT / "docs" / "rules.md").read_text()
    assert committed == rule_pack_markdown(ruleset), (
        f"docs/rules.md is out of date; regenerate it with `{REGEN_COMMAND}`"
    )


def test_every_rule_parameter_and_source_is_documented(ruleset: RuleSet) -> None:
    text = rule_pack_markdown(ruleset)
    for rule in ruleset.rules.values():
        assert f"## {rule.id}: {rule.spec.title}" in text
        for name, parameter in rule.spec.parameters.items():
            assert f"| `{name}` |" in text
            assert " ".join(parameter.source.split())[:60] in text


def test_a_condition_reads_as_a_sentence_with_its_thresholds() -> None:
    spec = RuleFile.model_validate(
        {
            "id": "r",
            "version": "1.0.0",
            "title": "t",
            "description": "d",
            "services": ["s"],
            "speaks_when": ["anywhere"],
            "parameters": {
                "limit": {
                    "value": 3.0,
                    "unit": "mmol/L",
                    "also": [{"value": 265, "unit": "mg/dL"}],
                    "source": "x",
                }
            },
            "when": {
                "all": [
                    {"fact": "a.b", "is": True},
                    {"any": [{"fact": "c.d", "op": ">=", "param": "limit"}, {"missing": "e.f"}]},
                ]
            },
            "card": {"indicator": "info", "summary": "s", "source": {"label": "l"}},
            "unknown": {"silent": "why"},
        }
    )
    assert condition_text(spec.when, spec.parameters) == (
        "`a.b` is true and (`c.d` >= 3.0 mmol/L (265 mg/dL) (`limit`) or `e.f` is missing)"
    )
