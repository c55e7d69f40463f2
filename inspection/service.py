"""The HTTP scoring service for QA stations (FastAPI).

``POST /v1/inspections`` takes a multipart photo (``image``) with ``station_id`` and ``part_id``, scores it and
stores the record; ``GET /v1/inspections`` and ``GET /v1/inspections/{id}`` read records back; ``GET /healthz``
and ``GET /metrics`` (Prometheus) serve operations. Stations authenticate with ``X-API-Key``.

A bad upload never takes the service down and never goes unrecorded: every refusal is a 4xx whose JSON names the
problem (``reason`` code, ``detail`` message) and is stored as a ``rejected`` record. Inference runs in one worker
thread per pipeline, batching the uploads that wait (:class:`BatchScorer`), so the event loop keeps accepting
connections while models run and a busy station line gets batch throughput.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, TypeVar

import anyio.to_thread
from fastapi import FastAPI, HTTPException, Query, Request, Security
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import APIKeyHeader
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.types import Message

import inspection
from inspection.auth import ApiKeys
from inspection.imageio import ImageRejected
from inspection.results import InspectionResult, Rejection
from inspection.store import STATUS_OK, STATUS_REJECTED, RecordStore
from inspection.store.photos import keep_photo, sha256_hex

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MULTIPART_OVERHEAD = 64 * 1024
MAX_TEXT_FIELD_BYTES = 4096
PART_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
FIELDS = ("image", "station_id", "part_id")

# HTTP status per rejection reason: what was wrong with the request decides the code.
STATUS_BY_REASON = {
    "empty_body": 400,
    "bad_multipart": 400,
    "missing_field": 400,
    "field_too_large": 400,
    "empty": 400,
    "missing_api_key": 401,
    "unauthorized": 401,
    "station_mismatch": 403,
    "upload_too_large": 413,
    "not_an_image": 415,
    "bad_part_id": 422,
    "bad_station_id": 422,
    "corrupt": 422,
    "too_small": 422,
    "too_large": 422,
    "bad_shape": 422,
    "bad_dtype": 422,
    "bad_pixels": 422,
    "unreadable": 422,
    "internal_error": 500,
}

T = TypeVar("T")

# Module level: with postponed annotations FastAPI resolves dependencies from module globals.
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The station's API key.")


class Pipeline(Protocol):
    """What the service needs from :class:`inspection.pipeline.InspectionPipeline`."""

    model_versions: dict[str, str]

    def inspect_batch(self, images: Sequence[Any]) -> list[InspectionResult | Rejection]: ...


@dataclass
class _Job:
    data: bytes
    future: asyncio.Future[InspectionResult]
    loop: asyncio.AbstractEventLoop
    queued_at: float


def _settle(job: _Job, outcome: InspectionResult | BaseException) -> None:
    if job.future.done():  # the client went away
        return
    if isinstance(outcome, BaseException):
        job.future.set_exception(outcome)
    else:
        job.future.set_result(outcome)


class BatchScorer:
    """Scores uploads in batches: one worker thread per pipeline takes every photo waiting in the queue.

    Under load, photos that arrive while a batch is being scored form the next batch, and a batch costs far
    less per photo than single calls; with nothing waiting, a photo is scored alone at once (no added delay).
    No pipeline is ever used by two threads. A batch that fails is retried photo by photo, so one bad photo
    cannot fail its neighbours. ``timings_ms`` are the photo's share of its batch, plus ``queue`` (the wait).

    Args:
        pipelines: one worker thread each.
        max_batch: the most photos scored together.
    """

    def __init__(self, pipelines: Sequence[Pipeline], *, max_batch: int = 8) -> None:
        if not pipelines:
            raise ValueError("BatchScorer needs at least one pipeline")
        self.model_versions = dict(pipelines[0].model_versions)
        self._pipelines = list(pipelines)
        self.size = len(pipelines)
        self.max_batch = max(1, max_batch)
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._work, args=(p,), name=f"scorer-{i}", daemon=True)
            for i, p in enumerate(pipelines)
        ]
        for t in self._threads:
            t.start()

    async def score(self, data: bytes) -> InspectionResult:
        """Score one photo; raises ``ImageRejected`` for a photo that cannot be judged."""
        loop = asyncio.get_running_loop()
        job = _Job(data, loop.create_future(), loop, time.perf_counter())
        self._queue.put(job)
        return await job.future

    def close(self) -> None:
        """Stop the worker threads once the queue is drained."""
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout=30)
        for p in self._pipelines:
            getattr(p, "close", lambda: None)()

    def _take_batch(self) -> list[_Job] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self._queue.put(None)  # leave the stop signal for the next round
                break
            batch.append(job)
        return batch

    def _work(self, pipeline: Pipeline) -> None:
        while (batch := self._take_batch()) is not None:
            started = time.perf_counter()
            for job, outcome in zip(batch, self._run(pipeline, [j.data for j in batch]), strict=True):
                if isinstance(outcome, InspectionResult):
                    queue_ms = round((started - job.queued_at) * 1000, 3)
                    outcome = dataclasses.replace(
                        outcome, timings_ms={**outcome.timings_ms, "queue": queue_ms}
                    )
                job.loop.call_soon_threadsafe(_settle, job, outcome)

    @staticmethod
    def _run(pipeline: Pipeline, images: list[bytes]) -> list[InspectionResult | BaseException]:
        try:
            results = pipeline.inspect_batch(images)
        except Exception:
            if len(images) == 1:
                log.exception("scoring a photo failed")
                return [RuntimeError("the pipeline failed on this photo")]
            log.exception("scoring a batch of %d failed; scoring them one at a time", len(images))
            return [out for image in images for out in BatchScorer._run(pipeline, [image])]
        return [ImageRejected(r.reason, r.message) if isinstance(r, Rejection) else r for r in results]


class Rejected(Exception):
    """A refused request: the reason code, the message for the station, and what to record."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        station_id: str | None = None,
        dedup: bool = True,
        trusted: bool = True,
    ) -> None:
        super().__init__(message)
        self.trusted = trusted  # False: station_id is an unauthenticated claim
        self.reason = reason
        self.message = message
        self.station_id = station_id
        self.dedup = dedup


