"""uvicorn's HTTP/1.1 protocol with a deadline on waiting for a client.

uvicorn times out only an idle connection between requests (``timeout_keep_alive``), and that timer stops at the
first byte: a client that opens a connection and sends nothing, or trickles its headers a byte at a time, holds
a socket for as long as it likes (Slowloris; uvicorn issue #157), and ``--max-connections`` such clients shut every
station out. Here a connection must deliver a request's complete headers within ``header_timeout_s`` of its
opening, or of the first byte of the request after its previous answer, or it gets ``408 Request Timeout`` and is
closed. The same deadline bounds the rest of a body the service answered before reading (a refused upload: 401,
413, 429, 503): after that the connection is closed. While the service reads a body, the body has the service's own
limit (``--body-timeout-s``, :mod:`inspection.service.upload`); between requests, uvicorn's keep-alive.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class HeaderDeadlineProtocol(H11Protocol):
    """:class:`H11Protocol` that closes a connection the client keeps waiting (see the module docstring)."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._awaiting = ""  # what the deadline waits for: "headers", or "body" (the rest of an answered one)
        super().connection_made(transport)
        self._arm("headers")  # a new connection owes its first request's headers

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Arm or disarm the deadline after h11's state moved: armed while a request's headers are begun but not
        complete, or while an answered request's body is still coming; otherwise off, and an idle connection
        left to uvicorn's keep-alive."""
        if self.transport.is_closing():
            self._disarm()
            return
        theirs, ours = self.conn.their_state, self.conn.our_state
        begun = theirs is h11.IDLE and bool(self.conn.trailing_data[0])  # bytes of headers not yet complete
        draining = theirs is h11.SEND_BODY and ours in (h11.DONE, h11.MUST_CLOSE)
        awaiting = "headers" if begun else "body" if draining else ""
        if awaiting and awaiting == self._awaiting:
            return  # still waiting for the same thing: the deadline already runs
        if not awaiting and theirs is h11.IDLE and self._awaiting == "headers" and self.cycle is None:
            return  # a new connection with nothing sent yet: its deadline runs from the opening
        self._disarm()
        if awaiting:  # a fresh deadline: a request begun right after a drained body gets its own
            self._arm(awaiting)
            return
        if theirs is h11.IDLE and ours is h11.IDLE and self.timeout_keep_alive_task is None:
            # idle between requests after a drained body: uvicorn's keep-alive timer was stopped by its bytes
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def _arm(self, awaiting: str) -> None:
        self._deadline = self.loop.call_later(self.header_timeout_s, self._expire)
        self._awaiting = awaiting

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._awaiting = ""

    def _expire(self) -> None:
        self._deadline, self._awaiting = None, ""
        if self.transport.is_closing():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        if self.conn.our_state is h11.IDLE:  # no answer under way: the headers never came
            log.warning(
                "closing the connection from %s: no complete request headers in %g s",
                client,
                self.header_timeout_s,
            )
            self.transport.write(TIMEOUT_RESPONSE)
        else:
            log.warning(
                "closing the connection from %s: the rest of an answered request's body took over %g s",
                client,
                self.header_timeout_s,
            )
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
