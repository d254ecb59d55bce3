"""HScore: the published table, its boundaries, probabilities, and ranges for unmeasured items."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cds_service.clinical.hscore.calculator import HScoreInputs, HScoreTable, hscore, probability

# Fardet 2014 (rules-logic.md (a), optional score 1), as a rule file would give it.
FARDET = HScoreTable(
    immunosuppression=18,
    temperature=(38.4, 39.4),
    temperature_points=(0, 33, 49),
    organomegaly_points=(0, 23, 38),
    cytopenia_limits=(9.2, 5.0, 110),
    cytopenia_points=(0, 0, 24, 34),
    ferritin=(2000, 6000),
    ferritin_points=(0, 35, 50),
    triglycerides=(1.5, 4),
    triglycerides_points=(0, 44, 64),
    fibrinogen=2.5,
    fibrinogen_points=30,
    ast=30,
    ast_points=19,
    hemophagocytosis=35,
    probability=(
        (100, 1),
        (110, 3),
        (120, 5),
        (130, 9),
        (140, 16),
        (150, 25),
        (160, 40),
        (170, 54),
        (180, 70),
        (190, 80),
        (200, 88),
        (210, 93),
        (220, 96),
        (230, 98),
        (240, 99),
    ),
)

# Everything known and as bad as it gets in each item.
SICK = HScoreInputs(
    immunosuppression=True,
    temperature=39.6,
    hepatomegaly=True,
    splenomegaly=True,
    hemoglobin=8.0,
    wbc=2.0,
    platelets=40,
    ferritin=12000,
    triglycerides=4.5,
    fibrinogen=1.2,
    ast=120,
    hemophagocytosis=True,
)
# Everything known and normal.
WELL = HScoreInputs(
    immunosuppression=False,
    temperature=37.0,
    hepatomegaly=False,
    splenomegaly=False,
    hemoglobin=13.0,
    wbc=7.0,
    platelets=250,
    ferritin=150,
    triglycerides=1.0,
    fibrinogen=3.0,
    ast=20,
    hemophagocytosis=False,
)
MAXIMA = {
    "immunosuppression": 18,
    "temperature": 49,
    "organomegaly": 38,
    "cytopenias": 34,
    "ferritin": 50,
    "triglycerides": 64,
    "fibrinogen": 30,
    "ast": 19,
    "hemophagocytosis": 35,
}


def score(**changes: Any) -> int:
    result = hscore(dataclasses.replace(WELL, **changes), FARDET)
    assert result.low == result.high
    return result.low


def test_a_fully_known_patient() -> None:
    patient = HScoreInputs(
        immunosuppression=False,  # 0
        temperature=39.0,  # 33
        hepatomegaly=True,
        splenomegaly=False,  # 23
        hemoglobin=8.5,
        wbc=6.1,
        platelets=45,  # 2 lineages: 24
        ferritin=8000,  # 50
        triglycerides=2.0,  # 44
        fibrinogen=2.0,  # 30
        ast=45,  # 19
        hemophagocytosis=True,  # 35
    )
    result = hscore(patient, FARDET)
    assert (result.low, result.high, result.unknown) == (258, 258, ())
    assert {name: low for name, low, _ in result.items}["cytopenias"] == 24


def test_extremes() -> None:
    assert hscore(WELL, FARDET).high == 0
    assert hscore(SICK, FARDET).low == sum(MAXIMA.values()) == 337


@pytest.mark.parametrize(
    ("changes", "points"),
    [
        ({"temperature": 38.3}, 0),
        ({"temperature": 38.4}, 33),
        ({"temperature": 39.4}, 33),
        ({"temperature": 39.5}, 49),
        ({"ferritin": 1999}, 0),
        ({"ferritin": 2000}, 35),
        ({"ferritin": 6000}, 35),
        ({"ferritin": 6001}, 50),
        ({"triglycerides": 1.49}, 0),
        ({"triglycerides": 1.5}, 44),
        ({"triglycerides": 4.0}, 44),
        ({"triglycerides": 4.01}, 64),
        ({"fibrinogen": 2.5}, 30),
        ({"fibrinogen": 2.51}, 0),
        ({"ast": 29}, 0),
        ({"ast": 30}, 19),
        ({"immunosuppression": True}, 18),
        ({"hemophagocytosis": True}, 35),
        ({"hepatomegaly": True}, 23),
        ({"splenomegaly": True}, 23),
        ({"hepatomegaly": True, "splenomegaly": True}, 38),
        # Cytopenia limits are inclusive; one lineage scores nothing.
        ({"hemoglobin": 9.2}, 0),
        ({"hemoglobin": 9.2, "wbc": 5.0}, 24),
        ({"hemoglobin": 9.3, "wbc": 5.0, "platelets": 110}, 24),
        ({"hemoglobin": 9.2, "wbc": 5.0, "platelets": 110}, 34),
        ({"wbc": 5.1, "platelets": 111}, 0),
    ],
)
def test_boundaries(changes: dict[str, Any], points: int) -> None:
    assert score(**changes) == points


def test_unknown_items_span_their_points() -> None:
    result = hscore(dataclasses.replace(WELL, triglycerides=None, hemophagocytosis=None, ast=None), FARDET)
    assert (result.low, result.high) == (0, 64 + 35 + 19)
    assert result.unknown == ("triglycerides", "ast", "hemophagocytosis")
    assert result.high - result.low == sum(MAXIMA[name] for name in result.unknown)


def test_nothing_known() -> None:
    result = hscore(HScoreInputs(), FARDET)
    assert (result.low, result.high) == (0, 337)
    assert result.unknown == tuple(MAXIMA)


def test_partly_known_counts_span_the_possible_counts() -> None:
    result = hscore(dataclasses.replace(SICK, splenomegaly=None, wbc=None), FARDET)
    items = {name: (low, high) for name, low, high in result.items}
    assert items["organomegaly"] == (23, 38)
    assert items["cytopenias"] == (24, 34)
    # One lineage known low and one unknown: 1 or 2 lineages, 0 or 24 points.
    result = hscore(dataclasses.replace(WELL, hemoglobin=7.0, wbc=None), FARDET)
    assert {name: (low, high) for name, low, high in result.items}["cytopenias"] == (0, 24)


def test_an_unknown_that_cannot_change_the_points_is_not_listed() -> None:
    # Hb and platelets normal: WBC alone makes at most one lineage, which scores 0 either way.
    result = hscore(dataclasses.replace(WELL, wbc=None), FARDET)
    assert (result.low, result.high, result.unknown) == (0, 0, ())


@pytest.mark.parametrize(("score", "percent"), [(row_score, f"{p} %") for row_score, p in FARDET.probability])
def test_probability_at_the_published_rows(score: int, percent: str) -> None:
    assert probability(score, FARDET) == percent


@pytest.mark.parametrize(
    ("score", "text"),
    [
        (170, "54 %"),
        (165, "47 %"),  # midway between 40 and 54
        (105, "2 %"),
        (155, "33 %"),  # 32.5 rounds half up
        (169, "53 %"),  # the paper's best cut-off: 52.6
        (99, "<1 %"),
        (90, "<1 %"),
        (0, "<1 %"),
        (241, ">99 %"),
        (250, ">99 %"),
        (337, ">99 %"),
    ],
)
def test_probability_between_and_beyond_the_rows(score: float, text: str) -> None:
    assert probability(score, FARDET) == text


def test_probability_needs_a_table() -> None:
    with pytest.raises(ValueError, match="no rows"):
        probability(100, dataclasses.replace(FARDET, probability=()))


def maybe(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | strategy


FIELDS = {
    "immunosuppression": st.booleans(),
    "temperature": st.floats(min_value=35, max_value=42),
    "hepatomegaly": st.booleans(),
    "splenomegaly": st.booleans(),
    "hemoglobin": st.floats(min_value=3, max_value=18),
    "wbc": st.floats(min_value=0, max_value=30),
    "platelets": st.floats(min_value=0, max_value=600),
    "ferritin": st.floats(min_value=5, max_value=100_000),
    "triglycerides": st.floats(min_value=0.2, max_value=15),
    "fibrinogen": st.floats(min_value=0.2, max_value=8),
    "ast": st.floats(min_value=5, max_value=2000),
    "hemophagocytosis": st.booleans(),
}
partial_inputs = st.builds(HScoreInputs, **{name: maybe(strategy) for name, strategy in FIELDS.items()})


@given(partial_inputs)
def test_low_never_exceeds_high(inputs: HScoreInputs) -> None:
    result = hscore(inputs, FARDET)
    assert 0 <= result.low <= result.high <= 337
    assert result.low == sum(low for _, low, _ in result.items)
    assert result.high == sum(high for _, _, high in result.items)


@given(partial_inputs, st.data())
def test_any_completion_scores_within_the_range(inputs: HScoreInputs, data: st.DataObject) -> None:
    result = hscore(inputs, FARDET)
    filled: dict[str, Any] = {
        name: data.draw(strategy, label=name)
        for name, strategy in FIELDS.items()
        if getattr(inputs, name) is None
    }
    complete = hscore(dataclasses.replace(inputs, **filled), FARDET)
    assert complete.low == complete.high
    assert result.low <= complete.low <= result.high


@given(st.floats(min_value=0, max_value=400))
def test_probability_never_falls_as_the_score_rises(score: float) -> None:
    def rank(text: str) -> float:
        return -1 if text.startswith("<") else 101 if text.startswith(">") else float(text.rstrip(" %"))

    assert rank(probability(score, FARDET)) <= rank(probability(score + 1, FARDET))
