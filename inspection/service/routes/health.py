"""Operations: ``/healthz`` (liveness), ``/readyz`` (readiness) and ``/metrics`` (engineers only).

``/healthz`` names the bundle scoring now (``bundle``; it follows ``LIVE`` after a promotion) and its models.
``/healthz`` and ``/readyz`` need no key (load balancers call them), so they say only ``ok`` or ``unavailable``
and never write: readiness is worked out from a read-only ping, the photo store's free room and the writes that
failed lately; a "ready" answer is reused for ``READY_CACHE_S``, so a flood of probes costs next to nothing. ``/metrics`` carries every
station's counts, so it needs an engineer key (``X-API-Key``, or ``Authorization: Bearer`` as Prometheus sends).
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import inspection
from inspection.service.deps import Engineer
from inspection.service.state import blocking, service_state

router = APIRouter(tags=["operations"])
log = logging.getLogger("inspection.service")
READY_CACHE_S = 2.0


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz(request: Request) -> JSONResponse:
    svc = service_state(request)
    return JSONResponse({
        "status": "ok",
        "bundle": svc.scorer.bundle_version,
        "model_versions": svc.scorer.model_versions,
        "pipelines": svc.scorer.size,
        "version": inspection.__version__,
    })  # fmt: skip


@router.get("/readyz", summary="Readiness: a photo can be kept and recorded now")
async def readyz(request: Request) -> JSONResponse:
    """200 when neither store is known to fail; 503 naming the store (``unavailable``) otherwise."""
    svc = service_state(request)
    now = time.monotonic()
    if svc.readiness is None or svc.readiness[1] or now - svc.readiness[0] > READY_CACHE_S:
        problems = await blocking(svc.ingestor.problems, svc.limits.max_upload_bytes)
        if problems != (svc.readiness[1] if svc.readiness else {}):
            log.warning("readiness: %s", "; ".join(f"{k} {v}" for k, v in problems.items()) or "ready again")
        svc.readiness = (now, problems)
    problems = svc.readiness[1]
    body = {
        "status": "not_ready" if problems else "ready",
        **{store: "unavailable" if store in problems else "ok" for store in ("database", "photos")},
    }
    return JSONResponse(
        body, status_code=503 if problems else 200, headers={"Retry-After": "5"} if problems else None
    )


@router.get("/metrics", summary="Prometheus metrics (engineer key)", response_class=PlainTextResponse)
async def prometheus_metrics(request: Request, _who: Engineer) -> PlainTextResponse:
    svc = service_state(request)
    svc.metrics.queued.set(svc.scorer.queued)
    return PlainTextResponse(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)
