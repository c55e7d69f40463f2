"""The service's limits: how much it accepts, how long it waits, and when it says "come back later"."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class ServiceLimits:
    """Back-pressure and time limits of the scoring service.

    Attributes:
        max_upload_bytes: the largest photo accepted; bigger uploads get 413 and are not read to the end.
        max_batch: the most waiting uploads one pipeline scores together.
        max_queued_pixels: the most pixels waiting to be scored (a 16 MP photo costs as much as 180 photos of
            300x300); beyond it uploads get 503, so a few huge photos cannot hold the scorer for everyone.
        max_uploads: uploads in progress at once, from the first byte of the body to the answer (so also the
            most photos waiting to be scored); beyond it 503 before any byte of the body is read. Rejecting is
            not free (the station sends its body again), so the default lets 128 stations wait in line.
        max_inflight_mb: megabytes of upload bodies in progress at once, by their ``Content-Length`` (a body
            without one counts as ``max_upload_bytes``); beyond it 503 before the body is read. This, not the
            count, bounds the memory bodies take.
        body_timeout_s: the longest an upload may take to arrive; a slower one gets 408.
        idle_timeout_s: the longest gap between two chunks of an upload; a stalled one gets 408.
        score_timeout_s: the longest an upload waits for its verdict; then 503 and the photo is not scored.
        unauthenticated_per_minute: attempts with a missing or wrong key recorded per client address and
            minute; beyond it 429, and nothing more is stored.
        retry_after_s: the ``Retry-After`` sent with 503 and 429.
    """

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_batch: int = 8
    max_queued_pixels: int = 64_000_000
    max_uploads: int = 128
    max_inflight_mb: float = 256.0
    body_timeout_s: float = 60.0
    idle_timeout_s: float = 10.0
    score_timeout_s: float = 60.0
    unauthenticated_per_minute: int = 20
    retry_after_s: int = 2

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_batch", "max_queued_pixels", "max_uploads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
