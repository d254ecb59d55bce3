"""The HScore facts of the hlh calculation (hlh.hscore, .hscore_low, .hscore_high) from real named facts,
configured by rules/hlh-2004.yaml. The score's arithmetic is tested in test_calculator.py."""

from __future__ import annotations

import pytest

from cds_service.clinical.hscore.calculator import probability
from tests.clinical.hlh2004.support import compute, condition, patient, settings
from tests.facts.support import observation


@pytest.mark.parametrize(
    ("score", "expected"),
    [(170, "54 %"), (169, "53 %"), (100, "1 %"), (90, "<1 %"), (240, "99 %"), (250, ">99 %"), (175, "62 %")],
)
def test_hscore_probability_is_fardets_table_interpolated(score: float, expected: str) -> None:
    assert probability(score, settings().hscore.table) == expected


def test_hscore_range_over_unknown_items_pinned_at_170() -> None:
    # temperature 33, one organ 23, three cytopenias 34, ferritin >6000 50, TG <1.5 0, fibrinogen <=2.5
    # 30, AST <30 0 = 170; immunosuppression (18) and hemophagocytosis (35) unknown: up to 223.
    out = compute(
        patient(),
        observation("t1", "8310-5", 39.0, "Cel"),
        condition("spleen", "16294009"),
        condition("liver", "80515008", "refuted"),
        observation("hb1", "718-7", 92, "g/L"),  # 9.2 g/dL: inclusive
        observation("wbc1", "6690-2", 5.0, "10*9/L"),
        observation("plt1", "777-3", 110, "10*9/L"),
        observation("fer1", "2276-4", 6000, "ug/L", comparator=">"),
        observation("tg1", "14927-8", 1.4, "mmol/L"),
        observation("fib1", "3255-7", 2.5, "g/L"),
        observation("ast1", "1920-8", 29, "U/L"),
    )
    assert (out["hlh.hscore_low"].value, out["hlh.hscore_high"].value) == (170, 223)
    text = str(out["hlh.hscore"].value)
    assert text.startswith("HScore 170-223 of 337 (probability 54 % to 97 %; best cut-off 169)")
    assert "2 items unknown: immunosuppression, hemophagocytosis" in text


def test_hscore_censored_value_counts_only_when_it_decides_the_band() -> None:
    decided = compute(patient(), observation("fer1", "2276-4", 40000, "ug/L", comparator=">"))
    assert "ferritin 50" in str(decided["hlh.hscore"].value)
    open_band = compute(patient(), observation("fer1", "2276-4", 2500, "ug/L", comparator=">"))
    assert "ferritin 0-50" in str(open_band["hlh.hscore"].value)


def test_hscore_is_worded_by_the_rule_file() -> None:
    configured = settings(
        hscore_text="score {score}/{most}, p {probability}, cut {cutoff}",
        hscore_item_text="{item}={points}",
        hscore_item_labels=["IS", "T", "organs", "cyto", "HPC"],
    )
    out = compute(
        patient(), observation("fer1", "2276-4", 40000, "ug/L", comparator=">"), configured=configured
    )
    text = str(out["hlh.hscore"].value)
    assert text.startswith("score ")
    assert "ferritin=50" in text  # the analyte's label (analytes.yaml)
    assert "IS=0-18" in text and "HPC=0-35" in text
