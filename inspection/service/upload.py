"""Receiving an upload: the body read with a size cap and time limits, then parsed as a strict multipart form.

Nothing here runs before the caller's key was checked (``routes.inspections.create_inspection``): a request with
no valid station key never has a byte of its body read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request

from inspection.results import Rejection
from inspection.service.settings import ServiceLimits

FIELDS = ("image", "station_id", "part_id")
MULTIPART_OVERHEAD = 64 * 1024
MAX_TEXT_FIELD_BYTES = 4096


@dataclass(frozen=True)
class Upload:
    """The fields of one upload; ``image`` is None when it was missing or sent as text."""

    station_id: str | None
    part_id: str | None
    image: bytes | None


async def read_body(request: Request, limits: ServiceLimits) -> bytes:
    """The whole body, or a ``Rejection``: ``upload_too_large`` (413) past the cap, ``request_timeout`` (408)
    when it arrives too slowly. Raises ``starlette.requests.ClientDisconnect`` when the client goes away."""
    cap = limits.max_upload_bytes + MULTIPART_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(int(declared), limits)
    body = bytearray()
    deadline = time.monotonic() + limits.body_timeout_s
    chunks = request.stream().__aiter__()
    while True:
        wait = min(limits.idle_timeout_s, deadline - time.monotonic())
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), timeout=max(wait, 0.001))
        except StopAsyncIteration:
            return bytes(body)
        except TimeoutError as e:
            raise Rejection(
                "request_timeout",
                f"the upload stalled after {len(body):,} bytes; send the whole photo within "
                f"{limits.body_timeout_s:g} s, with no pause over {limits.idle_timeout_s:g} s",
            ) from e
        body += chunk
        if len(body) > cap:
            raise _too_large(len(body), limits)


def _too_large(size: int, limits: ServiceLimits) -> Rejection:
    return Rejection(
        "upload_too_large",
        f"the upload is {size:,} bytes; the limit is {limits.max_upload_bytes:,} bytes for the photo",
    )


async def parse_upload(request: Request, body: bytes) -> Upload:
    """Parse ``body`` as the upload form; a malformed, duplicated, missing or oversized field is a ``Rejection``."""
    if not body:
        raise Rejection(
            "empty_body",
            f"the request body is empty; send multipart/form-data with fields {', '.join(FIELDS)}",
        )
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise Rejection(
            "bad_multipart",
            f"the body must be multipart/form-data with fields {', '.join(FIELDS)}; got Content-Type "
            f"{ctype[:100] or '(none)'!r}",
        )
    form = await _form(request, body)
    try:
        repeated = sorted({k for k in form if k in FIELDS and len(form.getlist(k)) > 1})
        if repeated:
            raise Rejection(
                "duplicate_field",
                f"form field(s) {', '.join(repeated)} were sent more than once; send each field once",
            )
        image = form.get("image")
        fields = {name: form.get(name) for name in FIELDS}
        missing = [name for name, value in fields.items() if value in (None, "")]
        if missing:
            raise Rejection(
                "missing_field", f"missing form field(s): {', '.join(missing)}; required: {', '.join(FIELDS)}"
            )
        if not isinstance(image, UploadFile):
            raise Rejection("missing_field", "the 'image' field must be a file upload, not a text value")
        station, part = fields["station_id"], fields["part_id"]
        return Upload(
            station if isinstance(station, str) else None,
            part if isinstance(part, str) else None,
            await image.read(),
        )
    finally:
        await form.close()


class InMemoryMultiPartParser(MultiPartParser):
    """Starlette's parser with its file parts kept in memory: the body is already read and capped, so spilling it
    to a temp folder would only add a disk that can be full (a 500 where a 4xx or 503 belongs)."""

    spool_max_size = 1 << 30


async def _form(request: Request, body: bytes) -> FormData:
    async def replay() -> AsyncGenerator[bytes, None]:
        yield body

    parser: MultiPartParser | FormParser
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        parser = FormParser(request.headers, replay())  # text fields only: then the image is missing
    else:
        parser = InMemoryMultiPartParser(
            request.headers, replay(), max_files=4, max_fields=16, max_part_size=MAX_TEXT_FIELD_BYTES
        )
    try:
        return await parser.parse()
    except MultiPartException as e:
        if "exceeded maximum size" in e.message:
            raise Rejection(
                "field_too_large",
                f"a text field is over {MAX_TEXT_FIELD_BYTES} bytes; station_id and part_id must be short ids",
            ) from e
        raise Rejection("bad_multipart", f"the multipart body cannot be parsed: {e.message}") from e
