"""The FastAPI application: routes, error bodies, CORS and start-up."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_service import __version__
from cds_service.config import Settings
from cds_service.data.upstream import ALLOW_PRIVATE_WARNING
from cds_service.pages import include_pages
from cds_service.pipeline import Runtime, call_service
from cds_service.protocol.body import read_json_body
from cds_service.protocol.feedback import FeedbackItem, bound_feedback, parse_feedback
from cds_service.protocol.outcome import ProblemError
from cds_service.reload import Reloader, watching
from cds_service.security.guard import INSECURE_WARNING, Guard, Unauthorized, keys_client
from cds_service.security.refusals import Refusals
from cds_service.security.verify import Caller
from cds_service.store.database import AuditRow, ChartSnapshot, FeedbackRow, IssuedCard, Store, StoreError
from cds_service.store.writer import Writer

log = logging.getLogger("cds_service")
JSON = "application/json"

_SERVICE_CALL_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {
                "schema": {
                    "type": "object",
                    "required": ["hook", "hookInstance", "context"],
                    "properties": {
                        "hook": {"type": "string"},
                        "hookInstance": {"type": "string", "format": "uuid"},
                        "fhirServer": {"type": "string", "format": "uri"},
                        "fhirAuthorization": {"type": "object"},
                        "context": {"type": "object"},
                        "prefetch": {"type": "object"},
                    },
                }
            }
        },
    }
}
_FEEDBACK_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {
                "schema": {
                    "type": "object",
                    "required": ["feedback"],
                    "properties": {"feedback": {"type": "array", "items": {"type": "object"}}},
                }
            }
        },
    }
}


def create_app(settings: Settings | None = None, clock: Callable[[], datetime] | None = None) -> FastAPI:
    """The service. `clock` is the time service calls are evaluated at (the wall clock by default)."""
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.create(settings)
        if clock is not None:
            runtime.clock = clock
        store = Store(settings.database_url)
        writer = Writer(store)
        keys = keys_client()
        try:
            guard = Guard.create(settings, writer, keys)
        except BaseException:
            await runtime.aclose()
            await keys.aclose()
            writer.close()
            store.close()
            raise
        reloader = Reloader(runtime.engine, settings.rules_dir)
        app.state.runtime = runtime
        app.state.store = store
        app.state.writer = writer
        app.state.reloader = reloader
        app.state.guard = guard
        app.state.refusals = refusals = Refusals()
        app.state.health = _Health(store, settings.health_write_seconds)
        # Everything loaded at start-up lives for the whole process: move it out of the cyclic GC's
        # reach, or each collection walks it again and shows up as tail latency.
        gc.collect()
        gc.freeze()
        ruleset = runtime.engine.ruleset
        log.info(
            "serving %d services from %s (ruleset %s %s, sha256 %s), database %s",
            len(runtime.services.services),
            settings.rules_dir,
            ruleset.name,
            ruleset.version,
            ruleset.hash[:12],
            store.safe_url,
        )
        for warning in ruleset.warnings:
            log.warning("%s", warning)
        if settings.fetch_allow_private:
            log.warning("%s", ALLOW_PRIVATE_WARNING)
        purging = asyncio.create_task(_purge_periodically(store, settings))
        counting = asyncio.create_task(_write_refusals_periodically(store, refusals, settings))
        try:
            async with watching(reloader, settings.reload_interval_seconds):
                yield
        finally:
            purging.cancel()
            counting.cancel()
            await _write_refusals(store, refusals)
            await runtime.aclose()
            await keys.aclose()
            writer.close()
            store.close()

    app = FastAPI(
        title="CDS Hooks service",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    # Inside CORS, so that a 500 carries the CORS headers like any other answer.
    app.add_middleware(_UnexpectedErrors)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    _add_error_handlers(app)
    include_pages(app, settings)

    @app.get("/cds-services", summary="CDS Hooks discovery")
    async def discovery(request: Request) -> Response:
        async with _Call(request, "discovery") as call:
            await call.authenticate("/cds-services")
            call.audit.status = 200
            return Response(request.app.state.runtime.services.discovery_body, media_type=JSON)

    @app.post("/cds-services/{service_id}", summary="Call a CDS service", openapi_extra=_SERVICE_CALL_SCHEMA)
    async def service_call(service_id: str, request: Request) -> Response:
        async with _Call(request, "service", service_id) as call:
            caller = await call.authenticate(f"/cds-services/{service_id}")
            runtime: Runtime = request.app.state.runtime
            body = await read_json_body(request, settings.max_body_bytes, settings.body_timeout_seconds)
            guard: Guard = request.app.state.guard
            answer = await call_service(
                runtime, service_id, body, public_url=settings.base_url, issuer=guard.issuer(caller)
            )
            call.answered(answer)
            return Response(answer.body, media_type=JSON)

    @app.post(
        "/cds-services/{service_id}/feedback", summary="Feedback on cards", openapi_extra=_FEEDBACK_SCHEMA
    )
    async def feedback(service_id: str, request: Request) -> Response:
        async with _Call(request, "feedback", service_id) as call:
            await call.authenticate(f"/cds-services/{service_id}/feedback")
            runtime: Runtime = request.app.state.runtime
            if runtime.services.get(service_id) is None:
                raise ProblemError.single(404, f"no CDS service with id {service_id!r}")
            body = await read_json_body(request, settings.max_body_bytes, settings.body_timeout_seconds)
            # Decoding and binding thousands of items is CPU work: on the compute thread, off the loop.
            items = await runtime.off_loop(parse_feedback, body)
            store: Store = request.app.state.store
            try:
                owners = await run_in_threadpool(store.card_owners, [item.card_uuid for item in items])
            except Exception as exc:
                log.exception("feedback for %s could not be checked", service_id)
                raise ProblemError.single(
                    503, "feedback could not be stored; nothing was recorded, please retry"
                ) from exc
            issuer = call.audit.issuer
            bound = await runtime.off_loop(bound_feedback, items, owners, service_id, issuer)
            rows = await runtime.off_loop(
                _feedback_rows, bound, service_id, issuer, received_at=datetime.now(UTC)
            )
            try:
                stored = await run_in_threadpool(store.record_feedback, rows)
            except Exception as exc:
                log.exception("feedback for %s could not be stored", service_id)
                raise ProblemError.single(
                    503, "feedback could not be stored; nothing was recorded, please retry"
                ) from exc
            call.note = f"feedback items={len(rows)} new={stored}"
            await call.feedback_on(rows)
            call.audit.status = 200
            return Response(status_code=200)

    @app.get("/healthz", summary="Liveness and readiness")
    async def healthz(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        # Cards are still answered without the database, so the service stays up (200) and says
        # what is degraded: feedback cannot be acknowledged until the database is back.
        database = await request.app.state.health.database()
        ruleset = runtime.engine.ruleset
        reload_state = request.app.state.reloader.state
        rules: dict[str, object] = {"name": ruleset.name, "version": ruleset.version, "hash": ruleset.hash}
        if reload_state.rejected_hash:
            # A broken edit is visible here, while the last good ruleset keeps serving.
            rules["rejected"] = {
                "hash": reload_state.rejected_hash,
                "errors": list(reload_state.rejected_errors),
            }
        body = {
            "status": "ok",
            "services": len(runtime.services.services),
            "database": database,
            "rules": rules,
            "process": os.getpid(),  # which worker answered: each worker reloads its rules itself
        }
        return Response(orjson.dumps(body), media_type=JSON)

    return app


def _feedback_rows(
    items: Sequence[FeedbackItem], service_id: str, issuer: str | None, received_at: datetime
) -> list[FeedbackRow]:
    return [
        FeedbackRow(
            service_id=service_id,
            card_uuid=item.card_uuid,
            outcome=item.outcome,
            outcome_timestamp=item.outcome_timestamp,
            accepted_suggestions=item.accepted_suggestions,
            override_code=item.override_code,
            override_system=item.override_system,
            override_display=item.override_display,
            user_comment=item.user_comment,
            received_at=received_at,
            issuer=issuer,
            reason_offered=item.reason_offered,
        )
        for item in items
    ]


def _problem_response(problem: ProblemError) -> Response:
    return Response(
        problem.body(), status_code=problem.status, media_type=JSON, headers=problem.headers or None
    )


class _Call:
    """One audited call: who called, what was answered, how long it took. The row is written whatever
    happens, refusals included, together with the cards issued; never the token."""

    def __init__(self, request: Request, endpoint: str, service_id: str | None = None) -> None:
        self.request = request
        self.started = time.perf_counter()
        self.audit = AuditRow(
            at=datetime.now(UTC),
            endpoint=endpoint,
            latency_ms=0.0,
            status=500,
            service_id=service_id,
            process=os.getpid(),
        )
        self.issued: list[IssuedCard] = []
        self.charts: tuple[ChartSnapshot, ...] = ()
        self.note = ""

    async def __aenter__(self) -> Self:
        return self

    async def authenticate(self, path: str) -> Caller | None:
        guard: Guard = self.request.app.state.guard
        caller = await guard.caller(self.request.headers.get("authorization"), path)
        if caller is not None:
            self.audit.issuer, self.audit.tenant, self.audit.subject = caller.iss, caller.tenant, caller.sub
        return caller

    def answered(self, answer: Any) -> None:
        # Cards remember whom they went to: feedback on them must come from the same issuer.
        self.issued = [dataclasses.replace(card, issuer=self.audit.issuer) for card in answer.issued]
        self.charts = answer.charts
        self.audit.status = 200
        self.audit.hook_instance = answer.hook_instance
        self.audit.patient_id = answer.patient_id
        self.audit.card_uuids = [card.card_uuid for card in answer.issued]
        self.audit.rules = [
            {"id": o.rule.id, "version": o.rule.version, "status": o.status}
            for o in answer.evaluation.outcomes
            if o.status != "not-fired"
        ]
        self.note = f"hookInstance={answer.hook_instance} cards={len(answer.issued)} fetched={','.join(answer.data.fetched) or '-'}"

    async def feedback_on(self, rows: Sequence[FeedbackRow]) -> None:
        """Name in the audit row the cards the feedback is about, with each card's rule and the outcome."""
        uuids = [row.card_uuid for row in rows]
        self.audit.card_uuids = uuids
        try:
            rules = await run_in_threadpool(self.request.app.state.store.card_rules, uuids)
        except Exception:
            # The feedback is stored; the audit row still names the cards, only not their rules.
            log.exception("could not look up the rules of the cards the feedback is about")
            rules = {}
        # A merged card speaks for several rules: one entry per rule, so the feedback counts for each.
        self.audit.rules = [
            {"id": rule_id, "version": version, "card": row.card_uuid, "outcome": row.outcome}
            for row in rows
            for rule_id, version in rules.get(row.card_uuid) or [(None, None)]
        ]

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        audit = self.audit
        if isinstance(error, ProblemError):
            audit.status = error.status
            audit.reason = str(error)[:512]
        elif error is not None:
            audit.status = 500
            audit.reason = type(error).__name__
        audit.latency_ms = (time.perf_counter() - self.started) * 1000
        guard: Guard = self.request.app.state.guard
        if isinstance(error, Unauthorized):
            # Refused before the caller is known: counted, not written row by row (security/refusals.py).
            client = self.request.client
            self.request.app.state.refusals.add(
                audit.at, client.host if client else None, error.reason, audit.endpoint
            )
        else:
            try:
                writer: Writer = self.request.app.state.writer
                await writer.record_call(audit, self.issued, self.charts)
            except Exception:
                # The caller still gets the answer; the gap is logged loudly instead.
                log.exception("could not write the audit row for %s %s", audit.endpoint, audit.hook_instance)
        log.info(
            "%s%s service=%s status=%d issuer=%s %s %.1f ms",
            f"{INSECURE_WARNING} | " if guard.insecure else "",
            audit.endpoint,
            audit.service_id or "-",
            audit.status,
            audit.issuer or "-",
            self.note or audit.reason or "",
            audit.latency_ms,
        )


