from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

from cds_service.charts.snapshot import Payload, chart_payload
from cds_service.config import Settings
from cds_service.pipeline import Answer, Runtime, call_service
from tests.charts.requests import FIXTURE_NOW, patient, request
from tests.conftest import RULES

Ask = Callable[..., Awaitable[Answer]]
CHART = "mas-course"


def payload_of(runtime: Runtime, answer: Answer, chart: str = CHART) -> Payload:
    """What the chart shows of the answer's request."""
    ruleset = runtime.engine.ruleset
    weight = answer.evaluation.facts["patient.weight"]
    return chart_payload(
        ruleset.charts[chart], ruleset.catalog, answer.facts, weight, answer.evaluation.facts
    )


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    runtime = Runtime.create(Settings(rules_dir=RULES))
    yield runtime
    await runtime.aclose()


@pytest.fixture
def ask(runtime: Runtime) -> Ask:
    """ask("ferritin-rising", order) -> the pipeline's Answer at the fixtures' time."""

    async def answer(
        name: str,
        order: dict[str, Any] | None = None,
        service: str = "anakinra-order-sign",
        resources: list[dict[str, Any]] | None = None,
    ) -> Answer:
        body = request(service, resources if resources is not None else patient(name), order)
        return await call_service(
            runtime, service, orjson.dumps(body), now=FIXTURE_NOW, public_url="https://cds.example.org/"
        )

    return answer
