"""Chart files and chart links are linted like the rest of the rules: every error at its file:line."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cds_service.engine.durable import DurableRules
from cds_service.engine.ruleset import check_rules, load_ruleset, ruleset_hash
from cds_service.yamlfile import FileProblems, Problem
from tests.conftest import ROOT, RULES
from tests.engine.rulesdir import copy_rules, edit

CHART_RULES = (
    "duplicate-therapy",
    "ferritin-rise",
    "ferritin-escalation",
    "renal-dose",
    "acute-kidney-injury",
    "infusion-build",
    "max-dose",
)

BROKEN_CHART = """\
id: broken
title: A chart with one mistake per line
description: test
lookback: {value: 14, unit: mg}
panels:
  - title: Ferritin
    analytes: [ferritin, ferritn]
    unit: U/L
  - title: ANC
    analytes: [anc]
    unit: 10*9/L
dose:
  title: Dose
  medication: aspirin
  unit: mL/h
source: test
"""


def problems_in(problems: list[Problem], path: Path) -> list[tuple[int, str, str]]:
    return [(p.line, p.severity, p.message) for p in problems if p.path == path]


def test_the_rule_pack_chart_loads_with_its_panels() -> None:
    durable = DurableRules()
    try:
        ruleset = load_ruleset(RULES, durable)
        chart = ruleset.charts["mas-course"]
        assert [p.analytes for p in chart.panels] == [
            ("ferritin",),
            ("platelets",),
            ("ast", "alt"),
            ("creatinine",),
        ]
        assert [p.scale for p in chart.panels] == ["log", "linear", "log", "linear"]
        # Thresholds named in the chart file, with the values and sources of the rule files they name.
        lines = {p.title: [(t.label, t.value, t.fact) for t in p.thresholds] for p in chart.panels}
        assert lines["Ferritin"] == [("HLH-2004 ferritin criterion", 500, None)]
        assert lines["Platelets"] == [("HLH-2004 platelet criterion (below)", 100, None)]
        assert [fact for _, _, fact in lines["Creatinine"]] == [
            "aki.creatinine_limit",
            "renal.creatinine_limit",
        ]
        assert chart.panels[0].thresholds[0].source.startswith("Henter 2007")
        assert chart.dose is not None and (chart.dose.medication, chart.dose.unit) == ("anakinra", "mg/d")
        assert chart.lookback.days == 14
        ruleset.release(durable)
    finally:
        durable.close()


def test_every_chart_file_error_is_reported_at_its_line(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    path = rules / "charts" / "broken.yaml"
    path.write_text(BROKEN_CHART)
    found = sorted(problems_in(check_rules(rules), path))
    assert [(line, severity) for line, severity, _ in found] == [
        (4, "error"),
        (7, "error"),
        (8, "error"),
        (10, "warning"),
        (14, "error"),
        (15, "error"),
    ]
    messages = [message for _, _, message in found]
    assert messages[0] == "'mg' does not convert to h (a duration is needed, e.g. d or h)"
    assert messages[1].startswith("unknown analyte 'ferritn' (known: alt, anc, ast, creatinine,")
    assert messages[2] == "ferritin (ug/L) cannot be drawn in U/L: 'ug/L' does not convert to U/L"
    assert messages[3].startswith("'anc' is derived from other results")
    assert messages[4] == "unknown medication 'aspirin' (known: anakinra, antibacterial)"
    assert messages[5] == "a daily dose cannot be drawn in mL/h: 'mg/d' does not convert to mL/h"
    # A chart with errors keeps the ruleset from loading, as a rule file would.
    durable = DurableRules()
    try:
        with pytest.raises(FileProblems):
            load_ruleset(rules, durable)
    finally:
        durable.close()


THRESHOLDS = """\
id: lines
title: Threshold lines, one mistake per line
description: test
lookback: {value: 14, unit: d}
panels:
  - title: Ferritin
    analytes: [ferritin]
    unit: ug/L
    thresholds:
      - {label: fine, parameter: hlh-2004.ferritin_high}
      - {label: no such parameter, parameter: hlh-2004.ferritin_hihg}
      - {label: no such rule, parameter: no-such-rule.x}
      - {label: not a quantity, parameter: hlh-2004.interpretation_high}
      - {label: wrong unit, parameter: max-dose.max_daily_dose}
      - {label: not a fact, fact: renal.nothing}
      - {label: a text fact, fact: aki.criterion}
