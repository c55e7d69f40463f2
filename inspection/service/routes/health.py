"""Operations: ``/healthz`` (liveness), ``/readyz`` (readiness: both stores writable) and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import inspection
from inspection.service.state import blocking, service_state

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz(request: Request) -> JSONResponse:
    svc = service_state(request)
    return JSONResponse({
        "status": "ok",
        "model_versions": svc.scorer.model_versions,
        "pipelines": svc.scorer.size,
        "version": inspection.__version__,
    })  # fmt: skip


@router.get("/readyz", summary="Readiness: the records database and the photo store can be written")
async def readyz(request: Request) -> JSONResponse:
    """200 when a photo can be kept and recorded now; 503 naming what is wrong otherwise."""
    svc = service_state(request)
    problems = await blocking(svc.ingestor.problems)
    body = {
        "status": "ready" if not problems else "not_ready",
        "database": problems.get("database", "ok"),
        "photos": problems.get("photos", "ok"),
        "queued": svc.scorer.queued,
        "uploads": svc.uploads,
    }
    return JSONResponse(
        body, status_code=503 if problems else 200, headers={"Retry-After": "5"} if problems else None
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def prometheus_metrics(request: Request) -> PlainTextResponse:
    registry = service_state(request).metrics.registry
    return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
