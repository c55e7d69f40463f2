"""Slow or silent connections on a real ``inspection serve``: the request-header deadline (``--header-timeout-s``)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from inspection.loadtest import SpawnedServer, make_photos, spawn_server
from inspection.service.protocol import header_deadline_protocol

DEADLINE_S = 1.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Iterator[SpawnedServer]:
    workdir = tmp_path_factory.mktemp("deadline")
    with spawn_server(workdir, models=tiny_models, extra_args=["--header-timeout-s", str(DEADLINE_S)]) as s:
        yield s


def connect(server: SpawnedServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=15)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_silent_connection_gets_408_and_is_closed(server: SpawnedServer) -> None:
    with connect(server) as sock:
        t0 = time.monotonic()
        answer = read_until_closed(sock)
        waited = time.monotonic() - t0
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert DEADLINE_S - 0.2 < waited < DEADLINE_S + 5


def test_headers_trickled_past_the_deadline_are_cut_off(server: SpawnedServer) -> None:
    request = b"GET /healthz HTTP/1.1\r\nhost: station\r\nx-filler: " + b"a" * 200 + b"\r\n\r\n"
    with connect(server) as sock:
        t0 = time.monotonic()
        sock.settimeout(0.25)
        sent = 0
        answer = b""
        for byte in request:  # one byte every 0.1 s: the whole request would take 22 s
            try:
                sock.sendall(bytes([byte]))
                sent += 1
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # the server closed the connection while we were still sending
                break
            if answer:
                break
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            answer += read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert sent < len(request) and time.monotonic() - t0 < DEADLINE_S + 5


def test_a_kept_alive_connection_may_idle_longer_than_the_deadline(server: SpawnedServer) -> None:
    """The deadline runs from a request's first byte, not from the previous answer: idling between requests is
    ``timeout_keep_alive``'s business (30 s)."""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/healthz").status_code == 200
        time.sleep(DEADLINE_S + 1.0)
        assert http.get("/healthz").status_code == 200
        assert http.get("/healthz").status_code == 200


def test_a_slow_body_after_prompt_headers_is_not_cut_by_the_header_deadline(server: SpawnedServer) -> None:
    photo = make_photos(1)[0]
    request = httpx.Request(
        "POST",
        f"{server.url}/v1/inspections",
        headers={"X-API-Key": server.api_key, "host": "station", "connection": "close"},
        data={"station_id": server.station, "part_id": "slow-body-1"},
        files={"image": ("p.png", photo, "image/png")},
    )
    body = request.read()
    head = "POST /v1/inspections HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
    with connect(server) as sock:
        sock.sendall(head.encode() + b"\r\n" + body[:100])
        time.sleep(DEADLINE_S + 1.0)  # past the header deadline, within the body's limits (60 s, 10 s pause)
        sock.sendall(body[100:])
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]


def test_a_deadline_must_be_positive() -> None:
    assert header_deadline_protocol(2.5).header_timeout_s == 2.5
    with pytest.raises(ValueError, match="above 0 seconds"):
        header_deadline_protocol(0)
