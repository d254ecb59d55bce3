"""The rule file format: the committed JSON Schema, what the models refuse, and where errors point."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from pydantic import ValidationError

from cds_service.derived import REGEN_COMMAND
from cds_service.ruleformat.rulefile import RuleFile, rule_file_schema
from cds_service.yamlfile import load_yaml, validation_problems

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DOC = ROOT / "docs" / "rule-file.schema.json"
MAX_DOSE = ROOT / "rules" / "max-dose.yaml"


def test_the_committed_schema_is_the_one_the_models_generate() -> None:
    # Byte for byte what `cds-service rules schema` prints, so the editor's schema never drifts.
    generated = orjson.dumps(rule_file_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    committed = SCHEMA_DOC.read_bytes()
    assert orjson.loads(committed) == orjson.loads(generated), (
        f"docs/rule-file.schema.json is out of date; regenerate it with `{REGEN_COMMAND}`"
    )
    assert committed == generated, (
        "docs/rule-file.schema.json is not formatted as `cds-service rules schema` prints it; regenerate it "
        f"with `{REGEN_COMMAND}`"
    )


def test_the_schema_describes_the_rule_file() -> None:
    schema = rule_file_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {
        "id",
        "version",
        "title",
        "description",
        "services",
        "speaks_when",
        "when",
        "card",
        "unknown",
    }
    # Aliases, not Python names: an editor completes `is`, `in` and `not`.
    assert "is" in schema["$defs"]["Is"]["properties"]
    assert "in" in schema["$defs"]["In"]["properties"]
    assert "not" in schema["$defs"]["Not"]["required"]


def _max_dose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MAX_DOSE.read_text(encoding="utf-8"))
    return data


def test_max_dose_is_a_valid_rule_file() -> None:
    rule = RuleFile.model_validate(_max_dose())
    assert rule.id == "max-dose"
    assert rule.parameters["max_daily_dose"].value == 2400


def test_max_dose_validates_against_the_committed_schema() -> None:
    import jsonschema

    schema = orjson.loads(SCHEMA_DOC.read_bytes())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(_max_dose())
    broken = _max_dose()
    broken["titel"] = broken.pop("title")
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(broken))


def _edited(path: tuple[str, ...], value: Any = ...) -> dict[str, Any]:
    """max-dose with the value at `path` replaced (or deleted when no value is given)."""
    data = copy.deepcopy(_max_dose())
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "loc", "message"),
    [
        (
            _edited(("parameters", "max_daily_dose", "source")),
            ("parameters", "max_daily_dose", "source"),
            "required",
        ),
        (
            _edited(("parameters", "max_daily_dose", "source"), ""),
            ("parameters", "max_daily_dose", "source"),
            "at least 1",
        ),
        (_edited(("titel",), "Maximum dose"), ("titel",), "Extra inputs"),
        (_edited(("card", "colour"), "red"), ("card", "colour"), "Extra inputs"),
        (
            _edited(("parameters", "max_daily_dose", "min"), 1),
            ("parameters", "max_daily_dose", "min"),
            "Extra inputs",
        ),
        (_edited(("unknown",), {}), ("unknown",), "exactly one of 'card' or 'silent'"),
        (
            _edited(("unknown", "silent"), "the dose card covers it"),
            ("unknown",),
            "exactly one of 'card' or 'silent'",
        ),
        (_edited(("unknown",)), ("unknown",), "required"),
        (_edited(("version",), "1.0"), ("version",), "pattern"),
        (_edited(("version",), "v1.0.0"), ("version",), "pattern"),
        (_edited(("id",), "Max-Dose"), ("id",), "pattern"),
        (_edited(("id",), "max dose"), ("id",), "pattern"),
        (_edited(("id",), "-max-dose"), ("id",), "pattern"),
        (_edited(("services",), []), ("services",), "at least 1"),
        (_edited(("card", "indicator"), "warn"), ("card", "indicator"), "'info', 'warning' or 'critical'"),
    ],
)
def test_rule_file_refuses(data: dict[str, Any], loc: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RuleFile.model_validate(data)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    assert tuple(errors[0]["loc"]) == loc
    assert message in errors[0]["msg"]


@pytest.mark.parametrize(
    "condition",
    [
        {"fact": "order.daily_dose", "op": ">"},  # neither param nor value
        {"fact": "order.daily_dose", "op": ">", "param": "max_daily_dose", "value": 1},  # both
        {"fact": "order.daily_dose", "op": "=>", "param": "max_daily_dose"},
        {"fact": "Order.daily_dose", "op": ">", "param": "max_daily_dose"},
        {"fact": "order.present", "is": "maybe"},
        {"fact": "order.route", "in": []},
        {"fact": "order.present", "is": True, "if_missing": "maybe"},
        {"all": []},
        {"not": {"missing": "order.present", "extra": 1}},
    ],
)
def test_rule_file_refuses_malformed_conditions(condition: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RuleFile.model_validate(_edited(("when",), condition))


GOOD = """\
# High ferritin (each test below breaks one line of this file)
id: ferritin-high
version: 1.0.0
title: High ferritin
description: Ferritin above the MAS threshold.
services: [mas-patient-view]
parameters:
  max_ferritin:
    value: 500
    unit: ug/L
    source: Ravelli 2016
