"""Rules-engine time per request with the whole rule pack, stage by stage.

    python bench/engine_time.py [--iterations N]

Prints figures; it asserts nothing. The request is every case in rules/*.cases.yaml (each a patient
fixture plus a draft order), so the measured path is the one the rule tests exercise. Stages:
  named facts  Facts -> the clinically named facts (units converted with UCUM, orders normalised)
  calculations the calculated facts (renal, infusion, hlh...), in total and one by one
  flatten      named facts -> the one durable-rules fact
  durable      assert + drain actions, on the engine thread (includes the thread hop)
  durable-raw  the same, called directly on this thread (the hop's cost is the difference)
  whole call   call_service: parse, prefetch, facts, rules, cards, serialisation
"""

from __future__ import annotations

import argparse
import asyncio
import gc
from pathlib import Path

import orjson
from timing import summary, timed, timed_async

from cds_service.cases import LoadedCase, load_cases, request_body
from cds_service.config import Settings
from cds_service.data.prefetch import gather_data
from cds_service.facts.build import build_facts
from cds_service.facts.derive import named_facts
from cds_service.pipeline import Runtime, call_service
from cds_service.protocol.request import parse_hook_request

ROOT = Path(__file__).resolve().parent.parent


async def measure(runtime: Runtime, loaded: LoadedCase, share: int) -> dict[str, list[float]]:
    ruleset = runtime.engine.ruleset
    durable = runtime.engine.durable
    service = ruleset.services.get(loaded.case.service)
    assert service is not None
    medication = service.medication
    body = request_body(loaded, ruleset)
    request = parse_hook_request(body, service.hook)
    data = await gather_data(service, request, runtime.upstreams.for_issuer(None), runtime.fetch)
    facts = build_facts(service, request, data, now=loaded.case.now)
    named = named_facts(ruleset.catalog, facts, medication)
    base = dict(named)
    ruleset.calculations.compute(named, facts, ruleset.catalog.specs)
    flat = ruleset.fields.flatten(named)
    compiled = ruleset.by_service[service.id].engine_rules
    now = loaded.case.now
    stages = {
        "orjson.loads floor": timed(lambda: orjson.loads(body), share),
        "named facts": timed(lambda: named_facts(ruleset.catalog, facts, medication), share),
        "calculations": timed(
            lambda: ruleset.calculations.compute(dict(base), facts, ruleset.catalog.specs), share
        ),
        "flatten": timed(lambda: ruleset.fields.flatten(named), share),
        "durable (engine thread)": await timed_async(lambda: durable.evaluate_async(compiled, flat), share),
        "durable-raw (this thread)": timed(lambda: durable._evaluate(compiled, flat), share),
        "rules: engine.evaluate": timed(lambda: runtime.engine.evaluate(service, named, ruleset), share),
        "whole call": await timed_async(lambda: call_service(runtime, service.id, body, now=now), share),
    }
    for name, step in ruleset.calculations.steps:
        stages[f"  calculation {name}"] = timed(lambda step=step: step.compute(named, facts), share)  # type: ignore[misc]
    return stages


async def main(iterations: int) -> None:
    runtime = Runtime.create(Settings(rules_dir=ROOT / "rules"))
    ruleset = runtime.engine.ruleset
    gc.collect()
    gc.freeze()
    cases = load_cases(ruleset.directory)
    print(f"ruleset {ruleset.name} {ruleset.version}: {len(ruleset.rules)} rules, {len(cases)} cases")
    stages: dict[str, list[float]] = {}
    share = max(1, iterations // len(cases))
    for loaded in cases:
        for name, samples in (await measure(runtime, loaded, share)).items():
            stages.setdefault(name, []).extend(samples)
    for name, samples in stages.items():
        print(f"{name:28s} {summary(samples)}   (n={len(samples)})")
    await runtime.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=3000)
    asyncio.run(main(parser.parse_args().iterations))
