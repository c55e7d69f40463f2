"""Helpers of the security suite: keys, photo encoding, uploads, and raw ASGI requests that count body reads."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

STATION_KEYS = {"station-1": "key-one-1234", "station-2": "key-two-5678"}
ENGINEER_KEYS = {"alice": "key-engineer-alice"}
H1 = {"X-API-Key": "key-one-1234"}
H2 = {"X-API-Key": "key-two-5678"}
ENGINEER = {"X-API-Key": "key-engineer-alice"}


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def upload(
    client: TestClient,
    image: bytes,
    *,
    part: str = "part-1",
    station: str = "station-1",
    headers: dict[str, str] | None = None,
) -> Any:
    return client.post(
        "/v1/inspections",
        data={"station_id": station, "part_id": part},
        files={"image": ("p.png", image, "image/png")},
        headers=H1 if headers is None else headers,
    )


@dataclass
class RawResponse:
    """What a raw ASGI call sent back, and how much of the request body the app asked for."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    body_reads: int = 0


def asgi_post(
    app: Any,
    headers: dict[str, str],
    body_chunks: list[bytes],
    *,
    stall: bool = False,
    gone_after_s: float | None = None,
) -> RawResponse:
    """POST /v1/inspections straight into the ASGI app, counting the body chunks it reads.

    With ``stall`` the client promises more body after the last chunk and never sends it (a slow-loris). With
    ``gone_after_s`` the client hangs up that long after its whole body was sent.
    """
    out = RawResponse()
    chunks = list(body_chunks)

    async def receive() -> dict[str, Any]:
        if not chunks:
            if gone_after_s is not None:
                await asyncio.sleep(gone_after_s)
                return {"type": "http.disconnect"}
            await asyncio.sleep(3600)  # a client that never finishes: only a read would wait here
        out.body_reads += 1
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks) or stall}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out.status = message["status"]
            out.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            out.body += message.get("body", b"")

    size = sum(len(c) for c in body_chunks)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/inspections",
        "raw_path": b"/v1/inspections",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (k.lower().encode(), v.encode()) for k, v in {**headers, "content-length": str(size)}.items()
        ],
        "client": ("203.0.113.7", 5555),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=30))
    return out
