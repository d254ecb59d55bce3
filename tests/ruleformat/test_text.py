"""Card text templates: what lint checks, the longest text a template can produce, and what it renders."""

from __future__ import annotations

import random
import string
from datetime import datetime

import pytest

from cds_service.facts.named import Fact, FactSpec
from cds_service.ruleformat.rulefile import Parameter
from cds_service.ruleformat.text import fill, format_number, longest, placeholders, template_problems

SPECS = {
    spec.name: spec
    for spec in (
        FactSpec("ferritin.worst", "quantity", "ug/L", "highest ferritin"),
        FactSpec("ferritin.count", "count", None, "ferritin results"),
        FactSpec("patient.weight", "quantity", "kg", "body weight"),
        FactSpec("order.route", "text", None, "route", ("iv", "sc", "continuous-intravenous-infusion")),
        FactSpec("order.note", "text", None, "free text of the order"),
        FactSpec("order.present", "boolean", None, "an order is drafted"),
    )
}

PARAMETERS = {
    name: Parameter.model_validate(data)
    for name, data in {
        "max_ferritin": {"value": 500, "unit": "ug/L", "source": "Ravelli 2016, Table 2"},
        "max_rate": {"value": 2.5, "unit": "mg/kg/h", "source": "Regions protocol"},
        "max_daily_dose": {"value": 2400, "unit": "mg/d", "source": "Monteagudo 2020"},
        "route_word": {"value": "intravenous", "source": "[project choice] wording"},
    }.items()
}

WHEN = datetime(2024, 3, 1, 8, 30)


def ferritin(value: float | None, **extra: object) -> dict[str, Fact]:
    return {"ferritin.worst": Fact("ferritin.worst", value, "ug/L", **extra)}  # type: ignore[arg-type]


# --- placeholders and template_problems ----------------------------------------------------------


def test_placeholders_lists_name_and_format_in_order_and_skips_literal_braces() -> None:
    template = "{{x}} {ferritin.worst:.1f} {param.max_ferritin.unit} {{ {missing} }} { order.route }"
    assert placeholders(template) == [
        ("ferritin.worst", ".1f"),
        ("param.max_ferritin.unit", None),
        ("missing", None),
        ("order.route", None),
    ]
    assert placeholders("no placeholders {{here}}") == []


def test_a_valid_template_has_no_problems() -> None:
    template = (
        "Ferritin {ferritin.worst} {ferritin.worst.unit} ({ferritin.worst:.1f}) on {ferritin.worst.time}, "
        "{ferritin.count:.0f} results; {ferritin.worst.missing} {ferritin.worst.detail} {ferritin.worst.evidence}"
        " route {order.route} present {order.present}; max {param.max_ferritin} {param.max_ferritin.unit} "
        "({param.max_ferritin.source}); {missing}; literal {{braces}} and }}"
    )
    assert template_problems(template, SPECS, PARAMETERS) == []


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{ferritin.wrost}", "unknown fact"),
        ("{nothing.here.unit}", "unknown fact 'nothing.here.unit'"),
        ("{param.max_ferritn}", "unknown parameter 'max_ferritn'"),
        ("{param.max_ferritn.unit}", "unknown parameter 'max_ferritn'"),
        ("{ferritin.worst.colour}", "not 'colour'"),
        ("{param.max_ferritin.colour}", "not 'colour'"),
        ("{order.route:.1f}", "a format applies only to numbers"),
        ("{order.present:.1f}", "a format applies only to numbers"),
        ("{ferritin.worst:zz}", "only a precision format"),
        ("{ferritin.worst:.1q}", "only a precision format"),
        ("Ferritin {ferritin.worst", "unbalanced brace"),
        ("Ferritin ferritin.worst}", "unbalanced brace"),
        ("{{ferritin.worst}", "unbalanced brace"),
    ],
)
def test_template_problems(template: str, message: str) -> None:
    problems = template_problems(template, SPECS, PARAMETERS)
    assert len(problems) == 1, problems
    assert message in problems[0]


def test_every_bad_placeholder_is_reported_once() -> None:
    problems = template_problems("{a.b} {param.zz} {ferritin.worst.x} {", SPECS, PARAMETERS)
    assert len(problems) == 4, problems


