"""uvicorn's HTTP/1.1 protocol with a deadline for a request's headers.

uvicorn times out only an idle connection between requests (``timeout_keep_alive``), and that timer stops at the
first byte: a client that opens a connection and sends nothing, or trickles its headers a byte at a time, holds
a socket for as long as it likes (Slowloris; uvicorn issue #157), and ``--max-connections`` such clients shut every
station out. Here a connection must deliver a request's complete headers within ``header_timeout_s`` of its
opening, or of the first byte after its previous answer; otherwise it gets ``408 Request Timeout`` and is closed.
Once the headers are in, the body has the service's own limit (``--body-timeout-s``, see
:mod:`inspection.service.upload`).
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class HeaderDeadlineProtocol(H11Protocol):
    """:class:`H11Protocol` that closes a connection whose request headers are not complete in time."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._between_requests():
            self._arm()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        if not self._between_requests():
            self._disarm()  # the headers are in: a request is being answered

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._between_requests():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.warning(
            "closing the connection from %s: no complete request headers in %g s",
            client,
            self.header_timeout_s,
        )
        self.transport.write(TIMEOUT_RESPONSE)
        self.transport.close()


def header_deadline_protocol(header_timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """:class:`HeaderDeadlineProtocol` with this deadline, for ``uvicorn.run(http=...)``.

    Raises:
        ValueError: a deadline that is not positive.
    """
    if not header_timeout_s > 0:
        raise ValueError(f"header_timeout_s must be above 0 seconds, e.g. 10, got {header_timeout_s}")
    return type(
        "HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout_s": float(header_timeout_s)}
    )