# Probes time out after a few seconds (deploy/kubernetes): a database that hangs rather than refuses must
# be reported as unavailable before that, not turn the probe itself into a timeout.
HEALTH_PING_SECONDS = 2.0


class _Health:
    """What /healthz says of the database: "ok" when it takes a write, "read-only" when it can only be
    read, "unavailable" otherwise. Checked at most every few seconds; callers meanwhile share the last
    answer, or the check in flight."""

    def __init__(self, store: Store, every_seconds: float) -> None:
        self.store = store
        # /healthz needs no token: it must not be a way to make the database write on demand.
        self.every_seconds = every_seconds
        self._checked = -math.inf
        self._state = "unavailable"
        self._lock = asyncio.Lock()

    async def database(self) -> str:
        async with self._lock:
            if time.monotonic() - self._checked >= self.every_seconds:
                self._state = await self._check()
                self._checked = time.monotonic()
            return self._state

    async def _check(self) -> str:
        try:
            async with asyncio.timeout(HEALTH_PING_SECONDS):
                if await run_in_threadpool(self.store.heartbeat, datetime.now(UTC), os.getpid()):
                    return "ok"
                return "read-only" if await run_in_threadpool(self.store.ping) else "unavailable"
        except TimeoutError:
            log.warning("database did not answer a write within %.0f s", HEALTH_PING_SECONDS)
            return "unavailable"