def test_a_parameter_with_a_bad_format_is_a_template_problem() -> None:
    # A format spec on a {param.*} placeholder is checked like one on a fact: accepted by lint, it would
    # make longest() (lint, on summaries) and fill() raise ValueError: Invalid format specifier.
    template = "Max {param.max_daily_dose:zz} mg/day"
    assert template_problems(template, SPECS, PARAMETERS) != []


# --- longest -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain", 5),
        ("{{x}}", 3),
        ("{ferritin.worst}", 12),  # ten digits and a two-character comparator (">=")
        ("{ferritin.worst:.1f}", 12),
        ("{ferritin.count}", 12),
        ("{ferritin.worst.unit}", 10),
        ("{ferritin.worst.time}", 16),
        ("{ferritin.worst.missing}", 80),
        ("{ferritin.worst.detail}", 60),
        ("{ferritin.worst.evidence}", 40),
        ("{order.route}", len("continuous-intravenous-infusion")),
        ("{order.note}", 24),
        ("{order.present}", 3),
        ("{missing}", 120),
        ("{param.max_ferritin}", 3),
        ("{param.max_rate}", 3),
        ("{param.max_rate:.2f}", 4),
        ("{param.max_ferritin.unit}", 4),
        ("{param.max_ferritin.source}", len("Ravelli 2016, Table 2")),
        ("{param.route_word}", len("intravenous")),
        ("Ferritin {ferritin.worst} {ferritin.worst.unit}", 9 + 12 + 1 + 10),
    ],
)
def test_longest_counts_the_assumed_widths(template: str, expected: int) -> None:
    assert longest(template, SPECS, PARAMETERS) == expected


def test_longest_is_reached_by_the_widest_number() -> None:
    template = "Ferritin {ferritin.worst}"
    widest = fill(template, ferritin(9999999.99, comparator=">="), PARAMETERS)
    assert widest == "Ferritin >=9999999.99"
    assert len(widest) == longest(template, SPECS, PARAMETERS)


EVERYTHING = (
    "Ferritin {ferritin.worst} {ferritin.worst.unit} ({ferritin.worst:.1f}, {ferritin.worst:.2f}) on "
    "{ferritin.worst.time}; {ferritin.count} results; weight {patient.weight} {patient.weight.unit}; "
    "route {order.route}; note {order.note}; drafted {order.present}; why {ferritin.worst.missing}; "
    "{ferritin.worst.detail}; from {ferritin.worst.evidence}; max {param.max_ferritin} "
    "{param.max_ferritin.unit} ({param.max_ferritin.source}), {param.max_rate:.2f} {param.max_rate.unit}, "
    "{param.route_word}; missing: {missing} {{literal}}"
)


def _text(rng: random.Random, width: int) -> str:
    alphabet = string.ascii_letters + string.digits + " /-().,'"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, width)))


def _number(rng: random.Random) -> float:
    kind = rng.randrange(6)
    if kind == 0:
        return float(rng.randint(0, 9_999_999))
    if kind == 1:
        return rng.uniform(-999_999.0, 9_999_999.0)
    if kind == 2:
        return rng.uniform(0, 1) * 10 ** rng.randint(-9, 0)
    if kind == 3:
        return -rng.uniform(0, 999_999.0)
    if kind == 4:
        return round(rng.uniform(0, 10_000), rng.randint(0, 6))
    return rng.choice([0.0, 9_999_999.99, -999_999.99, 9_999_999.985, 0.005, 1e-12])


def _quantity(rng: random.Random, name: str) -> Fact:
    if rng.random() < 0.1:
        return Fact(name, None, missing=_text(rng, 80))
    return Fact(
        name,
        _number(rng),
        _text(rng, 10),
        missing=None,
        comparator=rng.choice([None, None, "<", "<=", ">", ">="]),
        time=rng.choice([None, datetime(rng.randint(1900, 2099), 12, 31, 23, 59)]),
        evidence=tuple(f"Observation/{rng.randint(0, 999)}" for _ in range(rng.randint(0, 2))),
        detail=rng.choice([None, _text(rng, 60)]),
    )