when:
  all:
    - fact: order.present
      is: true
    - fact: ferritin.worst
      op: ">="
      param: max_ferritin
card:
  indicator: warning
  summary: Ferritin {ferritin.worst} ug/L
  source:
    label: Ravelli 2016
unknown:
  silent: the MAS card says what is missing
speaks_when: [anakinra-ordered]
"""


def _problems(tmp_path: Path, text: str) -> list[tuple[int, str]]:
    path = tmp_path / "ferritin-high.yaml"
    path.write_text(text, encoding="utf-8")
    doc = load_yaml(path)
    try:
        RuleFile.model_validate(doc.data)
    except ValidationError as exc:
        problems = validation_problems(doc, exc)
        assert all(p.path == path for p in problems)
        return [(p.line, p.message) for p in problems]
    return []


def _break(line: int, old: str, new: str) -> str:
    lines = GOOD.splitlines(keepends=True)
    assert old in lines[line - 1], (line, lines[line - 1])
    lines[line - 1] = lines[line - 1].replace(old, new)
    return "".join(lines)


def test_the_unbroken_file_is_valid(tmp_path: Path) -> None:
    assert _problems(tmp_path, GOOD) == []


@pytest.mark.parametrize(
    ("line", "old", "new", "expected_line", "message"),
    [
        (7, "parameters:", "paramters:", 7, "paramters: Extra inputs are not permitted"),
        # The condition's `op` is gone: the error points at the condition (when.all[1]), line 16.
        (17, 'op: ">="', "# op missing", 16, "when.all.1.op: Field required"),
        (17, 'op: ">="', 'op: "=>"', 17, "when.all.1.op: Input should be"),
        (16, "ferritin.worst", "Ferritin.worst", 16, "when.all.1.fact: String should match pattern"),
        (15, "is: true", "is: maybe", 15, "when.all.0.is"),
        (
            10,
            "unit: ug/L",
            "unit: [ug/L]",
            10,
            "parameters.max_ferritin.unit: Input should be a valid string",
        ),
        (11, "source:", "sauce:", 11, "parameters.max_ferritin.sauce: Extra inputs"),
        (20, "warning", "warn", 20, "card.indicator: Input should be"),
        (3, "1.0.0", '"1.0"', 3, "version: String should match pattern"),
        (25, "silent:", "silnt:", 25, "unknown.silnt: Extra inputs"),
        (25, "silent: the MAS card says what is missing", "{}", 24, "unknown: Value error, give exactly one"),
    ],
)
def test_validation_problems_point_at_the_line(
    tmp_path: Path, line: int, old: str, new: str, expected_line: int, message: str
) -> None:
    problems = _problems(tmp_path, _break(line, old, new))
    assert any(at == expected_line and text.startswith(message) for at, text in problems), problems


def test_a_missing_source_points_at_its_parameter(tmp_path: Path) -> None:
    problems = _problems(tmp_path, _break(11, "source: Ravelli 2016", "# no source"))
    assert problems == [(8, "parameters.max_ferritin.source: Field required")]


def test_two_mistakes_are_two_problems_each_on_its_own_line(tmp_path: Path) -> None:
    text = _break(7, "parameters:", "paramters:")
    text = "".join(
        "      # op missing\n" if n == 17 else line
        for n, line in enumerate(text.splitlines(keepends=True), 1)
    )
    problems = _problems(tmp_path, text)
    assert sorted(problems) == [
        (7, "paramters: Extra inputs are not permitted"),
        (16, "when.all.1.op: Field required"),
    ]
