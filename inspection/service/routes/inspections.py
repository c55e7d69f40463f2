"""``/v1/inspections``: a station posts a part photo and reads its records; an engineer reads every station's."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect

from inspection.auth import Principal
from inspection.imageio import probe_pixels
from inspection.ingest import UNAUTHENTICATED_STATION, Ingested, Submission
from inspection.results import InspectionResult, Rejection
from inspection.service.deps import Caller, Engineer, Reader, client_address
from inspection.service.routes.stations import ood_warnings
from inspection.service.state import ServiceState, blocking, public_record, service_state
from inspection.service.upload import FIELDS, parse_upload, read_body

log = logging.getLogger("inspection.service")
router = APIRouter(prefix="/v1/inspections", tags=["inspections"])
MAX_ID = 2**63 - 1
MAX_OFFSET = 10**9
CLIENT_GONE = 499  # nginx's code for "the client closed the request"; never sent, only counted


@router.post("", status_code=201, summary="Score one part photo and store the record", responses={
    200: {"description": "This part and photo were already scored; the stored record is returned."},
    201: {"description": "Scored and stored."},
    **{code: {"description": "Refused; `reason` and `detail` say why, `recorded` whether it is on record."}
       for code in (400, 401, 403, 408, 413, 415, 422, 429, 503)},
}, openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": list(FIELDS), "properties": {
        "image": {"type": "string", "format": "binary", "description": "The photo (PNG, JPEG, TIFF, BMP ...)."},
        "station_id": {"type": "string", "description": "Must be the station the API key belongs to."},
        "part_id": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"},
    }}}}}})  # fmt: skip
async def create_inspection(request: Request, who: Caller) -> Response:
    svc, t0 = service_state(request), time.perf_counter()
    if svc.attempts.blocked(client_address(request)):  # whatever key it sends now: guessing stays slow
        return svc.refusal(
            Rejection("rate_limited", "too many attempts without a valid X-API-Key; wait a minute"), t0
        )
    if who is None or who.role != "station":
        return await refuse_caller(svc, request, who, t0)
    declared = request.headers.get("content-length", "")
    reserved = svc.try_start_upload(int(declared) if declared.isdigit() else None)
    if reserved is None:
        return svc.refusal(Rejection("overloaded", f"{svc.uploads} uploads are in progress; retry later"), t0)
    try:
        return await receive_and_score(svc, request, who.name, t0)
    except ClientDisconnect:
        svc.metrics.abandoned.inc()
        log.info("client %s went away during its upload; nothing was stored", client_address(request))
        return Response(status_code=CLIENT_GONE)
    finally:
        svc.end_upload(reserved)


async def refuse_caller(svc: ServiceState, request: Request, who: Principal | None, t0: float) -> Response:
    """Refuse a caller with no station key, from its headers alone: the body is never read."""
    address = client_address(request)
    if who is not None:  # an engineer key: reads records, writes none
        return svc.refusal(Rejection("forbidden", f"the key of engineer {who.name!r} cannot post photos; "
                                     "stations post with their own key"), t0)  # fmt: skip
    if not svc.attempts.allow(address):
        return svc.refusal(
            Rejection("rate_limited", "too many attempts without a valid X-API-Key; wait a minute"), t0
        )
    sent = request.headers.get("x-api-key")
    rejection = Rejection(
        "unauthorized" if sent else "missing_api_key",
        ("the X-API-Key is not valid for any station" if sent else "no X-API-Key header was sent")
        + "; send the station's key in the X-API-Key header",
    )
    sub = Submission(UNAUTHENTICATED_STATION, None, None, "api", client_address=address, trusted=False)
    try:
        ingested = await blocking(svc.ingestor.reject, sub, rejection)
    except Rejection:  # the database is down: still 401, but not reported as recorded
        return svc.refusal(rejection, t0)
    return svc.refusal(rejection, t0, record_id=ingested.record["id"], recorded=True)


async def receive_and_score(svc: ServiceState, request: Request, station: str, t0: float) -> Response:
    address = client_address(request)
    try:
        upload = await parse_upload(request, await read_body(request, svc.limits))
        if upload.station_id != station:
            raise Rejection("station_mismatch", f"this API key belongs to station {station!r}, not "
                            f"{upload.station_id!r}; a station can only write its own records")  # fmt: skip
    except Rejection as refused:
        sub = Submission(station, None, None, "api", client_address=address, refused=refused)
        return await ingest_refusal(svc, sub, refused, t0)
    sub = Submission(station, upload.part_id, upload.image, "api", client_address=address)
    cost = await blocking(probe_pixels, upload.image or b"")
    try:
        if not svc.scorer.has_room(cost):
            raise Rejection("overloaded", f"{svc.scorer.queued} photos are waiting to be scored; retry later")
        admitted = await blocking(svc.ingestor.admit, sub)
        if not isinstance(admitted, Ingested):
            outcome = await score_unless_gone(svc, request, admitted.data, cost)
            if outcome is None:
                svc.metrics.abandoned.inc()
                log.info(
                    "client %s went away before part %r was scored; it was not scored",
                    address,
                    upload.part_id,
                )
                return Response(status_code=CLIENT_GONE)
            admitted = await blocking(svc.ingestor.record, admitted, outcome)
        warnings = await ood_warnings(svc, station) if admitted.rejection is None else None
        return answer(svc, admitted, t0, warnings)
    except Rejection as retry_later:
        return svc.refusal(retry_later, t0)


async def ingest_refusal(svc: ServiceState, sub: Submission, refused: Rejection, t0: float) -> Response:
    """Record a refusal of the request itself; a retryable one (timeout) is answered without a record."""
    if refused.retryable:
        return svc.refusal(refused, t0)
    try:
        return answer(svc, await blocking(svc.ingestor.reject, sub, refused), t0)
    except Rejection as retry_later:
        return svc.refusal(retry_later, t0)


async def score_unless_gone(
    svc: ServiceState, request: Request, data: bytes, cost: int
) -> InspectionResult | Rejection | None:
    """The photo's verdict; None when its client went away first (then it is not scored).

    Raises:
        Rejection: ``overloaded`` when the queue is full or no verdict came within ``score_timeout_s``.
    """
    scoring = asyncio.ensure_future(svc.scorer.score(data, cost))
    gone = asyncio.ensure_future(wait_for_disconnect(request))
    try:
        done, _ = await asyncio.wait(
            {scoring, gone}, timeout=svc.limits.score_timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        gone.cancel()
    if scoring in done:
        return scoring.result()
    scoring.cancel()  # drops the photo from the queue if it is still waiting
    if gone in done:
        return None
    raise Rejection("overloaded", f"no verdict within {svc.limits.score_timeout_s:g} s; retry later")


async def wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def answer(
    svc: ServiceState, ingested: Ingested, t0: float, warnings: list[str] | None = None
) -> JSONResponse:
    """The HTTP answer for a stored record: 201 (new), 200 (a re-send), or the refusal's 4xx with its record.

    A scored record's answer carries ``warnings`` about its station (:func:`ood_warnings`), an empty list when
    there are none.
    """
    record = ingested.record
    if ingested.rejection is not None:
        if ingested.created:
            svc.metrics.inspections.labels(record["station_id"], "rejected", "").inc()
        return svc.refusal(ingested.rejection, t0, record_id=record["id"], recorded=True)
    if ingested.created:
        svc.metrics.inspections.labels(record["station_id"], "ok", record["verdict"]).inc()
        for stage, ms in (record.get("timings_ms") or {}).items():
            svc.metrics.stages.labels(stage).observe(ms / 1000)
    svc.metrics.latency.observe(time.perf_counter() - t0)
    return JSONResponse(
        {**public_record(record, duplicate=not ingested.created), "warnings": warnings or []},
        status_code=201 if ingested.created else 200,
        headers={"Location": f"/v1/inspections/{record['id']}"},
    )


def as_utc(value: datetime | None, name: str) -> datetime | None:
    """A query time in UTC (naive = UTC); 422 for one outside the representable range."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError) as e:
        raise HTTPException(status_code=422, detail=f"{name} {value.isoformat()} is out of range") from e


