"""The rule playground: pick a synthetic patient and a draft order (or paste any hook request), and see
the cards as an EHR would show them, what accepting each suggestion does to the order, and why every
rule fired, did not, or could not evaluate.

It is not a clinical call: nothing is fetched from an EHR (the request's FHIR server and token are
removed, so only its prefetch counts), and no card or audit row is recorded, so the feedback report
stays about real use. Chart snapshots are saved, or the chart links on the cards would not open.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from cds_service.data.compose import hook_request
from cds_service.engine import Evaluation
from cds_service.engine.explain import describe_fact, explain_json
from cds_service.facts.time import in_calendar
from cds_service.pages import fixtures
from cds_service.pages.html import HEADERS, page
from cds_service.pages.markdown import to_html
from cds_service.pages.orders import action_view, draft_orders
from cds_service.pipeline import Answer, Runtime, call_service
from cds_service.protocol.body import read_json_body
from cds_service.protocol.capture import captured_body
from cds_service.protocol.outcome import ProblemError

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

# The playground's requests never reach an EHR: these two members are how a request would.
EHR_ACCESS = ("fhirServer", "fhirAuthorization")
PLAYGROUND_USER = "Practitioner/playground"
_STATUS_REASON = {"fired": "fired", "not-fired": "the condition is certainly false"}


@router.get("/playground")
async def playground_page(request: Request) -> HTMLResponse:
    runtime: Runtime = request.app.state.runtime
    folder = fixtures.fixtures_dir(runtime.settings.rules_dir)
    return page(
        "playground.html",
        patients=await run_in_threadpool(fixtures.patients, folder),
        orders=fixtures.order_presets(folder),
        saved=fixtures.saved_requests(folder),
        services=list(runtime.services),
        chart_ttl_hours=runtime.settings.chart_ttl_hours,
    )


@router.get("/playground/api/fixtures")
async def list_fixtures(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    folder = fixtures.fixtures_dir(runtime.settings.rules_dir)
    patients = await run_in_threadpool(fixtures.patients, folder)
    return _json(
        {
            "patients": [
                {
                    "key": p.key,
                    "label": p.label,
                    "patientId": p.patient_id,
                    "name": p.name,
                    "sex": p.sex,
                    "age": p.age,
                    "asOf": _iso(p.as_of),
                }
                for p in patients
            ],
            "services": [{"id": s.id, "hook": s.hook, "title": s.title} for s in runtime.services],
            "orders": [{"key": o.key, "label": o.label} for o in fixtures.order_presets(folder)],
            "saved": fixtures.saved_requests(folder),
        }
    )


@router.get("/playground/api/request")
async def build_request(
    request: Request,
    patient: str | None = None,
    service: str | None = None,
    order: str | None = None,
    saved: str | None = None,
) -> Response:
    """The hook request for a fixture patient, a service and an order preset, or a saved request; with
    the time to evaluate it as of."""
    runtime: Runtime = request.app.state.runtime
    folder = fixtures.fixtures_dir(runtime.settings.rules_dir)
    if saved:
        raw = fixtures.saved_request(folder, saved)
        if raw is None:
            raise ProblemError.single(404, f"no saved request {saved!r}")
        document = orjson.loads(raw)
        return _json({"request": document, "asOf": _iso(fixtures.default_as_of(document))})
    definition = runtime.services.get(service or "")
    if definition is None:
        raise ProblemError.single(404, f"no CDS service with id {service!r}")
    resources = fixtures.patient_resources(folder, patient or "")
    if resources is None:
        raise ProblemError.single(404, f"no fixture patient {patient!r}")
    preset = None
    if order:
        preset = next((o for o in fixtures.order_presets(folder) if o.key == order), None)
        if preset is None:
            raise ProblemError.single(404, f"no order preset {order!r}")
    if definition.hook == "order-select" and preset is None:
        # The hook's context must select an order; say so now rather than after evaluating.
        raise ProblemError.single(400, "order-select needs a draft order to select: choose one", "order")
    body = hook_request(
        definition,
        resources,
        preset.resource if preset and definition.hook in ("order-sign", "order-select") else None,
        str(uuid.uuid4()),
        PLAYGROUND_USER,
    )
    return _json({"request": body, "asOf": _iso(fixtures.default_as_of(resources))})


@router.post("/playground/api/evaluate")
async def evaluate(request: Request, service: str | None = None, as_of: str | None = None) -> Response:
    """Evaluate a hook request (or a captured exchange holding one in `body`) from its prefetch only.
    Refusals come back as the service would send them: the same status and OperationOutcome."""
    runtime: Runtime = request.app.state.runtime
    raw = await read_json_body(
        request,
        runtime.settings.max_body_bytes,
        runtime.settings.body_timeout_seconds,
        empty="the request is empty: build one or paste one",
    )
    # Decoding, re-encoding and explaining a body of megabytes is CPU work: off the event loop.
    document, removed, service_id, moment, encoded = await runtime.off_loop(
        _prepared, runtime, raw, service, as_of
    )
    # Chart links on the cards point at the configured public URL: the Host header is the caller's.
    answer = await call_service(
        runtime, service_id, encoded, now=moment, public_url=runtime.settings.base_url
    )
    warnings = []
    try:
        await run_in_threadpool(request.app.state.store.save_charts, answer.charts)
    except Exception:
        log.exception("playground: chart snapshots could not be saved")
        warnings.append("The chart links on these cards will not open: the database is unavailable.")
    definition = runtime.services.get(service_id)
    shown = await runtime.off_loop(_shown, answer, document)
    return _json(
        {
            "service": {"id": service_id, "hook": definition.hook if definition else None},
            "asOf": _iso(moment),
            "removed": removed,
            "warnings": warnings,
            **shown,
        }
    )


def _prepared(
    runtime: Runtime, raw: bytes, service: str | None, as_of: str | None
) -> tuple[dict[str, Any], list[str], str, datetime, bytes]:
    """The hook request in `raw` without what would let the service reach an EHR, the service it is
    for, the time to evaluate it at, and its bytes as the service will read them."""
    document = _hook_request(raw)
    removed = [key for key in EHR_ACCESS if key in document]
    for key in removed:
        del document[key]
    service_id = service or runtime.services.for_hook(document.get("hook"), "choose a service")
    moment = _moment(as_of) if as_of else fixtures.default_as_of(document)
    return document, removed, service_id, moment, _encoded(document)


def _shown(answer: Answer, document: dict[str, Any]) -> dict[str, Any]:
    return {
        "cards": _cards(answer, draft_orders(document)),
        "explanation": explanation(answer.evaluation),
        "response": orjson.loads(answer.body),
    }


def explanation(evaluation: Evaluation) -> dict[str, Any]:
    """explain_json, with each rule's title, a one-line reason and each fact as one readable line."""
    explained = explain_json(evaluation)
    for row, outcome in zip(explained["rules"], evaluation.outcomes, strict=True):
        spec = outcome.rule.spec
        row["title"] = spec.title
        if outcome.status == "unknown":
            missing = evaluation.missing_for(outcome) or "a fact it needs is missing"
            silence = "" if spec.unknown.card is not None else f"; no card: {spec.unknown.silent}"
            row["reason"] = f"could not evaluate: {missing}{silence}"
        elif outcome.status == "fired":
            card = f"{row['card']} card" if row["card"] else "no card"
            variant = f" (variant {outcome.variant + 1})" if outcome.variant is not None else ""
            row["reason"] = f"the condition holds: {card}{variant}"
        else:
            row["reason"] = _STATUS_REASON[outcome.status]
        response = row.get("response")
        if response and (response["fate"] != "shown" or response["notRecommendedBy"]):
            row["reason"] += f"; {response['why']}"
        facts = outcome.facts_read(evaluation.facts)
        for fact_row, fact in zip(row["facts"], facts, strict=True):
            fact_row["text"] = describe_fact(fact)
    return explained


