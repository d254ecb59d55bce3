"""HLH-2004 aggregation: "5 of 8" over tri-state criteria."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cds_service.clinical.hlh2004.calculator import counts, hlh_status
from cds_service.clinical.tristate import Tri, at_least

MET, NOT_MET, UNKNOWN = Tri.MET, Tri.NOT_MET, Tri.UNKNOWN
REQUIRED = 5  # HLH-2004: 5 of the 8 criteria

criteria = st.lists(st.sampled_from(list(Tri)), min_size=8, max_size=8)


def test_the_card_example() -> None:
    # 4 met, 3 not yet measured, 1 not met: the missing tests could still make 5.
    results = [MET, MET, MET, MET, UNKNOWN, UNKNOWN, UNKNOWN, NOT_MET]
    assert counts(results) == (4, 3, 1)
    assert hlh_status(results, REQUIRED) == "indeterminate"


def test_statuses() -> None:
    assert hlh_status([MET] * 5 + [NOT_MET] * 3, REQUIRED) == "fulfilled"
    assert hlh_status([MET] * 5 + [UNKNOWN] * 3, REQUIRED) == "fulfilled"
    assert hlh_status([MET] * 3 + [UNKNOWN] + [NOT_MET] * 4, REQUIRED) == "cannot_fulfil"
    assert hlh_status([UNKNOWN] * 8, REQUIRED) == "indeterminate"
    assert hlh_status([], REQUIRED) == "cannot_fulfil"


@given(criteria)
def test_counts_add_up(results: list[Tri]) -> None:
    met, unknown, not_met = counts(results)
    assert met + unknown + not_met == len(results)
    assert (met, unknown, not_met) == (results.count(MET), results.count(UNKNOWN), results.count(NOT_MET))


@given(criteria, st.integers(min_value=0, max_value=9))
def test_status_agrees_with_at_least(results: list[Tri], required: int) -> None:
    expected = {MET: "fulfilled", NOT_MET: "cannot_fulfil", UNKNOWN: "indeterminate"}
    assert hlh_status(results, required) == expected[at_least(required, results)]
