"""The HTTP scoring service for QA stations (FastAPI).

``POST /v1/inspections`` takes a multipart photo (``image``) with ``station_id`` and ``part_id``, scores it and
stores the record; ``GET /v1/inspections`` and ``GET /v1/inspections/{id}`` read records back; ``/healthz``
(liveness), ``/readyz`` (readiness) and ``/metrics`` (Prometheus) serve operations.

The caller's key is checked from the headers before any byte of the body is read. A station key writes and
reads its own station; an engineer key reads all. Every photo goes through the one ingestion path
(:mod:`inspection.ingest`), so a refusal is a 4xx naming the reason that is on record, and a 503 with
``Retry-After`` means nothing was stored and the station should send again.

Modules: ``app`` (factory), ``deps`` (who is calling), ``upload`` (body and form), ``scoring`` (the batch
scorer and its bounded queue), ``pickup`` (following ``LIVE`` to a newly promoted bundle), ``routes/`` (handlers),
``metrics``, ``settings``.
"""

from inspection.ingest.ids import PART_ID_RE
from inspection.results import REASON_STATUS
from inspection.service.app import create_app
from inspection.service.scoring import BatchScorer, Pipeline
from inspection.service.settings import DEFAULT_MAX_UPLOAD_BYTES, ServiceLimits
from inspection.service.state import public_record

__all__ = [
    "DEFAULT_MAX_UPLOAD_BYTES",
    "PART_ID_RE",
    "REASON_STATUS",
    "BatchScorer",
    "Pipeline",
    "ServiceLimits",
    "create_app",
    "public_record",
]
