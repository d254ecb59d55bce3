"""Every case stored beside the rules (rules/*.cases.yaml) is also a test in this suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cds_service.cases import LoadedCase, format_result, load_cases, run_cases
from cds_service.engine.durable import DurableRules
from cds_service.engine.ruleset import RuleSet, load_ruleset
from tests.conftest import RULES

CASES = load_cases(RULES)


@pytest.fixture(scope="module")
def loaded() -> Iterator[tuple[RuleSet, DurableRules]]:
    durable = DurableRules()
    ruleset = load_ruleset(RULES, durable)
    yield ruleset, durable
    ruleset.release(durable)
    durable.close()


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
async def test_rule_case(case: LoadedCase, loaded: tuple[RuleSet, DurableRules]) -> None:
    ruleset, durable = loaded
    (result,) = await run_cases(ruleset, durable, [case])
    assert result.passed, format_result(result)