async def _write_refusals_periodically(store: Store, refusals: Refusals, settings: Settings) -> None:
    while True:
        await asyncio.sleep(settings.refusal_write_seconds)
        await _write_refusals(store, refusals)


async def _write_refusals(store: Store, refusals: Refusals) -> None:
    counts = refusals.take()
    if not counts:
        return
    try:
        await run_in_threadpool(store.record_refusals, counts)
    except Exception:
        refusals.give_back(counts)
        log.exception("could not write %d refused-call counts; kept for the next try", len(counts))


async def _purge_periodically(store: Store, settings: Settings) -> None:
    """Forget expired token ids, and audit rows and feedback past retention, at start-up and then hourly."""
    while True:
        now = datetime.now(UTC)
        try:
            tokens, audits = await run_in_threadpool(
                store.purge,
                now,
                now - timedelta(days=settings.audit_retention_days),
                now - timedelta(days=settings.feedback_retention_days),
            )
            if tokens or audits:
                log.info("purged %d expired token ids and %d audit rows", tokens, audits)
        except Exception:
            log.exception("purge failed; will retry")
        await asyncio.sleep(3600)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        # Every route that raises these is audited, and its audit logs the refusal once.
        return _problem_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        problem = ProblemError.single(exc.status_code, str(exc.detail))
        problem.headers.update(exc.headers or {})  # e.g. the `Allow` a 405 must carry (RFC 9110)
        return _problem_response(problem)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return _problem_response(ProblemError.single(400, f"invalid request: {exc.errors()}"))

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> Response:
        log.error("database error: %s", exc)
        return _problem_response(ProblemError.single(503, "the service's database is unavailable"))


class _UnexpectedErrors:
    """An unexpected error answered as a 500 OperationOutcome, and the connection kept usable.

    Starlette's own handler answers and then raises the error on to the server, which closes the
    connection with no `Connection: close`: the caller's next request on that keep-alive connection was
    reset. Here the error ends with the answer. Only an answer already half sent is raised on, as
    closing the connection is then the one way left to say it is incomplete.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if started:
                raise
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            response = _problem_response(ProblemError.single(500, "internal error; it has been logged"))
            await response(scope, receive, send)
