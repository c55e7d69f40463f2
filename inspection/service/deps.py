"""Request dependencies: who is calling (from the headers alone), and the limit on unauthenticated attempts."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, deque
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from inspection.auth import ApiKeys, Principal

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="A station's key (its own records) or an engineer's key."
)
ApiKey = Annotated[str | None, Security(api_key_header)]
# The dependencies are ``async`` (and cheap): FastAPI runs plain ``def`` ones in a worker thread, a hop per request.


class AttemptLimiter:
    """Attempts without a valid key: at most ``per_minute`` per client in any 60 s, and ``total_per_minute`` from
    everyone together (so a flood from many addresses cannot fill the database either).

    A client is its IPv4 address, or its IPv6 /64 (one host usually holds a whole /64). At most ``max_clients``
    clients are remembered; the longest-quiet are forgotten first.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        total_per_minute: int | None = None,
        max_clients: int = 10_000,
        window_s: float = 60.0,
    ) -> None:
        self.per_minute = per_minute
        self.total_per_minute = total_per_minute or 30 * per_minute
        self.window_s = window_s
        self.max_clients = max_clients
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._total: deque[float] = deque()
        self._lock = threading.Lock()

    def blocked(self, address: str, now: float | None = None) -> bool:
        """Whether this client is over its limit now (nothing is counted)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events.get(client_of(address), deque())
            return sum(1 for t in events if now - t < self.window_s) >= self.per_minute

    def allow(self, address: str, now: float | None = None) -> bool:
        """Count one attempt; False when the client or everyone together is over the limit (then it is not
        counted)."""
        now = time.monotonic() if now is None else now
        client = client_of(address)
        with self._lock:
            events = self._events.pop(client, None) or deque()
            for queue in (events, self._total):
                while queue and now - queue[0] >= self.window_s:
                    queue.popleft()
            allowed = len(events) < self.per_minute and len(self._total) < self.total_per_minute
            if allowed:
                events.append(now)
                self._total.append(now)
            self._events[client] = events
            while len(self._events) > self.max_clients:
                self._events.popitem(last=False)
            return allowed


def client_of(address: str) -> str:
    """The unit an attempt limit applies to: an IPv4 address, or an IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)


def client_address(request: Request) -> str:
    """The peer's address (a proxy in front should be trusted with ``--forwarded-allow-ips`` in uvicorn)."""
    return request.client.host if request.client else "unknown"


async def identify(request: Request, api_key: ApiKey) -> Principal | None:
    """Whose key the request carries (``X-API-Key``, or ``Authorization: Bearer KEY``), or None."""
    keys: ApiKeys = request.app.state.api_keys
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return keys.identify(api_key or (token.strip() if scheme.lower() == "bearer" else None))


async def require_reader(request: Request, who: Annotated[Principal | None, Depends(identify)]) -> Principal:
    """A station or engineer key, checked before anything else; 401 otherwise, and 429 for a client over its
    limit of attempts without a valid key (whatever key it sends then, so guessing stays slow)."""
    limiter: AttemptLimiter = request.app.state.service.attempts
    address = client_address(request)
    if limiter.blocked(address) or (who is None and not limiter.allow(address)):
        raise HTTPException(
            status_code=429,
            detail="too many attempts without a valid key; wait a minute",
            headers={"Retry-After": "60"},
        )
    if who is None:
        raise HTTPException(status_code=401, detail="a valid X-API-Key header is required to read records")
    return who


async def require_engineer(who: Annotated[Principal | None, Depends(identify)]) -> Principal:
    """An engineer key; 401 without a valid key, 403 with a station's."""
    if who is None:
        raise HTTPException(status_code=401, detail="an engineer's X-API-Key (or Bearer token) is required")
    if who.role != "engineer":
        raise HTTPException(status_code=403, detail="only an engineer key may read the service's metrics")
    return who


Reader = Annotated[Principal, Depends(require_reader)]
Engineer = Annotated[Principal, Depends(require_engineer)]
Caller = Annotated[Principal | None, Depends(identify)]
