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
        for byte in request:  # a byte each 0.25 s recv timeout: the whole request would take about a minute
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
    head, body = upload_request(server, server.api_key, "slow-body-1")
    head = head.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1)
    with connect(server) as sock:
        sock.sendall(head + body[:100])
        time.sleep(DEADLINE_S + 1.0)  # past the header deadline, within the body's limits (60 s, 10 s pause)
        sock.sendall(body[100:])
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]


def test_a_deadline_must_be_positive() -> None:
    assert header_deadline_protocol(2.5).header_timeout_s == 2.5
    with pytest.raises(ValueError, match="above 0 seconds"):
        header_deadline_protocol(0)


def upload_request(server: SpawnedServer, key: str, part: str) -> tuple[bytes, bytes]:
    """A photo upload's head and body, as a station sends them."""
    request = httpx.Request(
        "POST",
        f"{server.url}/v1/inspections",
        headers={"X-API-Key": key, "host": "station"},
        data={"station_id": server.station, "part_id": part},
        files={"image": ("p.png", make_photos(1)[0], "image/png")},
    )
    body = request.read()
    head = "POST /v1/inspections HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
    return head.encode() + b"\r\n", body


def test_a_connection_answered_before_its_body_stays_usable_once_the_body_is_in(
    server: SpawnedServer,
) -> None:
    """A wrong key is refused from the headers (401), before the body is read; the station sends its body anyway
    and keeps the connection: past the deadline its next request is answered, with no stray 408."""
    head, body = upload_request(server, "wrong-key", "refused-1")
    with connect(server) as sock:
        sock.sendall(head)
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:80]
        sock.sendall(body)
        time.sleep(DEADLINE_S + 1.0)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: station\r\nconnection: close\r\n\r\n")
        rest = read_until_closed(sock)
    everything = answer + rest  # the 401's body may come in the second read
    assert b"HTTP/1.1 200" in everything and b"408" not in everything, everything[-300:]


def test_the_rest_of_a_refused_body_may_not_take_longer_than_the_deadline(server: SpawnedServer) -> None:
    head, _ = upload_request(server, "wrong-key", "refused-2")
    with connect(server) as sock:
        sock.sendall(head)
        t0 = time.monotonic()
        answer = read_until_closed(sock)  # the body never comes: the server closes after the deadline
    assert answer.startswith(b"HTTP/1.1 401") and b"408" not in answer
    assert DEADLINE_S - 0.2 < time.monotonic() - t0 < DEADLINE_S + 5
