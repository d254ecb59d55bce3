"""The clinical rule pack as the issue names it: its rules, where each runs, and cases on both sides."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from cds_service.cases import load_cases
from cds_service.engine.citations import citation_problems
from cds_service.engine.durable import DurableRules
from cds_service.engine.ruleset import load_ruleset
from cds_service.facts.catalog import load_catalog
from cds_service.protocol.discovery import load_services
from tests.conftest import RULES

ORDER_RULES = {
    "infusion-build",
    "max-dose",
    "renal-dose",
    "ferritin-escalation",
    "high-dose-infection-watch",
    "neutrophil-baseline",
}
PATIENT_RULES = {
    "duplicate-therapy",
    "hlh-2004",
    "ferritin-rise",
    "acute-kidney-injury",
    "gram-negative-bacteremia",
    "neutropenia",
}
CASES = load_cases(RULES)


def test_the_rule_pack_has_every_rule_and_services_run_the_right_ones() -> None:
    durable = DurableRules()
    try:
        ruleset = load_ruleset(RULES, durable)
        assert set(ruleset.rules) == ORDER_RULES | PATIENT_RULES
        run = {sid: {r.id for r in rules.rules} for sid, rules in ruleset.by_service.items()}
        # Signing (or selecting) the order also shows what the chart says at that moment.
        assert run["anakinra-order-sign"] == ORDER_RULES | PATIENT_RULES
        assert run["anakinra-order-select"] == ORDER_RULES | PATIENT_RULES
        assert run["mas-patient-view"] == PATIENT_RULES
        ruleset.release(durable)
    finally:
        durable.close()


@pytest.mark.parametrize("rule_id", sorted(ORDER_RULES | PATIENT_RULES))
def test_every_rule_has_cases_where_it_fires_and_where_it_does_not(rule_id: str) -> None:
    own = [c.case for c in CASES if c.path.name == f"{rule_id}.cases.yaml"]
    fires = [c for c in own if any(card.rule == rule_id for card in c.expect.cards)]
    quiet = [c for c in own if rule_id in c.expect.no_cards or c.expect.outcomes.get(rule_id) == "not-fired"]
    assert len(own) >= 5, f"{rule_id}: {len(own)} cases"
    assert fires, f"{rule_id}: no case where it fires"
    assert quiet, f"{rule_id}: no case where it stays quiet"


def test_every_file_of_the_rule_pack_cites_what_a_clone_has() -> None:
    # `rules lint` checks the files that make cards; the test cases and anything else shipped beside them
    # must not send a reader to the team's notes either.
    files = sorted(path for path in RULES.rglob("*") if path.is_file())
    assert [str(problem) for problem in citation_problems(files)] == []


def test_every_service_prefetches_every_observation_code_the_facts_read_and_the_specimens() -> None:
    catalog = load_catalog(RULES)
    wanted = {code for analyte in catalog.analytes.values() for code in analyte.codes}
    wanted |= {
        code
        for finding in catalog.microbiology.findings.values()
        for result in finding.results
        for code in result.codes
    }
    for service in load_services(RULES):
        queries = [item.query for item in service.prefetch.values()]
        observations = [q for q in queries if q.startswith("Observation?")]
        assert len(observations) == 1, service.id
        codes = {
            code
            for name, value in parse_qsl(observations[0].partition("?")[2])
            if name == "code"
            for code in value.split(",")
        }
        assert wanted <= codes, (service.id, sorted(wanted - codes))
        assert "Specimen?patient={{context.patientId}}" in queries, service.id
