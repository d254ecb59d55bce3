"""`cds-service rules lint`: the rule files' checks and their test cases', in one list of file:line."""

from __future__ import annotations

from pathlib import Path

from cds_service.cases import case_problems
from cds_service.engine.ruleset import check_rule_pack
from cds_service.yamlfile import Problem


def lint_rules(rules_dir: Path) -> list[Problem]:
    """Every problem with the rules directory: rule, service, fact and chart files (ruleset.py), then
    the case files (cases.py), each checked against the names the rule pack has."""
    problems, names = check_rule_pack(rules_dir)
    return problems + case_problems(rules_dir, names)