def _cards(answer: Answer, drafts: dict[str, Any]) -> list[dict[str, Any]]:
    views = []
    for card in orjson.loads(answer.body)["cards"]:
        provenance = (card.get("extension") or {}).get("cds-service-provenance") or {}
        views.append(
            {
                "card": card,
                "detailHtml": to_html(card.get("detail")),
                "rule": {"id": provenance.get("ruleId"), "version": provenance.get("ruleVersion")}
                if provenance
                else None,
                # A card merging several rules' cards: each rule it speaks for, and the merge's name.
                "speaksFor": [
                    {"id": r.get("ruleId"), "version": r.get("ruleVersion")}
                    for r in provenance.get("rules") or ()
                ],
                "mergedInto": (provenance.get("mergedInto") or {}).get("id"),
                "suggestions": [
                    {
                        "uuid": suggestion.get("uuid"),
                        "actions": [action_view(a, drafts) for a in suggestion.get("actions") or ()],
                    }
                    for suggestion in card.get("suggestions") or ()
                ],
            }
        )
    return views


def _hook_request(raw: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProblemError.single(400, f"the request is not valid JSON: {exc}") from None
    document = captured_body(document)
    if not isinstance(document, dict):
        raise ProblemError.single(400, "a hook request is a JSON object")
    return document


def _encoded(document: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:  # deeper than orjson writes: what it read at 255 levels, inside "body"
        raise ProblemError.single(400, "the request is nested too deeply to evaluate") from None


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ProblemError.single(400, f"as_of {text!r} is not an ISO 8601 time") from None
    # The page's datetime-local input has no zone; the page labels it UTC.
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    if not in_calendar(moment):  # as the facts read times (facts/time.py); year 1 overflowed a lookback
        raise ProblemError.single(400, f"as_of {text!r} is outside the years 1800-2199", "as_of")
    return moment


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json(document: Any) -> Response:
    # API answers carry the pages' headers too: no caching of patient data, not even synthetic.
    return Response(orjson.dumps(document, default=str), media_type="application/json", headers=dict(HEADERS))
