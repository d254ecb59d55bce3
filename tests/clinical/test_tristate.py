"""Kleene logic and censored comparisons, checked against brute force over every completion."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cds_service.clinical.tristate import Tri, all_of, any_of, at_least, compare

MET, NOT_MET, UNKNOWN = Tri.MET, Tri.NOT_MET, Tri.UNKNOWN
OPERATORS = (">", ">=", "<", "<=")
tri = st.sampled_from(list(Tri))


def completions(values: list[Tri]) -> list[list[bool]]:
    """Every way the UNKNOWN values could turn out."""
    choices = [[True, False] if value is UNKNOWN else [value is MET] for value in values]
    return [list(choice) for choice in itertools.product(*choices)]


def verdict(outcomes: list[bool]) -> Tri:
    if all(outcomes):
        return MET
    if not any(outcomes):
        return NOT_MET
    return UNKNOWN


@given(st.lists(tri, max_size=6))
def test_any_of_is_true_exactly_when_every_completion_is(values: list[Tri]) -> None:
    assert any_of(*values) is verdict([any(completion) for completion in completions(values)])


@given(st.lists(tri, max_size=6))
def test_all_of_is_true_exactly_when_every_completion_is(values: list[Tri]) -> None:
    assert all_of(*values) is verdict([all(completion) for completion in completions(values)])


@given(st.lists(tri, max_size=7), st.integers(min_value=0, max_value=8))
def test_at_least_is_true_exactly_when_every_completion_is(values: list[Tri], n: int) -> None:
    expected = verdict([sum(completion) >= n for completion in completions(values)])
    assert at_least(n, values) is expected


def test_kleene_examples() -> None:
    assert any_of(NOT_MET, UNKNOWN, MET) is MET
    assert any_of(NOT_MET, UNKNOWN) is UNKNOWN
    assert any_of(NOT_MET, NOT_MET) is NOT_MET
    assert all_of(MET, UNKNOWN, NOT_MET) is NOT_MET
    assert all_of(MET, UNKNOWN) is UNKNOWN
    assert all_of(MET, MET) is MET
    assert at_least(2, [MET, UNKNOWN, NOT_MET]) is UNKNOWN
    assert at_least(2, [MET, NOT_MET, NOT_MET]) is NOT_MET
    assert at_least(2, [MET, MET, UNKNOWN]) is MET


@pytest.mark.parametrize(
    ("value", "comparator", "op", "threshold", "expected"),
    [
        # The brief's example: ferritin ">40000" is some value above 40000.
        (40000, ">", ">=", 500, MET),
        (40000, ">", ">", 50000, UNKNOWN),
        (40000, ">", "<", 100, NOT_MET),
        # At the threshold, an open bound and an inclusive test differ.
        (40000, ">", ">", 40000, MET),
        (40000, ">=", ">", 40000, UNKNOWN),
        (40000, ">=", ">=", 40000, MET),
        (40000, ">", "<=", 40000, NOT_MET),
        (40000, ">=", "<=", 40000, UNKNOWN),
        (40000, ">=", "<", 40000, NOT_MET),
        (0.5, "<", "<", 0.5, MET),
        (0.5, "<=", "<", 0.5, UNKNOWN),
        (0.5, "<=", "<=", 0.5, MET),
        (0.5, "<", ">=", 0.5, NOT_MET),
        (0.5, "<=", ">=", 0.5, UNKNOWN),
        (0.5, "<=", ">", 0.5, NOT_MET),
        (0.5, "<", "<", 1.0, MET),
        (0.5, "<", ">", 0.1, UNKNOWN),
        # An exact value at the threshold.
        (500, None, ">=", 500, MET),
        (500, None, ">", 500, NOT_MET),
        (500, None, "<=", 500, MET),
        (500, None, "<", 500, NOT_MET),
        (499.9, None, ">=", 500, NOT_MET),
    ],
)
def test_compare_examples(
    value: float, comparator: str | None, op: str, threshold: float, expected: Tri
) -> None:
    assert compare(value, op, threshold, comparator) is expected


def satisfies(x: float, op: str, threshold: float) -> bool:
    return {">": x > threshold, ">=": x >= threshold, "<": x < threshold, "<=": x <= threshold}[op]


def possible(x: float, value: float, comparator: str | None) -> bool:
    """Whether `x` could be the true value of a result reported as `comparator value`."""
    return x == value if comparator is None else satisfies(x, comparator, value)


@pytest.mark.parametrize("comparator", [None, *OPERATORS])
@pytest.mark.parametrize("op", OPERATORS)
@pytest.mark.parametrize("value", [1.0, 2.0, 3.0])
def test_compare_agrees_with_every_true_value_the_result_allows(
    value: float, op: str, comparator: str | None
) -> None:
    threshold = 2.0
    # The truth only changes at 2 and the interval only ends at `value`, so these points see every region.
    probes = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    outcomes = [satisfies(x, op, threshold) for x in probes if possible(x, value, comparator)]
    assert compare(value, op, threshold, comparator) is verdict(outcomes)


@pytest.mark.parametrize("comparator", [None, *OPERATORS])
def test_compare_without_a_value_is_unknown(comparator: str | None) -> None:
    assert compare(None, ">=", 500, comparator) is UNKNOWN
    assert compare(float("nan"), ">=", 500, comparator) is UNKNOWN


def test_compare_rejects_unknown_operators() -> None:
    with pytest.raises(ValueError, match="operator"):
        compare(1.0, "==", 1.0)
    with pytest.raises(ValueError, match="comparator"):
        compare(1.0, ">", 1.0, "ad")