class UploadTooLarge(Exception):
    """The request body went past the upload limit while it was being read."""


@dataclass
class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    registry: CollectorRegistry
    inspections: Counter
    rejections: Counter
    http: Counter
    latency: Histogram
    stages: Histogram
    in_flight: Gauge

    @classmethod
    def create(cls) -> Metrics:
        reg = CollectorRegistry()
        buckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
        return cls(
            registry=reg,
            inspections=Counter(
                "inspection_inspections_total",
                "Records stored, by station, status and verdict.",
                ["station", "status", "verdict"],
                registry=reg,
            ),
            rejections=Counter(
                "inspection_rejections_total", "Refused uploads, by reason.", ["reason"], registry=reg
            ),
            http=Counter(
                "inspection_http_requests_total",
                "HTTP requests, by method, route and status code.",
                ["method", "route", "code"],
                registry=reg,
            ),
            latency=Histogram(
                "inspection_request_seconds",
                "Wall time of POST /v1/inspections, upload to response.",
                buckets=buckets,
                registry=reg,
            ),
            stages=Histogram(
                "inspection_stage_seconds",
                "Pipeline time per stage.",
                ["stage"],
                buckets=buckets,
                registry=reg,
            ),
            in_flight=Gauge("inspection_in_flight", "Uploads being scored right now.", registry=reg),
        )


def public_record(record: dict[str, Any], *, duplicate: bool = False) -> dict[str, Any]:
    """A stored record as the API returns it."""
    out = {k: v for k, v in record.items() if k != "dedup_key"}
    out["duplicate"] = duplicate
    return out


def rejection_body(reason: str, message: str, record_id: int | None) -> dict[str, Any]:
    return {"status": STATUS_REJECTED, "reason": reason, "detail": message, "id": record_id}


