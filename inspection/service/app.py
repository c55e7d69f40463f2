"""The app factory: ``create_app`` wires the ingestion path, the scorer, the keys and the routers together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import inspection
from inspection.auth import ApiKeys
from inspection.ingest import Ingestor
from inspection.service.metrics import Metrics, method_label
from inspection.service.pickup import Pickup, follow_live
from inspection.service.routes import health, inspections, stations
from inspection.service.scoring import BatchScorer, Pipeline
from inspection.service.settings import ServiceLimits
from inspection.service.state import ServiceState, blocking
from inspection.store import RecordStore
from inspection.store.photos import PhotoStore, open_photo_store

log = logging.getLogger("inspection.service")


class RequestMetrics:
    """Counts every request by method, route template and status code (pure ASGI, so a client that goes away
    mid-request is counted as 499 by the route, not as a 500 here)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        code = 500

        async def send_counted(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.http.labels(method_label(scope["method"]), route, str(code)).inc()


def create_app(
    pipeline: Pipeline | Sequence[Pipeline],
    store: RecordStore,
    api_keys: ApiKeys,
    *,
    photos: PhotoStore | str | Path,
    limits: ServiceLimits | None = None,
    pickup: Pickup | None = None,
) -> FastAPI:
    """Build the service.

    Args:
        pipeline: one pipeline, or several to score that many photos at once (one per worker thread).
        store: where records go.
        api_keys: station and engineer keys.
        photos: the photo store, or its location (a folder, ``db``, or an fsspec URL).
        limits: upload size, queue bounds, time limits (:class:`ServiceLimits` defaults when None).
        pickup: follow a models root's ``LIVE`` and swap in a newly promoted bundle while serving
            (:mod:`inspection.service.pickup`); None scores with ``pipeline`` until shutdown.
    """
    limits = limits or ServiceLimits()
    pipelines = list(pipeline) if isinstance(pipeline, Sequence) else [pipeline]
    scorer = BatchScorer(
        pipelines,
        max_batch=limits.max_batch,
        max_queued_pixels=limits.max_queued_pixels,
    )
    if not hasattr(photos, "put"):
        photos = open_photo_store(str(photos), engine=store.engine)
    state = ServiceState(Ingestor(store, photos), scorer, api_keys, limits)  # type: ignore[arg-type]

    follower = follow_live(pickup, scorer, store) if pickup is not None else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if follower is not None:
            follower.start()
        yield
        if follower is not None:
            await blocking(follower.stop)
        await blocking(scorer.close)

    app = FastAPI(
        lifespan=lifespan,
        title="inspection",
        version=inspection.__version__,
        description="Scores photos of cast parts for QA stations and keeps every record.",
    )
    app.state.service = state
    app.state.api_keys = api_keys
    app.state.store = store
    app.state.pickup = follower  # the LiveFollower, or None
    app.add_middleware(RequestMetrics, metrics=state.metrics)
    app.include_router(inspections.router)
    app.include_router(stations.router)
    app.include_router(health.router)
    return app