@router.get("", summary="List records, newest first")
async def list_inspections(
    request: Request,
    who: Reader,
    station_id: str | None = None,
    part_id: str | None = None,
    since: Annotated[datetime | None, Query(description="ISO 8601; naive times are UTC. Inclusive.")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601; naive times are UTC. Exclusive.")] = None,
    verdict: Literal["ok", "defective", "review"] | None = None,
    status: Literal["ok", "rejected"] | None = None,
    conflict: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """A station key lists its own station only; an engineer key lists every station."""
    if who.role == "station":
        if station_id not in (None, who.name):
            raise HTTPException(
                status_code=403, detail=f"a station key reads only its own station ({who.name})"
            )
        station_id = who.name
    store = service_state(request).ingestor.store
    filters: dict[str, Any] = dict(
        station_id=station_id, part_id=part_id, since=as_utc(since, "since"), until=as_utc(until, "until"),
        verdict=verdict, status=status, conflict=conflict,
    )  # fmt: skip
    items = await blocking(lambda: store.list_inspections(limit=limit, offset=offset, **filters))
    total = await blocking(lambda: store.count_inspections(**filters))
    return {"items": [public_record(r) for r in items], "total": total, "limit": limit, "offset": offset}


@router.get("/{record_id}", summary="One record by id")
async def get_inspection(
    request: Request, who: Reader, record_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> dict[str, Any]:
    """Another station's record answers 404, as if it did not exist."""
    record = await blocking(service_state(request).ingestor.store.get_inspection, record_id)
    if record is None or not who.can_read(record["station_id"]):
        raise HTTPException(status_code=404, detail=f"no inspection record with id {record_id}")
    return public_record(record)


class LabelIn(BaseModel):
    """An engineer's verdict on a record."""

    model_config = ConfigDict(extra="forbid")

    verdict: Literal["ok", "defective"]
    kind: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] = None
    note: Annotated[str | None, Field(max_length=2000)] = None


@router.post("/{record_id}/label", status_code=201, summary="Label a record (engineer key)")
async def label_inspection(
    request: Request, who: Engineer, record_id: Annotated[int, Path(ge=1, le=MAX_ID)], label: LabelIn
) -> dict[str, Any]:
    """The label is kept beside the model's verdict, never over it, with who gave it and when; the newest holds."""
    store = service_state(request).ingestor.store
    saved = await blocking(
        lambda: store.add_label(
            record_id, verdict=label.verdict, kind=label.kind, note=label.note, labelled_by=who.name
        )
    )
    if saved is None:
        raise HTTPException(status_code=404, detail=f"no inspection record with id {record_id}")
    return saved


@router.get("/{record_id}/labels", summary="A record's labels, newest first")
async def list_labels(
    request: Request, who: Reader, record_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> dict[str, Any]:
    """Readable by whoever may read the record (its station, or an engineer)."""
    store = service_state(request).ingestor.store
    record = await blocking(store.get_inspection, record_id)
    if record is None or not who.can_read(record["station_id"]):
        raise HTTPException(status_code=404, detail=f"no inspection record with id {record_id}")
    return {"items": await blocking(store.list_labels, record_id)}
