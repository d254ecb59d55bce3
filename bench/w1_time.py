"""In-process time of workload W1 (bench/w1.py), stage by stage, as a ratio to reading the body.

    python bench/w1_time.py [--iterations N]

Prints figures; it asserts nothing. The floor is `orjson.loads` of the same ~160 KB body in the same
run: no service can answer without reading its request, and the ratio survives the machine's noise
better than microseconds do. Stages, in the order a request goes through them:
  decode         body -> the hook request (orjson, msgspec for prefetch Bundles)
  prefetch       prefetch handling (every key is present: nothing is fetched)
  facts          observation hygiene, filing by code, orders, conditions
  named facts    the clinically named facts (units converted with UCUM)
  calculations   renal, infusion, hlh, ferritin... facts
  rules          flatten + durable-rules on its engine thread
  cards          the CDS Hooks response model, with the chart snapshots its links need
  serialise      the response body
  total          call_service, end to end (the sum above, measured as one)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from timing import summary, timed, timed_async
from w1 import w1_body

from cds_service.cards.render import render_response
from cds_service.charts.links import ChartLinks
from cds_service.config import Settings
from cds_service.data.prefetch import gather_data
from cds_service.facts.build import build_facts
from cds_service.facts.derive import named_facts
from cds_service.facts.model import Facts
from cds_service.pipeline import Runtime, call_service
from cds_service.protocol.request import parse_hook_request

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SERVICE = "anakinra-order-sign"


async def measure(iterations: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            rules_dir=ROOT / "rules",
            database_url=f"sqlite:///{tmp}/bench.db",
            reload_interval_seconds=0,
            insecure_no_auth=True,
        )
        runtime = Runtime.create(settings)
        try:
            return await _stages(runtime, iterations)
        finally:
            await runtime.aclose()


async def _stages(runtime: Runtime, n: int) -> dict[str, list[float]]:
    body = w1_body(NOW)
    ruleset = runtime.engine.ruleset
    service = ruleset.services.get(SERVICE)
    assert service is not None
    request = parse_hook_request(body, service.hook)
    data = await gather_data(service, request, runtime.upstreams.for_issuer(None), runtime.fetch)
    facts = build_facts(service, request, data, now=NOW)
    named = named_facts(ruleset.catalog, facts, service.medication)
    base = dict(named)
    ruleset.calculations.compute(named, facts, ruleset.catalog.specs)
    compiled = ruleset.by_service[service.id].engine_rules
    durable = runtime.engine.durable
    evaluation = runtime.engine.evaluate(service, named, ruleset)

    def fresh(facts: Facts) -> Facts:
        facts.memo.clear()
        return facts

    def cards() -> object:
        # As call_service renders them: chart links included, each chart's snapshot built once.
        links = ChartLinks(
            ruleset.charts,
            ruleset.catalog,
            facts,
            "https://cds.example.org",
            timedelta(hours=12),
            named["patient.weight"],
        )
        return render_response(service, fresh(facts), evaluation, charts=links)

    response = render_response(service, facts, evaluation).response
    # What a long-running worker does after start-up: the rules and models are loaded for good.
    gc.collect()
    gc.freeze()
    return {
        "orjson.loads floor": timed(lambda: orjson.loads(body), n),
        "decode": timed(lambda: parse_hook_request(body, service.hook), n),
        "prefetch": await timed_async(
            lambda: gather_data(service, request, runtime.upstreams.for_issuer(None), runtime.fetch), n
        ),
        "facts": timed(lambda: build_facts(service, request, data, now=NOW), n),
        # Each stage starts from an empty per-request memo (Facts.memo), as in a call.
        "named facts": timed(lambda: named_facts(ruleset.catalog, fresh(facts), service.medication), n),
        "calculations": timed(
            lambda: ruleset.calculations.compute(dict(base), fresh(facts), ruleset.catalog.specs), n
        ),
        "rules": await timed_async(
            lambda: durable.evaluate_async(compiled, ruleset.fields.flatten(named)), n
        ),
        "cards": timed(cards, n),
        "serialise": timed(response.body, n),
        "total": await timed_async(lambda: call_service(runtime, SERVICE, body, now=NOW), n),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=500)
    args = parser.parse_args()
    print(f"W1: {len(w1_body(NOW)):,} bytes; {args.iterations} iterations per stage")
    stages = asyncio.run(measure(args.iterations))
    floor = sorted(stages["orjson.loads floor"])[len(stages["orjson.loads floor"]) // 2]
    for name, samples in stages.items():
        median = sorted(samples)[len(samples) // 2]
        print(f"{name:20s} {summary(samples)}   {median / floor:6.2f}x floor")


if __name__ == "__main__":
    main()
