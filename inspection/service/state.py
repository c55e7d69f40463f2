"""What every route of one app shares: the ingestion path, the scorer, the limits and the metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Request
from fastapi.responses import JSONResponse

from inspection.auth import ApiKeys
from inspection.ingest import Ingestor
from inspection.results import Rejection
from inspection.service.deps import AttemptLimiter
from inspection.service.metrics import Metrics
from inspection.service.scoring import BatchScorer
from inspection.service.settings import ServiceLimits
from inspection.service.upload import MULTIPART_OVERHEAD

T = TypeVar("T")
# Record fields a caller never sees: internal keys and where files sit on the server.
PRIVATE_FIELDS = frozenset({"dedup_key", "image_path", "client_address"})


@dataclass
class ServiceState:
    """One app's shared parts; kept on ``app.state.service``."""

    ingestor: Ingestor
    scorer: BatchScorer
    api_keys: ApiKeys
    limits: ServiceLimits
    metrics: Metrics = field(default_factory=Metrics.create)
    attempts: AttemptLimiter = field(init=False)
    uploads: int = 0
    inflight_bytes: int = 0
    readiness: tuple[float, dict[str, str]] | None = None  # (when, problems) of the last readiness check

    def __post_init__(self) -> None:
        self.attempts = AttemptLimiter(self.limits.unauthenticated_per_minute)

    def try_start_upload(self, declared_bytes: int | None) -> int | None:
        """Reserve room for one upload of ``declared_bytes`` (its Content-Length; None: the most allowed); returns
        the bytes reserved, or None when ``max_uploads`` or ``max_inflight_mb`` would be passed. The event loop is
        one thread, so no lock is needed."""
        cap = self.limits.max_upload_bytes + MULTIPART_OVERHEAD
        size = min(declared_bytes if declared_bytes is not None else cap, cap)
        if (
            self.uploads >= self.limits.max_uploads
            or self.inflight_bytes + size > self.limits.max_inflight_mb * 2**20
        ):
            return None
        self.uploads += 1
        self.inflight_bytes += size
        self.metrics.in_flight.set(self.uploads)
        return size

    def end_upload(self, reserved: int) -> None:
        self.uploads -= 1
        self.inflight_bytes -= reserved
        self.metrics.in_flight.set(self.uploads)

    def refusal(
        self, rejection: Rejection, t0: float, *, record_id: int | None = None, recorded: bool = False
    ) -> JSONResponse:
        """The HTTP answer to a refusal: its status, reason and message, and whether (and as what) it is on record."""
        self.metrics.rejections.labels(rejection.reason).inc()
        self.metrics.latency.observe(time.perf_counter() - t0)
        body = {
            "status": "rejected",
            "reason": rejection.reason,
            "detail": rejection.message,
            "id": record_id,
            "recorded": recorded,
        }
        headers = {"Retry-After": str(self.limits.retry_after_s)} if rejection.retryable else None
        return JSONResponse(body, status_code=rejection.http_status, headers=headers)


def service_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


async def blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call (database, disk) in a worker thread, off the event loop."""
    return await anyio.to_thread.run_sync(fn, *args)


def public_record(record: dict[str, Any], *, duplicate: bool = False) -> dict[str, Any]:
    """A stored record as the API returns it: no internal keys, no server paths."""
    out = {k: v for k, v in record.items() if k not in PRIVATE_FIELDS}
    out["duplicate"] = duplicate
    return out
