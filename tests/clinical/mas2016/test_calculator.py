"""2016 EULAR/ACR/PRINTO MAS classification in three-valued logic."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from cds_service.clinical.mas2016.calculator import classify
from cds_service.clinical.tristate import Tri

MET, NOT_MET, UNKNOWN = Tri.MET, Tri.NOT_MET, Tri.UNKNOWN
REQUIRED = 2  # any 2 of platelets, AST, triglycerides, fibrinogen
NAMES = ("platelets", "ast", "triglycerides", "fibrinogen")


def labelled(*results: Tri) -> list[tuple[str, Tri]]:
    return list(zip(NAMES, results, strict=True))


def test_classified() -> None:
    result = classify(MET, MET, labelled(MET, MET, NOT_MET, UNKNOWN), REQUIRED)
    assert result.status is MET
    assert result.met_items == 2
    assert result.items == tuple(labelled(MET, MET, NOT_MET, UNKNOWN))
    assert (result.fever, result.ferritin) == (MET, MET)


def test_any_part_rules_it_out() -> None:
    assert classify(NOT_MET, UNKNOWN, labelled(*[UNKNOWN] * 4), REQUIRED).status is NOT_MET
    assert classify(UNKNOWN, NOT_MET, labelled(*[UNKNOWN] * 4), REQUIRED).status is NOT_MET
    assert classify(UNKNOWN, UNKNOWN, labelled(MET, NOT_MET, NOT_MET, NOT_MET), REQUIRED).status is NOT_MET


def test_missing_data_leave_it_open() -> None:
    assert classify(MET, MET, labelled(MET, UNKNOWN, NOT_MET, NOT_MET), REQUIRED).status is UNKNOWN
    assert classify(UNKNOWN, MET, labelled(MET, MET, MET, MET), REQUIRED).status is UNKNOWN
    assert classify(MET, UNKNOWN, labelled(MET, MET, MET, MET), REQUIRED).status is UNKNOWN


def outcomes(value: Tri) -> list[bool]:
    return [True, False] if value is UNKNOWN else [value is MET]


tri = st.sampled_from(list(Tri))


@given(tri, tri, st.lists(tri, min_size=4, max_size=4), st.integers(min_value=0, max_value=5))
def test_status_is_met_exactly_when_every_completion_classifies(
    fever: Tri, ferritin: Tri, items: list[Tri], required: int
) -> None:
    classified = [
        f and r and sum(completed) >= required
        for f, r, *completed in itertools.product(outcomes(fever), outcomes(ferritin), *map(outcomes, items))
    ]
    expected = MET if all(classified) else NOT_MET if not any(classified) else UNKNOWN
    result = classify(fever, ferritin, labelled(*items), required)
    assert result.status is expected
    assert result.met_items == items.count(MET)
