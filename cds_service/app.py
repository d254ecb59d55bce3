"""The FastAPI application: routes, error bodies, CORS and start-up."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from collections.abc import AsyncIterator

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from cds_service import __version__
from cds_service.config import Settings
from cds_service.engine.reload import Reloader, watching
from cds_service.pipeline import Runtime, call_service
from cds_service.protocol.feedback import parse_feedback
from cds_service.protocol.outcome import ProblemError
from cds_service.store.database import Store, StoreError

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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.create(settings)
        store = Store(settings.database_url)
        reloader = Reloader(runtime.engine, settings.rules_dir)
        app.state.runtime = runtime
        app.state.store = store
        app.state.reloader = reloader
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
        try:
            async with watching(reloader, settings.reload_interval_seconds):
                yield
        finally:
            await runtime.aclose()
            store.close()

    app = FastAPI(
        title="CDS Hooks service",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    _add_error_handlers(app)

    @app.get("/cds-services", summary="CDS Hooks discovery")
    async def discovery(request: Request) -> Response:
        return Response(request.app.state.runtime.services.discovery_body, media_type=JSON)

    @app.post("/cds-services/{service_id}", summary="Call a CDS service", openapi_extra=_SERVICE_CALL_SCHEMA)
    async def service_call(service_id: str, request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        body = await _read_json_body(request, settings.max_body_bytes)
        started = time.perf_counter()
        answer = await call_service(runtime, service_id, body)
        if answer.issued:
            try:
                await run_in_threadpool(request.app.state.store.record_cards, answer.issued)
            except Exception:
                # The clinician still gets the cards; feedback on them will not join to a rule.
                log.exception(
                    "could not record %d issued cards for %s", len(answer.issued), answer.hook_instance
                )
        log.info(
            "service=%s hookInstance=%s cards=%d fetched=%s %.1f ms",
            service_id,
            answer.hook_instance,
            len(answer.issued),
            ",".join(answer.data.fetched) or "-",
            (time.perf_counter() - started) * 1000,
        )
        return Response(answer.body, media_type=JSON)

    @app.post(
        "/cds-services/{service_id}/feedback", summary="Feedback on cards", openapi_extra=_FEEDBACK_SCHEMA
    )
    async def feedback(service_id: str, request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        if runtime.services.get(service_id) is None:
            raise ProblemError.single(404, f"no CDS service with id {service_id!r}")
        body = await _read_json_body(request, settings.max_body_bytes)
        rows = parse_feedback(body, service_id)
        try:
            stored = await run_in_threadpool(request.app.state.store.record_feedback, rows)
        except Exception as exc:
            log.exception("feedback for %s could not be stored", service_id)
            raise ProblemError.single(
                503, "feedback could not be stored; nothing was recorded, please retry"
            ) from exc
        log.info("service=%s feedback items=%d new=%d", service_id, len(rows), stored)
        return Response(status_code=200)

    @app.get("/healthz", summary="Liveness and readiness")
    async def healthz(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        # Cards are still answered without the database, so the service stays up (200) and says
        # what is degraded: feedback cannot be acknowledged until the database is back.
        database = "ok" if await run_in_threadpool(request.app.state.store.ping) else "unavailable"
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


async def _read_json_body(request: Request, limit: int) -> bytes:
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != JSON and not media_type.endswith("+json"):
        raise ProblemError.single(415, f"Content-Type must be {JSON}, not {content_type or 'missing'!r}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProblemError.single(413, f"request body is {declared} bytes; the limit is {limit}")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProblemError.single(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise ProblemError.single(400, "request body is empty")
    return body


def _problem_response(problem: ProblemError) -> Response:
    return Response(problem.body(), status_code=problem.status, media_type=JSON)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        log.info("%s %s -> %d: %s", request.method, request.url.path, exc.status, exc)
        return _problem_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return _problem_response(ProblemError.single(exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return _problem_response(ProblemError.single(400, f"invalid request: {exc.errors()}"))

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> Response:
        log.error("database error: %s", exc)
        return _problem_response(ProblemError.single(503, "the service's database is unavailable"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _problem_response(ProblemError.single(500, "internal error; it has been logged"))