def create_app(
    pipeline: Pipeline | Sequence[Pipeline],
    store: RecordStore,
    api_keys: ApiKeys,
    *,
    photos_dir: str | Path,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_batch: int = 8,
) -> FastAPI:
    """Build the service.

    Args:
        pipeline: one pipeline, or several to score that many photos at once (one per worker thread).
        store: where records go.
        api_keys: which key belongs to which station.
        photos_dir: where uploaded photos are kept (content-addressed by SHA-256).
        max_upload_bytes: the largest photo accepted; bigger uploads get 413 and are not read to the end.
        max_batch: the most uploads scored together in one pipeline call (see :class:`BatchScorer`).
    """
    scorer = BatchScorer([pipeline] if not isinstance(pipeline, Sequence) else pipeline, max_batch=max_batch)
    metrics = Metrics.create()
    photos_root = Path(photos_dir)
    body_limit = max_upload_bytes + MULTIPART_OVERHEAD

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await blocking(scorer.close)

    app = FastAPI(
        lifespan=lifespan,
        title="inspection",
        version=inspection.__version__,
        description="Scores photos of cast parts for QA stations and keeps every record.",
    )
    app.state.store = store
    app.state.scorer = scorer
    app.state.metrics = metrics

    async def blocking(fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args)

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Callable[[Request], Any]) -> Any:
        try:
            response = await call_next(request)
        except Exception:  # the last line of defence: a bug answers 500, the server stays up
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            response = JSONResponse({"detail": "internal error; see the service log"}, status_code=500)
        route = request.scope.get("route")
        metrics.http.labels(
            request.method, getattr(route, "path", "unmatched"), str(response.status_code)
        ).inc()
        return response

    async def record_rejection(
        rej: Rejected, *, part_id: str | None, data: bytes | None, keep: bool, t0: float
    ) -> JSONResponse:
        sha = sha256_hex(data) if data is not None else None
        path = None
        if keep and data:
            try:
                path = str(await blocking(keep_photo, data, photos_root, sha))
            except OSError:
                log.exception("could not keep rejected photo %s", sha)
        station = (rej.station_id or "unknown")[:64]
        try:
            rid = await blocking(
                lambda: store.add_inspection(
                    station_id=station,
                    part_id=part_id,
                    image_sha256=sha,
                    image_path=path,
                    result=None,
                    status=STATUS_REJECTED,
                    reason=rej.reason,
                    message=rej.message,
                    image_bytes=len(data) if data is not None else None,
                    dedup=rej.dedup,
                )
            )
        except Exception:
            log.exception("could not store the rejection of part %r (%s)", part_id, rej.reason)
            rid = None
        metrics.rejections.labels(rej.reason).inc()
        # an unauthenticated claim is recorded as sent, but must not mint new metric label values
        metrics.inspections.labels(station if rej.trusted else "unauthenticated", STATUS_REJECTED, "").inc()
        metrics.latency.observe(time.perf_counter() - t0)
        log.info("rejected part %r from %s: %s (%s)", part_id, station, rej.reason, rej.message)
        return JSONResponse(
            rejection_body(rej.reason, rej.message, rid), status_code=STATUS_BY_REASON[rej.reason]
        )

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > body_limit:
            raise UploadTooLarge(int(declared))
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > body_limit:
                raise UploadTooLarge(len(body))
        return bytes(body)

    async def parse_form(request: Request, body: bytes) -> dict[str, Any]:
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        ctype = request.headers.get("content-type", "")
        if not ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            raise Rejected(
                "bad_multipart",
                f"the body must be multipart/form-data with fields {', '.join(FIELDS)}; got Content-Type "
                f"{ctype or '(none)'!r}",
            )
        replayed = Request({k: v for k, v in request.scope.items() if k != "app"}, replay)
        try:
            form = await replayed.form(max_files=4, max_fields=16, max_part_size=MAX_TEXT_FIELD_BYTES)
        except MultiPartException as e:
            if "exceeded maximum size" in e.message:
                raise Rejected(
                    "field_too_large",
                    f"a text field is over {MAX_TEXT_FIELD_BYTES} bytes; station_id and "
                    "part_id must be short ids",
                ) from e
            raise Rejected("bad_multipart", f"the multipart body cannot be parsed: {e.message}") from e
        out: dict[str, Any] = {}
        for name in FIELDS:
            value = form.get(name)
            if isinstance(value, UploadFile):
                out[name] = await value.read()
                out[name + "_is_file"] = True
            else:
                out[name] = value
        await form.close()
        return out

    @app.post(
        "/v1/inspections",
        status_code=201,
        summary="Score one part photo and store the record",
        responses={
            200: {"description": "This part and photo were already scored; the stored record is returned."},
            201: {"description": "Scored and stored."},
            **{
                code: {
                    "description": "Refused; the body's `reason` and `detail` say why. A rejected record is kept."
                }
                for code in (400, 401, 403, 413, 415, 422)
            },
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": list(FIELDS),
                            "properties": {
                                "image": {
                                    "type": "string",
                                    "format": "binary",
                                    "description": "The photo (PNG, JPEG, TIFF, BMP ...).",
                                },
                                "station_id": {
                                    "type": "string",
                                    "description": "Must be the station the API key belongs to.",
                                },
                                "part_id": {"type": "string", "pattern": PART_ID_RE.pattern},
                            },
                        }
                    }
                },
            }
        },
    )
    async def create_inspection(
        request: Request, api_key: Annotated[str | None, Security(api_key_header)] = None
    ) -> JSONResponse:
        t0 = time.perf_counter()
        key_station = api_keys.station_for(api_key)
        data: bytes | None = None
        part_id: str | None = None
        claimed: str | None = None
        try:
            try:
                body = await read_body(request)
            except UploadTooLarge as e:
                raise Rejected(
                    "upload_too_large",
                    f"the upload is {e.args[0]:,} bytes; the limit is {max_upload_bytes:,} bytes for the photo",
                    station_id=key_station,
                    dedup=False,
                ) from e
            if not body:
                raise Rejected(
                    "empty_body",
                    f"the request body is empty; send multipart/form-data with fields {', '.join(FIELDS)}",
                    station_id=key_station,
                    dedup=False,
                )
            form = await parse_form(request, body)
            claimed = form["station_id"] if isinstance(form["station_id"], str) else None
            part_id = form["part_id"] if isinstance(form["part_id"], str) else None
            data = form["image"] if isinstance(form["image"], bytes) else None
            if key_station is None:
                reason = "missing_api_key" if not api_key else "unauthorized"
                text = (
                    "no X-API-Key header was sent"
                    if not api_key
                    else "the X-API-Key is not valid for any station"
                )
                raise Rejected(
                    reason,
                    f"{text}; send the station's key in the X-API-Key header",
                    station_id=claimed,
                    dedup=False,
                    trusted=False,
                )
            missing = [name for name in FIELDS if form[name] in (None, "")]
            if missing:
                raise Rejected(
                    "missing_field",
                    f"missing form field(s): {', '.join(missing)}; required: {', '.join(FIELDS)}",
                    station_id=key_station,
                    dedup=False,
                )
            if data is None:
                raise Rejected(
                    "missing_field",
                    "the 'image' field must be a file upload, not a text value",
                    station_id=key_station,
                    dedup=False,
                )
            if claimed != key_station:
                raise Rejected(
                    "station_mismatch",
                    f"this API key belongs to station {key_station!r}, not {claimed!r}; a station can "
                    "only write its own records",
                    station_id=key_station,
                    dedup=False,
                )
            if part_id is None or not PART_ID_RE.fullmatch(part_id) or ".." in part_id:
                raise Rejected(
                    "bad_part_id",
                    f"part id {(part_id or '')[:80]!r} is not valid; use 1-128 letters, digits, '.', '_', "
                    "':' or '-' (no slashes or '..')",
                    station_id=key_station,
                )
            if len(data) > max_upload_bytes:
                raise Rejected(
                    "upload_too_large",
                    f"the photo is {len(data):,} bytes; the limit is {max_upload_bytes:,}",
                    station_id=key_station,
                    dedup=False,
                )
        except Rejected as rej:
            keep = key_station is not None and rej.reason not in ("upload_too_large", "station_mismatch")
            return await record_rejection(rej, part_id=part_id, data=data, keep=keep, t0=t0)

        sha = sha256_hex(data)
        existing = await blocking(
            lambda: store.find_inspection(station_id=key_station, part_id=part_id, image_sha256=sha)
        )
        if existing is not None:
            metrics.latency.observe(time.perf_counter() - t0)
            return JSONResponse(public_record(existing, duplicate=True), status_code=200)

        metrics.in_flight.inc()
        try:
            result = await scorer.score(data)
        except ImageRejected as e:
            refused = Rejected(
                e.reason if e.reason in STATUS_BY_REASON else "corrupt", str(e), station_id=key_station
            )
            return await record_rejection(refused, part_id=part_id, data=data, keep=True, t0=t0)
        except Exception as e:
            log.exception("scoring part %r failed", part_id)
            refused = Rejected(
                "internal_error",
                f"scoring failed ({e.__class__.__name__}); the photo was kept",
                station_id=key_station,
                dedup=False,
            )
            return await record_rejection(refused, part_id=part_id, data=data, keep=True, t0=t0)
        finally:
            metrics.in_flight.dec()

        path = await blocking(keep_photo, data, photos_root, sha)
        outcome = await blocking(
            lambda: store.save_inspection(
                station_id=key_station,
                part_id=part_id,
                image_sha256=sha,
                image_path=str(path),
                result=result,
                image_bytes=len(data),
                source="api",
            )
        )
        record = await blocking(store.get_inspection, outcome.id)
        assert record is not None
        if outcome.created:
            metrics.inspections.labels(key_station, STATUS_OK, result.verdict).inc()
            for stage, ms in result.timings_ms.items():
                metrics.stages.labels(stage).observe(ms / 1000)
        metrics.latency.observe(time.perf_counter() - t0)
        headers = {"Location": f"/v1/inspections/{outcome.id}"}
        return JSONResponse(
            public_record(record, duplicate=not outcome.created),
            status_code=201 if outcome.created else 200,
            headers=headers,
        )

    def require_station(api_key: str | None) -> str:
        station = api_keys.station_for(api_key)
        if station is None:
            raise HTTPException(
                status_code=401, detail="a valid X-API-Key header is required to read records"
            )
        return station

    @app.get("/v1/inspections", summary="List records, newest first")
    async def list_inspections(
        api_key: Annotated[str | None, Security(api_key_header)] = None,
        station_id: str | None = None,
        part_id: str | None = None,
        since: Annotated[
            datetime | None, Query(description="ISO 8601; naive times are UTC. Inclusive.")
        ] = None,
        until: Annotated[
            datetime | None, Query(description="ISO 8601; naive times are UTC. Exclusive.")
        ] = None,
        verdict: Literal["defective", "ok"] | None = None,
        status: Literal["ok", "rejected"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        require_station(api_key)
        filters: dict[str, Any] = dict(
            station_id=station_id, part_id=part_id, since=since, until=until, verdict=verdict, status=status
        )
        items = await blocking(lambda: store.list_inspections(limit=limit, offset=offset, **filters))
        total = await blocking(lambda: store.count_inspections(**filters))
        return {"items": [public_record(r) for r in items], "total": total, "limit": limit, "offset": offset}

    @app.get("/v1/inspections/{record_id}", summary="One record by id")
    async def get_inspection(
        record_id: int, api_key: Annotated[str | None, Security(api_key_header)] = None
    ) -> dict[str, Any]:
        require_station(api_key)
        record = await blocking(store.get_inspection, record_id)
        if record is None:
            raise HTTPException(status_code=404, detail=f"no inspection record with id {record_id}")
        return public_record(record)

    @app.get("/healthz", summary="Liveness and database reachability")
    async def healthz() -> JSONResponse:
        db_ok = await blocking(store.ping)
        body = {
            "status": "ok" if db_ok else "degraded",
            "database": "ok" if db_ok else "unreachable",
            "model_versions": scorer.model_versions,
            "pipelines": scorer.size,
            "version": inspection.__version__,
        }
        return JSONResponse(body, status_code=200 if db_ok else 503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus_metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
