"""`provides:` and `variants:` in rule files: lint finds every misuse at its line, and the engine uses
the first variant whose condition holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.clinical.exposure.facts import EXPOSURE_WORDING, NEUTROPHIL_WORDING
from cds_service.clinical.ferritin.facts import RESPONSE_WORDING, TREND_WORDING
from cds_service.clinical.hlh2004.criteria import WORDING as HLH_WORDING
from cds_service.clinical.hlh2004.lists import WORDING as LIST_WORDING
from cds_service.clinical.hscore.facts import WORDING as HSCORE_WORDING
from cds_service.clinical.infusion.facts import REASONS
from cds_service.clinical.mas2016.facts import WORDING as MAS_WORDING
from cds_service.clinical.renal.facts import AKI_WORDING, RENAL_WORDING
from cds_service.clinical.therapy.facts import WORDING as THERAPY_WORDING
from cds_service.engine.ruleset import check_rules
from tests.engine.rulesdir import copy_rules, edit
from tests.engine.test_ruleset import errors, line_of


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    return copy_rules(tmp_path)


def test_an_unknown_calculation_is_named_at_its_line(rules_copy: Path) -> None:
    path = rules_copy / "max-dose.yaml"
    edit(
        path,
        "services: [anakinra-order-sign, anakinra-order-select]",
        "services: [anakinra-order-sign]\nprovides: [astrology]",
    )
    found = errors(rules_copy)
    assert any(
        p.startswith(f"{path}:{line_of(path, 'astrology')}:") and "unknown calculation 'astrology'" in p
        for p in found
    ), found


def test_a_calculation_provided_twice_is_an_error(rules_copy: Path) -> None:
    path = rules_copy / "max-dose.yaml"
    edit(
        path,
        "services: [anakinra-order-sign, anakinra-order-select]",
        "services: [anakinra-order-sign]\nprovides: [infusion]",
    )
    found = errors(rules_copy)
    assert any("calculation 'infusion' is already provided by rule" in p for p in found), found


def test_a_missing_calculation_parameter_is_reported_at_the_providing_file(rules_copy: Path) -> None:
    path = rules_copy / "infusion-build.yaml"
    text = path.read_text()
    start = text.index("  min_rate:\n")
    end = text.index("  max_daily_dose:\n")
    path.write_text(text[:start] + text[end:])
    found = errors(rules_copy)
    assert any(
        p.startswith(f"{path}:{line_of(path, 'provides:')}:") and "must define parameter 'min_rate'" in p
        for p in found
    ), found


def test_a_parameter_in_the_wrong_unit_kind_is_reported_at_the_parameter(rules_copy: Path) -> None:
    path = rules_copy / "infusion-build.yaml"
    edit(path, "    value: 5\n    unit: mL/h", "    value: 5\n    unit: mg/h")
    found = errors(rules_copy)
    assert any(p.startswith(f"{path}:{line_of(path, '  min_rate:')}:") and "min_rate" in p for p in found), (
        found
    )


def test_calculation_parameters_count_as_used(rules_copy: Path) -> None:
    warnings = [str(p) for p in check_rules(rules_copy) if p.severity != "error"]
    assert not any("infusion-build.yaml" in w and "is not used" in w for w in warnings), warnings


def test_a_variant_card_is_linted_like_the_main_card(rules_copy: Path) -> None:
    path = rules_copy / "infusion-build.yaml"
    edit(path, "Anakinra bag outside protocol limits; use {infusion.recommended}", "Bag {infusion.nonsense}")
    found = errors(rules_copy)
    assert any(
        p.startswith(f"{path}:{line_of(path, 'infusion.nonsense')}:") and "unknown fact" in p for p in found
    ), found


def test_a_variant_condition_is_compiled_and_checked(rules_copy: Path) -> None:
    path = rules_copy / "infusion-build.yaml"
    edit(path, "      in: [violates]", "      in: [broken]")
    found = errors(rules_copy)
    # A one-leaf condition is reported at its `when:` line, two lines above.
    line = line_of(path, "in: [broken]") - 2
    assert any(p.startswith(f"{path}:{line}:") and "never ['broken']" in p for p in found), found


@pytest.mark.parametrize(
    ("file", "parameter", "value"),
    [
        ("renal-dose.yaml", "creatinine_analyte", "creatinine"),
        ("renal-dose.yaml", "height_analyte", "height"),
        ("acute-kidney-injury.yaml", "creatinine_analyte", "creatinine"),
        ("neutropenia.yaml", "analyte", "anc"),
        ("ferritin-rise.yaml", "analyte", "ferritin"),
        ("ferritin-escalation.yaml", "analyte", "ferritin"),
        ("hlh-2004.yaml", "platelets_analyte", "platelets"),
        ("hlh-2004.yaml", "scd25_analyte", "scd25"),
        ("hlh-2004.yaml", "ast_analyte", "ast"),
    ],
)
def test_an_input_analyte_the_catalog_lacks_is_reported_at_the_parameter(
    rules_copy: Path, file: str, parameter: str, value: str
) -> None:
    """A calculation's input analytes are named in its rule file: a name analytes.yaml lacks (a typo, or
    an analyte renamed there only) is an error at the parameter, never a silently missing input."""
    path = rules_copy / file
    edit(path, f"  {parameter}:\n    value: {value}\n", f"  {parameter}:\n    value: {value}_renamed\n")
    found = errors(rules_copy)
    assert any(
        p.startswith(f"{path}:{line_of(path, f'  {parameter}:')}:")
        and f"'{value}_renamed', which is not an analyte" in p
        for p in found
    ), found


def test_a_renamed_analyte_needs_only_rule_file_changes(rules_copy: Path) -> None:
    """Renaming analytes in rules/facts and in the rule files naming them leaves lint clean."""
    analytes = rules_copy / "facts" / "analytes.yaml"
    edit(analytes, "  creatinine:\n", "  serum_creatinine:\n")
    for file in ("renal-dose.yaml", "acute-kidney-injury.yaml"):
        edit(rules_copy / file, "    value: creatinine\n", "    value: serum_creatinine\n")
    edit(rules_copy / "charts" / "mas-course.yaml", "analytes: [creatinine]", "analytes: [serum_creatinine]")
    edit(analytes, "  platelets:\n", "  platelet_count:\n")
    edit(rules_copy / "hlh-2004.yaml", "    value: platelets\n", "    value: platelet_count\n")
    edit(rules_copy / "charts" / "mas-course.yaml", "analytes: [platelets]", "analytes: [platelet_count]")
    assert errors(rules_copy) == []


def test_calculations_that_compute_in_mg_refuse_a_pack_dosed_in_another_unit(rules_copy: Path) -> None:
    """The order facts follow medications.yaml dose_unit; a calculation whose numbers and wording are in mg
    says so at its rule file rather than label grams as milligrams."""
    path = rules_copy / "facts" / "medications.yaml"
    path.write_text(path.read_text().replace("      unit: mg\n", "      unit: g\n"))
    found = errors(rules_copy)
    for file, calculation in (
        ("infusion-build.yaml", "infusion"),
        ("high-dose-infection-watch.yaml", "exposure"),
        ("duplicate-therapy.yaml", "therapy"),
        ("ferritin-escalation.yaml", "ferritin_response"),
    ):
        where = rules_copy / file
        assert any(
            p.startswith(f"{where}:{line_of(where, 'provides:')}:")
            and f"the {calculation} calculation computes doses in mg" in p
            for p in found
        ), (file, found)


def test_the_summary_lint_bounds_a_build_by_the_configured_templates(rules_copy: Path) -> None:
    """The build facts' widths come from the configured wording (not a constant): a long diluent name
    makes a summary that shows a build too long for CDS Hooks, at its line."""
    path = rules_copy / "infusion-build.yaml"
    edit(
        path,
        "  diluent_short:\n    value: NS\n",
        "  diluent_short:\n    value: " + "normal saline " * 5 + "\n",
    )
    found = errors(rules_copy)
    summary = line_of(path, 'summary: "Anakinra infusion build: {infusion.recommended}"')
    assert any(p.startswith(f"{path}:{summary}:") and "summary can reach" in p for p in found), found


@pytest.mark.parametrize(
    ("file", "parameter"),
    [
        *(
            ("infusion-build.yaml", name)
            for name in (
                "build_text",
                "sc_text",
                "sc_daily_text",
                "order_bag_text",
                "order_bag_dosage_text",
                "order_sc_dosage_text",
                "order_change_text",
                *REASONS,
            )
        ),
        *(("hlh-2004.yaml", name) for name in (*HLH_WORDING, *LIST_WORDING, *HSCORE_WORDING, *MAS_WORDING)),
        *(("renal-dose.yaml", name) for name in RENAL_WORDING),
        *(("acute-kidney-injury.yaml", name) for name in AKI_WORDING),
        *(("ferritin-rise.yaml", name) for name in TREND_WORDING),
        *(("ferritin-escalation.yaml", name) for name in RESPONSE_WORDING),
        *(("high-dose-infection-watch.yaml", name) for name in EXPOSURE_WORDING),
        *(("neutropenia.yaml", name) for name in NEUTROPHIL_WORDING),
        *(("duplicate-therapy.yaml", name) for name in THERAPY_WORDING),
    ],
)
def test_a_calculation_wording_template_with_an_unknown_placeholder_is_reported_at_the_parameter(
    rules_copy: Path, file: str, parameter: str
) -> None:
    path = rules_copy / file
    text = path.read_text()
    start = text.index(f'  {parameter}:\n    value: "')
    quote = text.index('"', start) + 1
    path.write_text(text[:quote] + "{observation} " + text[quote:])
    found = errors(rules_copy)
    assert any(
        p.startswith(f"{path}:{line_of(path, f'  {parameter}:')}:")
        and "unknown placeholder(s) ['observation']" in p
        for p in found
    ), found


def test_the_summary_lint_bounds_the_aki_summary_by_its_configured_template(rules_copy: Path) -> None:
    """aki.summary's width comes from its template: a longer wording makes the AKI card's summary too
    long for CDS Hooks, at its line."""
    path = rules_copy / "acute-kidney-injury.yaml"
    edit(
        path,
        '"SCr {reference}→{value} {unit} in {hours} h"',
        '"serum creatinine from {reference} {unit} to {value} {unit} within {hours} hours"',
    )
    found = errors(rules_copy)
    summary = line_of(path, 'summary: "AKI by KDIGO stage {aki.stage} ({aki.summary})')
    assert any(p.startswith(f"{path}:{summary}:") and "summary can reach" in p for p in found), found


@pytest.mark.parametrize(
    ("file", "parameter", "value"),
    [
        ("ferritin-rise.yaml", "growth_text", '"{first} to {last} over {hours:.0f}"'),
        ("high-dose-infection-watch.yaml", "planned_text", '"{days:d} days"'),
        ("hlh-2004.yaml", "mas_item_text", '"{item} {result:.1f}{seen}"'),
    ],
)
def test_a_wording_template_with_a_numeric_format_is_reported_at_the_parameter(
    rules_copy: Path, file: str, parameter: str, value: str
) -> None:
    """Placeholders receive formatted text: a numeric format spec would fail on every request, so lint
    refuses it at the parameter."""
    path = rules_copy / file
    text = path.read_text()
    start = text.index(f"  {parameter}:\n    value: ")
    end = text.index("\n", start + len(parameter) + 4)
    path.write_text(text[:start] + f"  {parameter}:\n    value: {value}" + text[end:])
    found = errors(rules_copy)
    assert any(
        p.startswith(f"{path}:{line_of(path, f'  {parameter}:')}:")
        and "is not a template for text values" in p
        for p in found
    ), found


@pytest.mark.parametrize(
    ("file", "parameter", "old", "new", "message"),
    [
        (
            "hlh-2004.yaml",
            "lineage_words",
            "[low, not low, undecided]",
            "[low, not low]",
            "must list 3 texts",
        ),
        ("hlh-2004.yaml", "triglycerides_words", "[high, not high, undecided]", "high", "must list 3 texts"),
        (
            "hlh-2004.yaml",
            "hscore_item_labels",
            "[immunosuppression, temperature, organomegaly, cytopenias, hemophagocytosis]",
            "[immunosuppression, temperature]",
            "must list 5 texts",
        ),
        ("infusion-build.yaml", "intervals_joiner", '" or "', "[or]", "must be a text"),
        (
            "renal-dose.yaml",
            "limit_input_words",
            "[age, weight, sex, height]",
            "[age, weight]",
            "must list 4 texts",
        ),
    ],
)
def test_a_wording_parameter_of_the_wrong_shape_is_reported_at_the_parameter(
    rules_copy: Path, file: str, parameter: str, old: str, new: str, message: str
) -> None:
    path = rules_copy / file
    edit(path, f"  {parameter}:\n    value: {old}\n", f"  {parameter}:\n    value: {new}\n")
    found = errors(rules_copy)
    assert any(p.startswith(f"{path}:{line_of(path, f'  {parameter}:')}:") and message in p for p in found), (
        found
    )
