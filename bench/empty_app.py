"""The comparison server for bench/http_load.py: FastAPI that reads the body with orjson and answers a
constant. Whatever the CDS service does beyond this is the cost of being a CDS service.

    uvicorn --app-dir bench empty_app:app --workers 2 --loop uvloop --http httptools
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

import orjson
from fastapi import FastAPI, Request, Response

_ANSWER = b'{"cards":[]}'


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The same start-up as the service (app.py): objects loaded for good leave the GC's generations.
    gc.collect()
    gc.freeze()
    yield


app = FastAPI(lifespan=_lifespan)


@app.post("/cds-services/{service_id}")
async def hook(service_id: str, request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(_ANSWER, media_type="application/json")


@app.get("/healthz")
async def health() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")
