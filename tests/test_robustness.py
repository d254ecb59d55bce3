"""No client input makes the service fail: every value in a real request replaced by odd JSON.

A systematic sweep (every path of the sandbox capture x a set of odd values) rather than random
fuzzing, so that a failure names the exact path and value and reproduces every time.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

from cds_service.config import Settings
from cds_service.pipeline import Runtime, call_service
from cds_service.protocol.outcome import ProblemError
from tests.conftest import RULES
from tests.invariants import response_problems
from tests.test_app import sandbox_order_sign

ODD_VALUES: list[Any] = [
    None,
    0,
    -1e308,
    1e308,
    True,
    "",
    "x" * 10_000,
    "\u0000\ud7ff",
    [],
    [None],
    {},
    {"a": [{}]},
]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copied = copy.deepcopy(document)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copied


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    runtime = Runtime.create(Settings(rules_dir=RULES, fetch_deadline_seconds=0.2, fetch_allow_private=True))
    yield runtime
    await runtime.aclose()


@pytest.mark.parametrize("service_id", ["anakinra-order-sign", "anakinra-order-select", "mas-patient-view"])
async def test_every_path_with_every_odd_value_is_answered_or_refused(
    runtime: Runtime, service_id: str
) -> None:
    base = sandbox_order_sign()
    base["hook"] = runtime.services.get(service_id).hook  # type: ignore[union-attr]
    base["context"]["selections"] = ["MedicationRequest/request-123"]
    base["fhirServer"] = "http://127.0.0.1:9/fhir"  # nothing listens: fetches fail fast
    failures = []
    for path in paths(base):
        for value in ODD_VALUES:
            body = orjson.dumps(replaced(base, path, value))
            try:
                answer = await call_service(runtime, service_id, body)
            except ProblemError as problem:
                if problem.status not in (400, 404, 412, 413, 415):
                    failures.append((path, value, problem.status))
                continue
            except Exception as exc:  # noqa: BLE001 - the point is to catch anything
                failures.append((path, value, repr(exc)))
                continue
            problems = response_problems(orjson.loads(answer.body))
            if problems:
                failures.append((path, value, problems))
    assert failures == []


async def test_deeply_nested_json_is_refused_not_crashed(runtime: Runtime) -> None:
    depth = 100_000
    nested = b'{"a":' * depth + b"{}" + b"}" * depth
    body = orjson.dumps(sandbox_order_sign()).replace(
        b'"context":{', b'"context":{"extra":' + nested + b",", 1
    )
    with pytest.raises(ProblemError) as refused:
        await call_service(runtime, "anakinra-order-sign", body)
    assert refused.value.status == 400
    assert "JSON" in str(refused.value)