source: test
"""


def test_every_threshold_error_is_reported_at_its_line(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    path = rules / "charts" / "lines.yaml"
    path.write_text(THRESHOLDS)
    found = sorted(problems_in(check_rules(rules), path))
    assert [(line, message) for line, _, message in found] == [
        (11, "no parameter 'ferritin_hihg' in rule 'hlh-2004'"),
        (12, "no parameter 'x' in rule 'no-such-rule'"),
        (13, "hlh-2004.interpretation_high is not a number with a unit"),
        (14, "max-dose.max_daily_dose (mg/d) cannot be drawn in ug/L: 'mg/d' does not convert to ug/L"),
        (15, "'renal.nothing' is not a quantity fact"),
        (16, "'aki.criterion' is not a quantity fact"),
    ]
    both = THRESHOLDS.replace(
        "{label: fine, parameter: hlh-2004.ferritin_high}",
        "{label: both, parameter: hlh-2004.ferritin_high, fact: renal.crcl}",
    )
    path.write_text(both)
    (problem,) = problems_in(check_rules(rules), path)
    assert problem[0] == 10 and "give either `parameter` (rule-id.parameter) or `fact`" in problem[2]


def test_a_threshold_naming_a_rule_file_that_does_not_load_adds_no_error(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    edit(rules / "max-dose.yaml", "title: Maximum anakinra dose", "title: [unclosed")
    problems = check_rules(rules)
    assert [p.path.name for p in problems if p.severity == "error"] == ["max-dose.yaml"]


def test_a_chart_file_that_does_not_parse_keeps_the_rules_from_loading(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    path = rules / "charts" / "mas-course.yaml"
    edit(path, "  unit: mg/d\n", "  unit: mg/d\n  colour: red\n")
    found = problems_in(check_rules(rules), path)
    assert [(severity, message) for _, severity, message in found] == [
        ("error", "dose.colour: Extra inputs are not permitted")
    ]
    assert found[0][0] == path.read_text().splitlines().index("  colour: red") + 1


def test_a_link_gives_a_url_or_a_known_chart(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    rule = rules / "ferritin-rise.yaml"
    chart = "      chart: mas-course\n"
    chart_line = rule.read_text().splitlines().index(chart.rstrip("\n")) + 1
    edit(rule, chart, chart.replace("mas-course", "mas-curse"))
    found = problems_in(check_rules(rules), rule)
    # The variant and the unknown card share the link through a YAML alias: each use is named, at the one
    # line.
    assert found == [
        (chart_line, "error", "card.links.0.chart: unknown chart 'mas-curse' (known: mas-course)"),
        (chart_line, "error", "variants.0.card.links.0.chart: unknown chart 'mas-curse' (known: mas-course)"),
        (chart_line, "error", "unknown.card.links.0.chart: unknown chart 'mas-curse' (known: mas-course)"),
    ]

    both = "Value error, give exactly one of 'url' or 'chart'"
    edit(rule, chart.replace("mas-course", "mas-curse"), chart + "      url: https://example.org/\n")
    found = problems_in(check_rules(rules), rule)
    # The error points at the link: the line of its first key.
    assert found == [
        (chart_line - 1, "error", f"card.links.0: {both}"),
        (chart_line - 1, "error", f"variants.0.card.links.0: {both}"),
        (chart_line - 1, "error", f"unknown.card.links.0: {both}"),
    ]

    edit(rule, chart + "      url: https://example.org/\n", "")
    found = problems_in(check_rules(rules), rule)
    assert [(line, message) for line, _, message in found] == [
        (chart_line - 1, f"card.links.0: {both}"),
        (chart_line - 1, f"variants.0.card.links.0: {both}"),
        (chart_line - 1, f"unknown.card.links.0: {both}"),
    ]


def test_a_chart_link_is_never_a_smart_link(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    rule = rules / "ferritin-rise.yaml"
    edit(rule, "      chart: mas-course\n", "      chart: mas-course\n      type: smart\n")
    found = problems_in(check_rules(rules), rule)
    assert [message for _, _, message in found] == [
        "card.links.0: Value error, a chart link is an absolute link; leave out 'type'",
        "variants.0.card.links.0: Value error, a chart link is an absolute link; leave out 'type'",
        "unknown.card.links.0: Value error, a chart link is an absolute link; leave out 'type'",
    ]


def test_the_ruleset_hash_covers_chart_files(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    before = ruleset_hash(rules)
    edit(rules / "charts" / "mas-course.yaml", "value: 14", "value: 21")
    assert ruleset_hash(rules) != before


def test_the_cards_about_ferritin_kidneys_and_dosing_link_to_the_chart() -> None:
    durable = DurableRules()
    try:
        ruleset = load_ruleset(RULES, durable)
        for rule_id in CHART_RULES:
            spec = ruleset.rules[rule_id].spec
            cards = [spec.card, *(v.card for v in spec.variants)]
            cards += [spec.unknown.card] if spec.unknown.card else []
            for card in cards:
                assert [link.chart for link in card.links] == ["mas-course"], (rule_id, card.summary)
        others = set(ruleset.rules) - set(CHART_RULES)
        assert not [r for r in others if ruleset.rules[r].spec.card.links]
        ruleset.release(durable)
    finally:
        durable.close()


def test_the_schema_says_a_link_has_a_url_or_a_chart() -> None:
    schema = orjson.loads((ROOT / "docs" / "rule-file.schema.json").read_bytes())
    link = schema["$defs"]["Link"]
    assert link["oneOf"] == [{"required": ["url"]}, {"required": ["chart"]}]
    assert set(link["properties"]) == {"label", "url", "chart", "type"}
