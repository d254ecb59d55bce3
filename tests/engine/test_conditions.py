"""Tri-state (Kleene) rule conditions, compiled and run end to end through the real durable-rules engine.

Every status here comes from durable-rules evaluating the two compiled expressions ("certainly true",
"certainly false") over facts flattened by the same FieldMap, exactly as the service does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import TypeAdapter

from cds_service.engine.conditions import Compiled, CompileError, FieldMap, compile_condition
from cds_service.engine.durable import DurableRules
from cds_service.facts.named import Fact, FactSpec
from cds_service.ruleformat.rulefile import Condition, Parameter

SPECS = {
    spec.name: spec
    for spec in (
        FactSpec("ferritin.worst", "quantity", "ug/L", "highest ferritin in the window"),
        FactSpec("triglycerides.worst", "quantity", "mg/dL", "highest fasting triglycerides"),
        FactSpec("order.route", "text", None, "route of the drafted order", ("iv", "sc", "other")),
        FactSpec("order.present", "boolean", None, "an anakinra order is in the draft"),
        FactSpec("ferritin.count", "count", None, "ferritin results in the window"),
    )
}

PARAMETERS = {
    name: Parameter.model_validate(data)
    for name, data in {
        "max_ferritin": {"value": 500, "unit": "ug/L", "source": "test"},
        "tg_high": {
            "value": 265,
            "unit": "mg/dL",
            "also": [{"value": 3.0, "unit": "mmol/L"}],
            "source": "test",
        },
        "tg_high_mmol": {"value": 3.0, "unit": "mmol/L", "source": "test"},
        "ferritin_in_mmol": {"value": 5, "unit": "mmol/L", "source": "test"},
        "ferritin_bad_also": {
            "value": 500,
            "unit": "ug/L",
            "also": [{"value": 1.0, "unit": "mmol/L"}],
            "source": "test",
        },
        "ferritin_no_unit": {"value": 500, "source": "test"},
        "min_results": {"value": 2, "source": "test"},
        "min_results_in_mg": {"value": 2, "unit": "mg", "source": "test"},
        "route_word": {"value": "iv", "source": "test"},
        "route_not_a_value": {"value": "IV", "source": "test"},
        "flag": {"value": True, "source": "test"},
    }.items()
}

# A test double for the UCUM converter: a few factors, keyed by analyte so that mmol/L converts only
# where a molar mass is known (as the real converter does).
FACTORS = {
    ("triglycerides", "mmol/L", "mg/dL"): 88.57,
    ("triglycerides", "g/L", "mg/dL"): 100.0,
    ("ferritin", "ng/mL", "ug/L"): 1.0,
}


def convert(value: float, from_unit: str, to_unit: str, fact_name: str) -> float:
    if from_unit == to_unit:
        return value
    return value * FACTORS[(fact_name.split(".")[0], from_unit, to_unit)]


_CONDITION: TypeAdapter[Any] = TypeAdapter(Condition)
_ENGINE: list[DurableRules] = []


@pytest.fixture(scope="module", autouse=True)
def engine() -> Iterator[DurableRules]:
    rules = DurableRules()
    _ENGINE.append(rules)
    yield rules
    _ENGINE.clear()
    rules.close()


def compile_(condition: Any, fields: FieldMap | None = None) -> Compiled:
    node = _CONDITION.validate_python(condition)
    return compile_condition(node, SPECS, PARAMETERS, fields or FieldMap(), convert)


def status(condition: Any, facts: dict[str, Fact]) -> str:
    """fired / not-fired / unknown, as the real engine decides it."""
    fields = FieldMap()
    compiled = compile_(condition, fields)
    sides = {"r|T": compiled.true, "r|F": compiled.false}
    rules = _ENGINE[0]
    ruleset = rules.compile({name: expr for name, expr in sides.items() if not isinstance(expr, bool)})
    try:
        satisfied = rules.evaluate(ruleset, fields.flatten(facts))
    finally:
        rules.release(ruleset)
    true = compiled.true is True or "r|T" in satisfied
    false = compiled.false is True or "r|F" in satisfied
    assert not (true and false), f"both sides hold for {facts}: {compiled}"
    return "fired" if true else "not-fired" if false else "unknown"


def facts(*items: Fact) -> dict[str, Fact]:
    return {fact.name: fact for fact in items}


def ferritin(value: float | None, comparator: str | None = None) -> dict[str, Fact]:
    return facts(Fact("ferritin.worst", value, "ug/L", comparator=comparator))


def triglycerides(
    value: float | None, native_value: float | None = None, native_unit: str | None = None
) -> dict[str, Fact]:
    return facts(
        Fact("triglycerides.worst", value, "mg/dL", native_value=native_value, native_unit=native_unit)
    )


def ferritin_vs(op: str, **extra: Any) -> dict[str, Any]:
    return {"fact": "ferritin.worst", "op": op, "param": "max_ferritin", **extra}


# --- comparisons on quantities -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        (">", 500.1, "fired"),
        (">", 500, "not-fired"),
        (">", 499.9, "not-fired"),
        (">=", 500, "fired"),
        (">=", 500.0, "fired"),
        (">=", 499.9, "not-fired"),
        (">=", 40000, "fired"),
        ("<", 499.9, "fired"),
        ("<", 500, "not-fired"),
        ("<=", 500, "fired"),
        ("<=", 500.1, "not-fired"),
        ("==", 500, "fired"),
        ("==", 500.0, "fired"),
        ("==", 499.9, "not-fired"),
        ("!=", 499.9, "fired"),
        ("!=", 500, "not-fired"),
    ],
)
def test_quantity_comparisons_including_the_exact_boundary(op: str, value: float, expected: str) -> None:
    assert status(ferritin_vs(op), ferritin(value)) == expected


@pytest.mark.parametrize("op", [">", ">=", "<", "<=", "==", "!="])
def test_a_missing_fact_makes_a_comparison_unknown(op: str) -> None:
    assert status(ferritin_vs(op), {}) == "unknown"
    assert status(ferritin_vs(op), ferritin(None)) == "unknown"
    # Another fact being present does not help.
    assert status(ferritin_vs(op), triglycerides(900.0)) == "unknown"


def test_if_missing_false_and_true_decide_a_missing_fact_and_leave_present_ones_alone() -> None:
    assert status(ferritin_vs(">=", if_missing="false"), {}) == "not-fired"
    assert status(ferritin_vs(">=", if_missing="true"), {}) == "fired"
    assert status(ferritin_vs(">=", if_missing="false"), ferritin(None)) == "not-fired"
    assert status(ferritin_vs(">=", if_missing="true"), ferritin(None)) == "fired"
    assert status(ferritin_vs(">=", if_missing="false"), ferritin(600)) == "fired"
    assert status(ferritin_vs(">=", if_missing="true"), ferritin(100)) == "not-fired"
    # A censored value that cannot decide stays unknown: if_missing is about missing facts only.
    assert status(ferritin_vs(">=", if_missing="true"), ferritin(100, ">")) == "unknown"


# --- Kleene logic --------------------------------------------------------------------------------

# Two independent leaves, each set to fired (T), not-fired (F) or unknown (U) by its own fact.
A = ferritin_vs(">=")
B = {"fact": "triglycerides.worst", "op": ">=", "param": "tg_high"}
A_FACTS = {"T": ferritin(600), "F": ferritin(100), "U": {}}
B_FACTS = {"T": triglycerides(300.0), "F": triglycerides(100.0), "U": {}}
NAME = {"T": "fired", "F": "not-fired", "U": "unknown"}

AND = {
    ("T", "T"): "T", ("T", "F"): "F", ("T", "U"): "U",
    ("F", "T"): "F", ("F", "F"): "F", ("F", "U"): "F",
    ("U", "T"): "U", ("U", "F"): "F", ("U", "U"): "U",
}  # fmt: skip
OR = {
    ("T", "T"): "T", ("T", "F"): "T", ("T", "U"): "T",
    ("F", "T"): "T", ("F", "F"): "F", ("F", "U"): "U",
    ("U", "T"): "T", ("U", "F"): "U", ("U", "U"): "U",
}  # fmt: skip
NOT = {"T": "F", "F": "T", "U": "U"}


def test_the_leaves_are_what_the_truth_tables_assume() -> None:
    for value, fact in A_FACTS.items():
        assert status(A, fact) == NAME[value]
    for value, fact in B_FACTS.items():
        assert status(B, fact) == NAME[value]


@pytest.mark.parametrize(("a", "b"), list(AND))
def test_all_is_kleene_and(a: str, b: str) -> None:
    assert status({"all": [A, B]}, {**A_FACTS[a], **B_FACTS[b]}) == NAME[AND[a, b]]


@pytest.mark.parametrize(("a", "b"), list(OR))
def test_any_is_kleene_or(a: str, b: str) -> None:
    assert status({"any": [A, B]}, {**A_FACTS[a], **B_FACTS[b]}) == NAME[OR[a, b]]


@pytest.mark.parametrize("a", list(NOT))
def test_not_is_kleene_not(a: str) -> None:
    assert status({"not": A}, A_FACTS[a]) == NAME[NOT[a]]


@pytest.mark.parametrize(("a", "b"), list(AND))
def test_nested_not_all_is_any_not(a: str, b: str) -> None:
    # De Morgan holds in Kleene logic: not(all[a, b]) == any[not a, not b].
    given = {**A_FACTS[a], **B_FACTS[b]}
    expected = NAME[NOT[AND[a, b]]]
    assert status({"not": {"all": [A, B]}}, given) == expected
    assert status({"any": [{"not": A}, {"not": B}]}, given) == expected


def test_single_child_all_and_any_are_the_child() -> None:
    for value, fact in A_FACTS.items():
        assert status({"all": [A]}, fact) == NAME[value]
        assert status({"any": [A]}, fact) == NAME[value]


# --- missing / present ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "missing", "present"),
    [
        ({}, "fired", "not-fired"),
        (ferritin(None), "fired", "not-fired"),
        (ferritin(600), "not-fired", "fired"),
        (ferritin(40000, ">"), "not-fired", "fired"),
        (triglycerides(100.0), "fired", "not-fired"),
    ],
)
def test_missing_and_present_are_never_unknown(given: dict[str, Fact], missing: str, present: str) -> None:
    assert status({"missing": "ferritin.worst"}, given) == missing
    assert status({"present": "ferritin.worst"}, given) == present
    assert status({"not": {"missing": "ferritin.worst"}}, given) == present


def test_missing_rescues_an_unknown_comparison_in_any() -> None:
    condition = {"any": [{"missing": "ferritin.worst"}, A]}
    assert status(condition, {}) == "fired"
    assert status(condition, ferritin(600)) == "fired"
    assert status(condition, ferritin(100)) == "not-fired"


# --- booleans, text, counts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("is_", "value", "expected"),
    [
        (True, True, "fired"),
        (True, False, "not-fired"),
        (False, False, "fired"),
        (False, True, "not-fired"),
        (True, None, "unknown"),
        (False, None, "unknown"),
    ],
)
def test_is_on_a_boolean(is_: bool, value: bool | None, expected: str) -> None:
    assert status({"fact": "order.present", "is": is_}, facts(Fact("order.present", value))) == expected


def test_is_honours_if_missing() -> None:
    assert status({"fact": "order.present", "is": True, "if_missing": "false"}, {}) == "not-fired"
    assert status({"fact": "order.present", "is": True, "if_missing": "true"}, {}) == "fired"


def route(value: str | None) -> dict[str, Fact]:
    return facts(Fact("order.route", value))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("iv", "fired"), ("sc", "fired"), ("other", "not-fired"), (None, "unknown")],
)
def test_in_on_text(value: str | None, expected: str) -> None:
    assert status({"fact": "order.route", "in": ["iv", "sc"]}, route(value)) == expected


def test_in_honours_if_missing() -> None:
    assert status({"fact": "order.route", "in": ["iv"], "if_missing": "false"}, {}) == "not-fired"
    assert status({"fact": "order.route", "in": ["iv"], "if_missing": "true"}, {}) == "fired"


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("==", "iv", "fired"),
        ("==", "sc", "not-fired"),
        ("==", None, "unknown"),
        ("!=", "iv", "not-fired"),
        ("!=", "sc", "fired"),
        ("!=", None, "unknown"),
    ],
)
def test_equality_on_text(op: str, value: str | None, expected: str) -> None:
    assert status({"fact": "order.route", "op": op, "value": "iv"}, route(value)) == expected


def test_text_compared_with_a_text_parameter() -> None:
    condition = {"fact": "order.route", "op": "==", "param": "route_word"}
    assert status(condition, route("iv")) == "fired"
    assert status(condition, route("sc")) == "not-fired"
    assert status(condition, {}) == "unknown"


def count(value: int | None) -> dict[str, Fact]:
    return facts(Fact("ferritin.count", value))


@pytest.mark.parametrize(
    ("op", "literal", "value", "expected"),
    [
        (">=", 2, 2, "fired"),
        (">=", 2, 1, "not-fired"),
        (">=", 2, 0, "not-fired"),
        (">", 2, 2, "not-fired"),
        ("<", 1, 0, "fired"),
        ("<=", 1, 2, "not-fired"),
        ("==", 0, 0, "fired"),
        ("==", 0, 3, "not-fired"),
        ("!=", 0, 3, "fired"),
        (">=", 2, None, "unknown"),
    ],
)
def test_count_against_a_literal(op: str, literal: int, value: int | None, expected: str) -> None:
    assert status({"fact": "ferritin.count", "op": op, "value": literal}, count(value)) == expected


def test_count_against_a_unitless_parameter() -> None:
    condition = {"fact": "ferritin.count", "op": ">=", "param": "min_results"}
    assert status(condition, count(2)) == "fired"
    assert status(condition, count(1)) == "not-fired"
    assert status(condition, {}) == "unknown"


# --- censored values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("comparator", "value", "expected"),
    [
        (">", 40000, "fired"),  # more than 40000 is certainly >= 500
        (">=", 500, "fired"),  # at least 500 is >= 500
        ("<", 5, "not-fired"),  # less than 5 is certainly not >= 500
        ("<=", 499, "not-fired"),
        (">", 100, "unknown"),  # more than 100 may or may not reach 500
        ("<", 600, "unknown"),  # less than 600 may or may not reach 500
        ("<=", 500, "unknown"),
    ],
)
def test_censored_values_decide_only_when_the_bound_does(
    comparator: str, value: float, expected: str
) -> None:
    assert status(ferritin_vs(">="), ferritin(value, comparator)) == expected


@pytest.mark.parametrize(("comparator", "value"), [(">", 500), ("<", 500), (">", 40000), ("<", 5)])
def test_a_censored_value_never_decides_equality(comparator: str, value: float) -> None:
    assert status(ferritin_vs("=="), ferritin(value, comparator)) == "unknown"
    assert status(ferritin_vs("!="), ferritin(value, comparator)) == "unknown"


def test_censored_values_mirror_for_less_than() -> None:
    assert status(ferritin_vs("<"), ferritin(5, "<")) == "fired"
    assert status(ferritin_vs("<"), ferritin(40000, ">")) == "not-fired"
    assert status(ferritin_vs("<"), ferritin(600, "<")) == "unknown"


# --- native-unit comparison ----------------------------------------------------------------------

TG_HIGH = {"fact": "triglycerides.worst", "op": ">=", "param": "tg_high"}


def test_a_value_reported_in_the_native_unit_is_compared_with_the_native_threshold() -> None:
    # 3.0 mmol/L converts to 265.71 mg/dL; the canonical value is deliberately wrong (below 265) to
    # prove that the native value decides.
    assert status(TG_HIGH, triglycerides(264.0, 3.0, "mmol/L")) == "fired"
    # 2.99 mmol/L is below 3.0 even though this canonical value (deliberately high) is above 265.
    assert status(TG_HIGH, triglycerides(266.0, 2.99, "mmol/L")) == "not-fired"
    assert status({**TG_HIGH, "op": ">"}, triglycerides(999.0, 3.0, "mmol/L")) == "not-fired"
    assert status({**TG_HIGH, "op": "=="}, triglycerides(265.71, 3.0, "mmol/L")) == "fired"


def test_a_value_in_the_canonical_unit_is_compared_with_the_canonical_threshold() -> None:
    assert status(TG_HIGH, triglycerides(265.0)) == "fired"
    assert status(TG_HIGH, triglycerides(264.9)) == "not-fired"
    # native_unit equal to the canonical unit: the canonical value decides.
    assert status(TG_HIGH, triglycerides(265.0, 1.0, "mg/dL")) == "fired"


def test_a_value_in_a_third_unit_uses_the_converted_canonical_threshold() -> None:
    # g/L is neither the parameter's unit nor an `also` unit: the canonical value decides, whatever the
    # native value says (here deliberately inconsistent with it).
    assert status(TG_HIGH, triglycerides(266.0, 0.1, "g/L")) == "fired"
    assert status(TG_HIGH, triglycerides(264.0, 99.0, "g/L")) == "not-fired"


def test_a_parameter_in_another_unit_is_converted_for_canonical_values_and_native_for_its_own() -> None:
    condition = {"fact": "triglycerides.worst", "op": ">=", "param": "tg_high_mmol"}  # 3.0 mmol/L
    assert status(condition, triglycerides(265.71)) == "fired"  # 3.0 x 88.57
    assert status(condition, triglycerides(265.7)) == "not-fired"
    assert status(condition, triglycerides(200.0, 3.0, "mmol/L")) == "fired"
    assert status(condition, triglycerides(300.0, 2.99, "mmol/L")) == "not-fired"


def test_a_censored_native_value_decides_only_when_the_bound_does() -> None:
    censored = {
        "triglycerides.worst": Fact(
            "triglycerides.worst", 265.71, "mg/dL", native_value=3.0, native_unit="mmol/L", comparator=">"
        )
    }
    assert status(TG_HIGH, censored) == "fired"
    upper = {
        "triglycerides.worst": Fact(
            "triglycerides.worst", 265.71, "mg/dL", native_value=3.0, native_unit="mmol/L", comparator="<"
        )
    }
    assert status(TG_HIGH, upper) == "unknown"


def test_native_threshold_missing_fact_is_unknown() -> None:
    assert status(TG_HIGH, {}) == "unknown"
    assert status({**TG_HIGH, "if_missing": "false"}, {}) == "not-fired"


# --- compile errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"fact": "ferritin.wrost", "op": ">=", "param": "max_ferritin"}, "did you mean 'ferritin.worst'"),
        ({"missing": "ferritn.worst"}, "did you mean 'ferritin.worst'"),
        ({"fact": "ferritin.worst", "op": ">=", "value": 500}, "not a bare number"),
        ({"fact": "order.route", "op": "==", "value": "im"}, "never 'im'"),
        ({"fact": "order.route", "in": ["iv", "im"]}, "never ['im']"),
        ({"fact": "order.route", "op": ">", "value": "iv"}, "only == and !="),
        ({"fact": "ferritin.worst", "op": ">=", "param": "max_ferritn"}, "unknown parameter 'max_ferritn'"),
        ({"fact": "ferritin.worst", "op": ">=", "param": "ferritin_in_mmol"}, "does not convert"),
        ({"fact": "ferritin.worst", "op": ">=", "param": "ferritin_bad_also"}, "does not convert"),
        ({"fact": "ferritin.worst", "op": ">=", "param": "ferritin_no_unit"}, "needs a unit"),
        ({"fact": "ferritin.worst", "op": ">=", "param": "route_word"}, "not a number"),
        ({"fact": "ferritin.count", "op": ">=", "param": "min_results_in_mg"}, "has no unit"),
        ({"fact": "ferritin.count", "op": ">=", "value": "two"}, "compare it with a number"),
        ({"fact": "order.present", "op": "==", "value": True}, "is a boolean"),
        ({"fact": "order.route", "is": True}, "not boolean"),
        ({"fact": "order.present", "in": ["iv"]}, "not text"),
        ({"all": [A, {"fact": "nope.nothing", "is": True}]}, "unknown fact 'nope.nothing'"),
    ],
)
def test_compile_errors(condition: dict[str, Any], message: str) -> None:
    with pytest.raises(CompileError) as caught:
        compile_(condition)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "condition",
    [
        # A comparison with `param:` on a text, boolean or count fact gets the checks the same comparison
        # with `value:` gets; once it skipped them and each of these compiled.
        {"fact": "order.route", "op": ">", "param": "route_word"},  # text has only == and !=
        {"fact": "order.route", "op": "==", "param": "route_not_a_value"},  # "IV" is not a route value
        {"fact": "order.route", "op": "==", "param": "min_results"},  # text compared with a number
        {"fact": "order.present", "op": "==", "param": "flag"},  # booleans take `is:`
        {"fact": "ferritin.count", "op": ">=", "param": "route_word"},  # a count compared with text
    ],
    ids=["text-gt", "text-not-a-value", "text-vs-number", "boolean-eq", "count-vs-text"],
)
def test_a_parameter_gets_the_same_checks_as_a_literal(condition: dict[str, Any]) -> None:
    with pytest.raises(CompileError):
        compile_(condition)


# --- reads and terms -----------------------------------------------------------------------------


def test_reads_lists_each_fact_once_in_reading_order() -> None:
    compiled = compile_(
        {
            "all": [
                {"fact": "order.present", "is": True},
                {"any": [B, A, {"missing": "ferritin.count"}]},
                {"not": {"fact": "order.route", "in": ["iv"]}},
                {"present": "ferritin.worst"},
            ]
        }
    )
    assert compiled.reads == (
        "order.present",
        "triglycerides.worst",
        "ferritin.worst",
        "ferritin.count",
        "order.route",
    )


def test_terms_counts_the_or_alternatives() -> None:
    assert compile_(A).terms == 1
    assert compile_({"any": [A, ferritin_vs("<")]}).terms == 2
    assert compile_({"fact": "order.route", "in": ["iv", "sc", "other"]}).terms == 3
    # and(or2, or2) expands to four conjunctions.
    c = {"fact": "ferritin.count", "op": ">=", "value": 2}
    d = {"fact": "order.route", "op": "==", "value": "iv"}
    assert (
        compile_({"all": [{"any": [A, c]}, {"any": [d, {"fact": "order.present", "is": True}]}]}).terms == 4
    )
    # A native threshold adds one alternative per side (native unit, or any other unit).
    assert compile_(TG_HIGH).terms == 2
    # if_missing: true adds the "absent" alternative to the true side.
    assert compile_(ferritin_vs(">=", if_missing="true")).terms == 2


def test_an_expanded_condition_evaluates_every_alternative() -> None:
    c = {"fact": "ferritin.count", "op": ">=", "value": 2}
    d = {"fact": "order.route", "op": "==", "value": "iv"}
    condition = {"all": [{"any": [A, c]}, {"any": [d, {"fact": "order.present", "is": True}]}]}
    present = facts(Fact("order.present", True))
    assert status(condition, {**ferritin(100), **count(3), **route("sc"), **present}) == "fired"
    assert status(condition, {**ferritin(100), **count(1), **route("iv")}) == "not-fired"
    assert status(condition, {**count(1), **route("iv")}) == "unknown"


def test_a_contradiction_never_fires_and_a_tautology_always_does() -> None:
    contradiction = {"all": [{"missing": "ferritin.worst"}, {"present": "ferritin.worst"}]}
    tautology = {"any": [{"missing": "ferritin.worst"}, {"present": "ferritin.worst"}]}
    for given in ({}, ferritin(1), ferritin(None)):
        assert status(contradiction, given) == "not-fired"
        assert status(tautology, given) == "fired"
