"""How long one request holds the event loop, for requests at the 5 MB body limit.

    python bench/loop_block.py [--distinct-units 2000] [--only NAME,...]

While a worker's event loop runs one callback, nothing else on that worker moves: no other request,
not /healthz. The service (create_app: authentication off, playground on, SQLite in a temporary
directory, its lifespan run) is driven in process through httpx's ASGI transport on an asyncio loop
whose every callback is timed; for each request the longest callback is "held" (the target in issue 18
is 50 ms). For the hook calls, the stages of call_service are also timed one by one on the same body:
all but the rules engine (on its own thread) and the database writes (a thread) run on the loop.

Requests (each body at most 5 MB, the default limit):
  W1 as an EHR sends it      bench/ehr_request.py, 171 KB
  observations               16,000 compact Observations in W1's mix (bench/growth.py)
  orders                     MedicationRequests in the medications prefetch, to the limit
  conditions                 Conditions, to the limit
  draft orders               draft MedicationRequests in context.draftOrders, to the limit
  one long unit              16,000 Observations sharing one 1,000-character unit UCUM cannot parse
  distinct units             --distinct-units Observations, each with its own UCUM-like unit of up to
                             64 characters (every one is parsed once); the time per result says what a
                             body of them at the limit would cost
  playground                 the observations body through /playground/api/evaluate
  chart page                 the page behind the ferritin chart link of the observations answer
  feedback                   feedback items on unknown cards, to the limit
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from ehr_request import ehr_body
from growth import UNKNOWN_1000, conditions, observation, observations, orders
from w1 import w1_request

from cds_service.app import create_app
from cds_service.cards.render import render_response
from cds_service.charts.links import ChartLinks
from cds_service.config import Settings
from cds_service.data.prefetch import gather_data
from cds_service.facts.build import build_facts
from cds_service.facts.derive import named_facts
from cds_service.pipeline import Runtime
from cds_service.protocol.request import parse_hook_request

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "anakinra-order-sign"
LIMIT = 5 * 1024 * 1024
TARGET_MS = 50.0


class _Held:
    """The longest callback the loop ran since the last reset."""

    longest = 0.0

    @classmethod
    @contextlib.contextmanager
    def timing(cls) -> Iterator[None]:
        original = asyncio.events.Handle._run

        def timed(handle: asyncio.events.Handle) -> None:
            started = time.perf_counter()
            original(handle)
            cls.longest = max(cls.longest, time.perf_counter() - started)

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]
        try:
            yield
        finally:
            asyncio.events.Handle._run = original  # type: ignore[method-assign]


def _request(now: datetime, **prefetch: Any) -> dict[str, Any]:
    request = w1_request(now)
    for key, resources in prefetch.items():
        request["prefetch"][key] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in resources],
        }
    return request


def _to_limit(make: Callable[[int], bytes], start: int) -> tuple[bytes, int]:
    """The largest body `make(n)` under the limit, n growing by a tenth."""
    n, body = start, make(start)
    while True:
        bigger = make(int(n * 1.1))
        if len(bigger) > LIMIT:
            return body, n
        n, body = int(n * 1.1), bigger


def _draft_orders(now: datetime, n: int) -> bytes:
    request = w1_request(now)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    request["context"]["draftOrders"]["entry"] = [
        {"resource": {**draft, "id": f"draft-{index}"}} for index in range(n)
    ]
    return orjson.dumps(request)


def _distinct_units(now: datetime, n: int) -> bytes:
    # UCUM-like, so that the parser works at each: mg/dL.mg/dL... cut at a length from 24 to 64, a
    # number at the end making each distinct.
    labs = []
    for index in range(n):
        unit = (("mg/dL." * 11)[: 24 + index % 40] + f"{index}?")[-64:]
        labs.append(observation(index, "2160-0", unit, 1.2, 2 + index * 0.2))
    return orjson.dumps(_request(now, labs=labs))


def _feedback(n: int) -> bytes:
    stamp = "2026-11-23T12:00:00Z"
    items = [
        {"card": f"00000000-0000-4000-8000-{index:012d}", "outcome": "overridden", "outcomeTimestamp": stamp}
        for index in range(n)
    ]
    return orjson.dumps({"feedback": items})


async def stages(runtime: Runtime, body: bytes, now: datetime) -> dict[str, float]:
    """Milliseconds per stage of call_service on `body`, each stage run once, in order."""
    ruleset = runtime.engine.ruleset
    service = ruleset.services.get(SERVICE)
    assert service is not None
    out: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = fn()
        out[name] = (time.perf_counter() - started) * 1000
        return result

    request = timed("decode", lambda: parse_hook_request(body, service.hook))
    started = time.perf_counter()
    data = await gather_data(service, request, runtime.upstreams.for_issuer(None), runtime.fetch)
    out["prefetch"] = (time.perf_counter() - started) * 1000
    facts = timed("facts", lambda: build_facts(service, request, data, now=now))
    named = timed("named facts", lambda: named_facts(ruleset.catalog, facts, service.medication))
    timed("calculations", lambda: ruleset.calculations.compute(named, facts, ruleset.catalog.specs))
    flat = timed("flatten", lambda: ruleset.fields.flatten(named))
    compiled = ruleset.by_service[service.id].engine_rules
    started = time.perf_counter()
    await runtime.engine.durable.evaluate_async(compiled, flat)
    out["rules (engine thread)"] = (time.perf_counter() - started) * 1000
    evaluation = runtime.engine.evaluate(service, named, ruleset)

    def cards() -> Any:
        links = ChartLinks(
            ruleset.charts,
            ruleset.catalog,
            facts,
            "https://cds.example.org",
            timedelta(hours=12),
            named["patient.weight"],
        )
        return render_response(service, facts, evaluation, charts=links).response

    response = timed("cards and charts", cards)
    timed("serialise", response.body)
    return out


async def main(now: datetime, ehr: bytes, distinct: int, only: set[str] | None) -> None:
    observations_body = orjson.dumps(_request(now, labs=observations(16_000)))
    hooks: dict[str, bytes] = {"W1 as an EHR sends it": ehr, "observations": observations_body}
    body, n = _to_limit(lambda k: orjson.dumps(_request(now, medications=orders(k))), 2000)
    hooks[f"orders ({n:,})"] = body
    body, n = _to_limit(lambda k: orjson.dumps(_request(now, conditions=conditions(k))), 2000)
    hooks[f"conditions ({n:,})"] = body
    body, n = _to_limit(lambda k: _draft_orders(now, k), 2000)
    hooks[f"draft orders ({n:,})"] = body
    long_unit = [observation(i, "2276-4", UNKNOWN_1000, 900.0, 2 + i * 0.04) for i in range(4_000)]
    hooks["one long unit (4,000 results)"] = orjson.dumps(_request(now, labs=long_unit))
    hooks[f"distinct units ({distinct:,} results)"] = _distinct_units(now, distinct)
    feedback, items = _to_limit(_feedback, 2000)
    if only:
        hooks = {name: body for name, body in hooks.items() if name.split(" (")[0] in only}

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            rules_dir=ROOT / "rules",
            database_url=f"sqlite:///{tmp}/loop.db",
            reload_interval_seconds=0,
            insecure_no_auth=True,
            playground=True,
            public_url="http://testserver",
        )
        app = create_app(settings, clock=lambda: now)
        transport = httpx.ASGITransport(app=app)
        rows: list[tuple[str, int, float, float, int]] = []
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=600) as client,
        ):
            runtime: Runtime = app.state.runtime
            headers = {"content-type": "application/json"}

            async def held(name: str, send: Callable[[], Any]) -> httpx.Response:
                _Held.longest = 0.0
                started = time.perf_counter()
                response = await send()
                rows.append(
                    (
                        name,
                        len(sent[name]),
                        _Held.longest * 1000,
                        (time.perf_counter() - started) * 1000,
                        response.status_code,
                    )
                )
                print(f"  {name}: held {_Held.longest * 1000:,.0f} ms", file=sys.stderr, flush=True)
                return response

            sent: dict[str, bytes] = {}
            with _Held.timing():
                # Warm: the UCUM registry and the chart code load on first use, once per worker.
                await client.post(f"/cds-services/{SERVICE}", content=ehr, headers=headers)
                for name, body in hooks.items():
                    sent[name] = body
                    response = await held(
                        name,
                        lambda b=body: client.post(f"/cds-services/{SERVICE}", content=b, headers=headers),
                    )
                    if name == "observations" and response.status_code == 200:
                        links = [
                            link["url"]
                            for card in response.json()["cards"]
                            for link in card.get("links", [])
                            if "/charts/" in link["url"]
                        ]
                        if links:
                            sent["chart page"] = b""
                            await held(
                                "chart page",
                                lambda url=links[0]: client.get(url.replace("http://testserver", "")),
                            )
                if not only or "playground" in only:
                    sent["playground (observations)"] = observations_body
                    await held(
                        "playground (observations)",
                        lambda: client.post(
                            "/playground/api/evaluate", content=observations_body, headers=headers
                        ),
                    )
                if not only or "feedback" in only:
                    sent[f"feedback ({items:,} items)"] = feedback
                    await held(
                        f"feedback ({items:,} items)",
                        lambda: client.post(
                            f"/cds-services/{SERVICE}/feedback", content=feedback, headers=headers
                        ),
                    )
            breakdown = {name: await stages(runtime, body, now) for name, body in hooks.items()}

    print(
        f"Longest single hold of the event loop per request (target {TARGET_MS:g} ms); asyncio loop, in process"
    )
    print()
    print("| request | body | held | whole request | status |")
    print("|---|---|---|---|---|")
    for name, size, longest, whole, status in rows:
        mark = " **over**" if longest > TARGET_MS else ""
        print(f"| {name} | {size / 1e6:.2f} MB | {longest:,.0f} ms{mark} | {whole:,.0f} ms | {status} |")
    print()
    names = list(next(iter(breakdown.values())))
    print("Stages of call_service on the same bodies, ms (all on the loop except the rules engine's thread)")
    print()
    print("| request | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for name, figures in breakdown.items():
        print(f"| {name} | " + " | ".join(f"{figures[stage]:,.1f}" for stage in names) + " |")
    for name, size, longest, _, _ in rows:
        if name.startswith("distinct units"):
            print()
            print(
                f"distinct units: {longest / distinct:.2f} ms held per result the first time its unit is seen "
                f"(the stages above ran with the units already parsed); a 5 MB body holds about "
                f"{int(distinct * LIMIT / size):,} such results"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--distinct-units", type=int, default=2000)
    parser.add_argument("--only", help="comma-separated request names (the part before any parenthesis)")
    args = parser.parse_args()
    chosen = set(args.only.split(",")) if args.only else None
    moment = datetime.now(UTC).replace(second=0, microsecond=0)
    asyncio.run(main(moment, ehr_body(moment), args.distinct_units, chosen))