def test_longest_is_an_upper_bound_of_fill_for_random_values_within_the_assumed_widths() -> None:
    rng = random.Random(20240301)
    bound = longest(EVERYTHING, SPECS, PARAMETERS)
    for _ in range(3000):
        given = {
            "ferritin.worst": _quantity(rng, "ferritin.worst"),
            "patient.weight": _quantity(rng, "patient.weight"),
            "ferritin.count": Fact("ferritin.count", rng.randint(0, 9_999_999)),
            "order.route": Fact("order.route", rng.choice(SPECS["order.route"].values)),
            "order.note": Fact("order.note", _text(rng, 24)),
            "order.present": Fact("order.present", rng.choice([True, False, None])),
        }
        for name in rng.sample(sorted(given), rng.randint(0, 2)):
            del given[name]  # a fact the request did not produce at all
        text = fill(EVERYTHING, given, PARAMETERS, missing=_text(rng, 120))
        assert len(text) <= bound, (len(text), bound, text)


def test_the_widest_values_reach_the_bound_exactly() -> None:
    def widest(name: str) -> Fact:
        return Fact(
            name,
            -999999.99,
            "u" * 10,
            missing="m" * 80,
            comparator=">=",
            time=WHEN,
            evidence=("Observation/1234567890", "Observation/1234"),
            detail="d" * 60,
        )

    given = {
        "ferritin.worst": widest("ferritin.worst"),
        "patient.weight": widest("patient.weight"),
        "ferritin.count": Fact("ferritin.count", 1234567890, comparator=">="),
        "order.route": Fact("order.route", "continuous-intravenous-infusion"),
        "order.note": Fact("order.note", "n" * 24),
        "order.present": Fact("order.present", True),
    }
    text = fill(EVERYTHING, given, PARAMETERS, missing="x" * 120)
    assert len(text) == longest(EVERYTHING, SPECS, PARAMETERS), text


@pytest.mark.parametrize("spec", [">30", ".20f", "030.1f", ".12e"])
def test_a_format_spec_cannot_break_the_bound(spec: str) -> None:
    # A width or precision in a spec must not make a summary longer than lint proved (3.2 would render
    # as 13-30 characters against the 12 a number is assumed to take).
    template = f"{{ferritin.worst:{spec}}}"
    if template_problems(template, SPECS, PARAMETERS):
        return  # refusing the spec is a fix too
    assert len(fill(template, ferritin(3.2), PARAMETERS)) <= longest(template, SPECS, PARAMETERS)


# --- fill ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "spec", "expected"),
    [
        (2400, None, "2400"),
        (2400.0, None, "2400"),
        (31.25, None, "31.25"),
        (3.2, None, "3.2"),
        (0.5, None, "0.5"),
        (1.005, None, "1"),
        (2.999, None, "3"),
        (-12.5, None, "-12.5"),
        (3.14159, ".1f", "3.1"),
        (3.14159, ".2f", "3.14"),
        (2400, ".1f", "2400.0"),
        (12345.6, ",.0f", "12,346"),
    ],
)
def test_fill_renders_numbers(value: float, spec: str | None, expected: str) -> None:
    template = f"{{ferritin.worst:{spec}}}" if spec else "{ferritin.worst}"
    assert fill(template, ferritin(value), PARAMETERS) == expected
    assert format_number(float(value), spec) == expected


def test_fill_renders_a_censored_value_with_its_comparator() -> None:
    assert (
        fill("Ferritin {ferritin.worst} ug/L", ferritin(40000, comparator=">"), {}) == "Ferritin >40000 ug/L"
    )
    assert fill("{ferritin.worst:.1f}", ferritin(5, comparator="<="), {}) == "<=5.0"


def test_fill_renders_a_missing_value_as_unknown_and_says_why() -> None:
    given = ferritin(None, missing="no ferritin in the last 30 days")
    assert fill("Ferritin {ferritin.worst} ({ferritin.worst.missing})", given, {}) == (
        "Ferritin unknown (no ferritin in the last 30 days)"
    )
    assert fill("{ferritin.worst:.1f}", given, {}) == "unknown"
    assert fill("{ferritin.worst.missing}", ferritin(600), {}) == ""


def test_fill_renders_fact_attributes() -> None:
    given = ferritin(
        612.5,
        time=WHEN,
        detail="worst of 3 results",
        evidence=("Observation/1", "Observation/2"),
    )
    template = "{ferritin.worst} {ferritin.worst.unit} at {ferritin.worst.time}; {ferritin.worst.detail} [{ferritin.worst.evidence}]"
    assert fill(template, given, {}) == (
        "612.5 ug/L at 2024-03-01 08:30; worst of 3 results [Observation/1, Observation/2]"
    )
    assert fill(
        "{ferritin.worst.time}|{ferritin.worst.detail}|{ferritin.worst.evidence}", ferritin(1), {}
    ) == ("unknown time||")


