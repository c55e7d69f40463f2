"""Request dependencies: who is calling (from the headers alone), and the limit on unauthenticated attempts."""

from __future__ import annotations

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


class AttemptLimiter:
    """At most ``per_minute`` events per client address in any 60 s; remembers at most ``max_clients`` addresses
    (the oldest are forgotten first), so a flood of addresses cannot grow it without bound."""

    def __init__(self, per_minute: int, *, max_clients: int = 10_000, window_s: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window_s = window_s
        self.max_clients = max_clients
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> bool:
        """Count one attempt from ``client``; False when it is over the limit (that attempt is not counted)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events.pop(client, None) or deque()
            while events and now - events[0] >= self.window_s:
                events.popleft()
            allowed = len(events) < self.per_minute
            if allowed:
                events.append(now)
            self._events[client] = events
            while len(self._events) > self.max_clients:
                self._events.popitem(last=False)
            return allowed


def client_address(request: Request) -> str:
    """The peer's address (a proxy in front should be trusted with ``--forwarded-allow-ips`` in uvicorn)."""
    return request.client.host if request.client else "unknown"


def identify(request: Request, api_key: ApiKey) -> Principal | None:
    """Whose key the request carries (``X-API-Key``, or ``Authorization: Bearer KEY``), or None."""
    keys: ApiKeys = request.app.state.api_keys
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return keys.identify(api_key or (token.strip() if scheme.lower() == "bearer" else None))


def require_reader(who: Annotated[Principal | None, Depends(identify)]) -> Principal:
    """A station or engineer key, checked before anything else; 401 otherwise."""
    if who is None:
        raise HTTPException(status_code=401, detail="a valid X-API-Key header is required to read records")
    return who


def require_engineer(who: Annotated[Principal | None, Depends(identify)]) -> Principal:
    """An engineer key; 401 without a valid key, 403 with a station's."""
    if who is None:
        raise HTTPException(status_code=401, detail="an engineer's X-API-Key (or Bearer token) is required")
    if who.role != "engineer":
        raise HTTPException(status_code=403, detail="only an engineer key may read the service's metrics")
    return who


Reader = Annotated[Principal, Depends(require_reader)]
Engineer = Annotated[Principal, Depends(require_engineer)]
Caller = Annotated[Principal | None, Depends(identify)]