def test_fill_renders_text_booleans_and_counts() -> None:
    given = {
        "order.route": Fact("order.route", "sc"),
        "order.present": Fact("order.present", True),
        "ferritin.count": Fact("ferritin.count", 3),
    }
    assert fill("{order.route} {order.present} {ferritin.count}", given, {}) == "sc yes 3"
    given["order.present"] = Fact("order.present", False)
    assert fill("{order.present}", given, {}) == "no"


def test_fill_renders_parameters() -> None:
    template = "max {param.max_ferritin} {param.max_ferritin.unit} ({param.max_ferritin.source})"
    assert fill(template, {}, PARAMETERS) == "max 500 ug/L (Ravelli 2016, Table 2)"
    assert fill("{param.max_rate} {param.max_rate:.2f} {param.max_rate.unit}", {}, PARAMETERS) == (
        "2.5 2.50 mg/kg/h"
    )
    assert fill("{param.route_word}", {}, PARAMETERS) == "intravenous"


def test_fill_renders_missing_and_literal_braces() -> None:
    assert fill("could not check: {missing}", {}, {}, missing="no weight; no ferritin") == (
        "could not check: no weight; no ferritin"
    )
    assert fill("could not check: {missing}", {}, {}) == "could not check: nothing"
    assert fill("{{ferritin.worst}} {{{ferritin.worst}}}", ferritin(7), {}) == "{ferritin.worst} {7}"


def test_fill_marks_a_fact_the_request_did_not_produce() -> None:
    assert fill("Ferritin {ferritin.worst} {ferritin.worst.unit}", {}, {}) == "Ferritin ? ?"


def test_ucum_powers_of_ten_in_a_detail_render_as_written_not_as_emphasis() -> None:
    from markdown_it import MarkdownIt

    from cds_service.ruleformat.text import protect_units, visible

    detail = "ANC **0.4 10*9/L** (<1 10*9/L); WBC 2 10*3/uL"
    protected = protect_units(detail)
    html = MarkdownIt("commonmark", {"html": False}).render(protected)
    assert "10*9/L</strong> (&lt;1 10*9/L); WBC 2 10*3/uL" in html
    assert "<em>" not in html
    assert visible(protected) == detail
    # Without protection the two "*" pair up: what an EHR would have shown.
    assert "<em>" in MarkdownIt("commonmark", {"html": False}).render(detail)


@pytest.mark.parametrize(
    ("value", "spec", "thresholds", "expected"),
    [
        (2.004, ".2f", (2,), "2.004"),  # 2400 mg/day at 49.9 kg: never "2.00" above a limit of 2
        (2.0, ".2f", (2,), "2.00"),  # exactly at it stays as written
        (2.5, ".2f", (2,), "2.50"),
        (29.96, ".1f", (30,), "29.96"),  # never "30.0" below a limit of 30
        (28.333, ".1f", (30,), "28.3"),
        (30.04, ".1f", (30,), "30.04"),
        (1199.996, None, (1200,), "1199.996"),
        (2.004, ".2f", (), "2.00"),  # no threshold: the format as asked
        (0.512, ".0%", (0.5,), "51%"),  # percentages are left as asked
    ],
)
def test_a_number_keeps_to_its_side_of_the_thresholds_it_is_compared_with(
    value: float, spec: str | None, thresholds: tuple[float, ...], expected: str
) -> None:
    assert format_number(value, spec, thresholds) == expected


def test_fill_uses_each_fact_s_own_thresholds() -> None:
    facts = {"order.dose_rate_per_kg": Fact("order.dose_rate_per_kg", 2.004, unit="mg/kg/h")}
    text = "{order.dose_rate_per_kg:.2f} mg/kg/h"
    assert fill(text, facts, {}, thresholds={"order.dose_rate_per_kg": (2,)}) == "2.004 mg/kg/h"
    assert fill(text, facts, {}, thresholds={"other.fact": (2,)}) == "2.00 mg/kg/h"
