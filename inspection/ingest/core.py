"""The one ingestion path: a photo in, a stored record out, for the service, the watch folder and ``score``.

Every photo goes through the same steps, in an order a crash or a full disk cannot break:

1. **admit**: the part id is checked, the bytes hashed, and a record of the same station, part and photo
   looked up (a re-send gets the stored record back, never a second row);
2. **keep** the photo in the photo store, *before* it is scored, so a full photo store refuses the photo
   (``photo_store_unavailable``, retry later) instead of scoring a part whose photo is then lost;
3. **score** (:func:`score_photos`, the one fallback that isolates a photo that breaks the pipeline);
4. **record**: the record is written last and names the photo by its store key. If the database cannot take
   it, the caller gets ``store_unavailable`` (retry later); the kept photo is found again on the retry.

Refusals are :class:`inspection.results.Rejection`\\ s. One whose reason is *retryable* (``RETRYABLE``: the
stores are down, the service is overloaded) was **not** recorded, and the caller must say so (503, leave the
file in the inbox). Any other refusal is recorded as a ``rejected`` record with its reason before the caller
hears of it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from inspection.imageio import MAX_FILE_BYTES
from inspection.ingest.ids import UNAUTHENTICATED_STATION, check_part_id
from inspection.results import InspectionResult, Rejection
from inspection.store.models import STATUS_OK, STATUS_REJECTED
from inspection.store.photos import sha256_hex

if TYPE_CHECKING:
    from inspection.store import RecordStore
    from inspection.store.photos import PhotoStore

log = logging.getLogger(__name__)
FAILURE_MEMORY_S = 30.0
# Refusals after which the photo is not worth keeping: it never arrived whole, or the caller is not trusted.
# Refusals of the photo itself: the same bytes always get the same answer, so a re-send gets the stored refusal
# back instead of being scored again. (``internal_error`` is not among them: a fixed server may judge it.)
FINAL_REASONS = frozenset(
    {"empty", "not_an_image", "corrupt", "too_small", "too_large", "multi_frame", "bad_shape", "bad_dtype",
     "bad_pixels", "not_a_part"}
)  # fmt: skip
NOT_KEPT = frozenset({"upload_too_large", "station_mismatch", "missing_api_key", "unauthorized", "empty"})


class BatchPipeline(Protocol):
    """What ingestion needs from :class:`inspection.pipeline.InspectionPipeline`."""

    def inspect_batch(self, images: Sequence[Any]) -> list[InspectionResult | Rejection]: ...


@dataclass(frozen=True)
class Submission:
    """One photo handed to the ingestion path.

    Attributes:
        station_id: the station it belongs to (already authenticated by the caller).
        part_id: the part id as sent (checked here).
        data: the photo bytes, or None when they could not be read (then ``refused`` says why).
        source: ``api``, ``watch`` or ``batch``.
        path: where the file is or will be filed (watch folder, batch scoring); shown in the record.
        client_address: the peer address of an API request.
        refused: a refusal found before ingestion (an unreadable file, a bad request), to be recorded.
        trusted: False when the station id is a claim nobody vouched for (no dedup, photo not kept).
    """

    station_id: str
    part_id: str | None
    data: bytes | None
    source: str
    path: str | None = None
    client_address: str | None = None
    refused: Rejection | None = None
    trusted: bool = True


@dataclass(frozen=True)
class Admission:
    """A submission that passed the checks and waits to be scored: its hash and its photo's store key."""

    submission: Submission
    data: bytes
    sha256: str
    image_key: str | None


@dataclass(frozen=True)
class Ingested:
    """What became of one submission: the stored record, whether this call created it, and the refusal."""

    record: dict[str, Any]
    created: bool
    rejection: Rejection | None = None

    @property
    def scored(self) -> bool:
        return self.rejection is None and self.record.get("status") == STATUS_OK


def score_photos(pipeline: BatchPipeline, images: Sequence[bytes]) -> list[InspectionResult | Rejection]:
    """Score a batch; if the whole call fails, score photo by photo, so one poison photo cannot fail the rest.

    The pipeline already turns a bad photo into a ``Rejection`` in its place; this is the last line for an
    error outside any one photo (``internal_error``, recorded with the photo kept for a later look).
    """
    try:
        return list(pipeline.inspect_batch(list(images)))
    except Exception:  # noqa: BLE001 - the one fallback of the ingestion path
        if len(images) == 1:
            log.exception("scoring a photo failed")
            return [Rejection("internal_error", "the pipeline failed on this photo; it was kept for review")]
        log.exception("scoring a batch of %d failed; scoring them one at a time", len(images))
    return [out for image in images for out in score_photos(pipeline, [image])]


class Ingestor:
    """Admits, keeps and records photos for one records store and photo store.

    Args:
        store: the records store.
        photos: where photos are kept; None keeps no copy (``score`` on files that stay where they are).
        keep_rejected: keep refused photos too (for a later look), except those in :data:`NOT_KEPT`.
    """

    def __init__(self, store: RecordStore, photos: PhotoStore | None, *, keep_rejected: bool = True) -> None:
        self.store = store
        self.photos = photos
        self.keep_rejected = keep_rejected
        self._failures: dict[str, tuple[float, str]] = {}  # store -> (when, why) of its last failed write

    def problems(self, min_free_bytes: int = 0) -> dict[str, str]:
        """What keeps a photo from being kept and recorded now, by store (``database``, ``photos``); {} when
        neither is known to fail. It reads only (anyone may ask for readiness): the database must answer, the
        photo store must have ``min_free_bytes`` free where it can tell, and no write may have failed in the
        last ``FAILURE_MEMORY_S`` (a full disk or a read-only database shows only when a write fails)."""
        out: dict[str, str] = {}
        if not self.store.ping():
            out["database"] = "does not answer"
        free = self.photos.free_bytes() if self.photos is not None else None
        if free is not None and free < min_free_bytes:
            out["photos"] = (
                f"{free / 2**20:.1f} MiB free, below the {min_free_bytes / 2**20:.0f} MiB a photo may need"
            )
        now = time.monotonic()
        for which, (when, why) in list(self._failures.items()):
            if which not in out and now - when < FAILURE_MEMORY_S:
                out[which] = f"a write failed {now - when:.0f} s ago: {why}"
        return out

    def admit(self, sub: Submission) -> Admission | Ingested:
        """Check, hash, dedup and keep one submission; a refusal is recorded and returned as ``Ingested``.

        Raises:
            Rejection: a retryable one (``photo_store_unavailable``, ``store_unavailable``); nothing was stored.
        """
        if sub.refused is not None:
            return self.reject(sub, sub.refused)
        if sub.data is None:
            return self.reject(sub, Rejection("unreadable", "no photo bytes were received"))
        try:
            check_part_id(sub.part_id)
            if not sub.data:
                raise Rejection("empty", "the photo is empty (0 bytes)")
            if len(sub.data) > MAX_FILE_BYTES:
                raise Rejection(
                    "too_large", f"the photo is {len(sub.data):,} bytes; the limit is {MAX_FILE_BYTES:,}"
                )
        except Rejection as e:
            return self.reject(sub, e)
        sha = sha256_hex(sub.data)
        found = dict(station_id=sub.station_id, part_id=sub.part_id or "", image_sha256=sha)
        existing = self._guard(lambda: self.store.find_inspection(**found))
        if existing is not None:
            return Ingested(existing, created=False)
        refused = self._guard(lambda: self.store.find_rejection(**found))
        if refused is not None and refused["reason"] in FINAL_REASONS:  # the same bytes get the same answer
            return Ingested(
                refused, created=False, rejection=Rejection(refused["reason"], refused["message"] or "")
            )
        return Admission(sub, sub.data, sha, self._keep(sub.data, sha))

    def record(self, admission: Admission, outcome: InspectionResult | Rejection) -> Ingested:
        """Write the record of a scored (or, after scoring, refused) admission.

        Raises:
            Rejection: ``store_unavailable`` when the database cannot take the record.
        """
        sub = admission.submission
        if isinstance(outcome, Rejection):
            return self.reject(sub, outcome, sha=admission.sha256, key=admission.image_key)
        saved = self._guard(
            lambda: self.store.save_inspection(
                station_id=sub.station_id,
                part_id=sub.part_id,
                image_sha256=admission.sha256,
                image_key=admission.image_key,
                image_path=sub.path,
                result=outcome,
                image_bytes=len(admission.data),
                source=sub.source,
                client_address=sub.client_address,
            ),
            write=True,
        )
        return Ingested(saved.record or self._get(saved.id), created=saved.created)

    def reject(
        self, sub: Submission, rejection: Rejection, *, sha: str | None = None, key: str | None = None
    ) -> Ingested:
        """Record a refusal (the photo kept for a later look when it is worth it) and return it.

        Raises:
            Rejection: ``store_unavailable`` when the refusal cannot be recorded (it must not be reported as if
                it were).
        """
        data = sub.data
        if data is not None and sha is None:
            sha = sha256_hex(data)
        if (
            key is None
            and data
            and sha
            and sub.trusted
            and self.keep_rejected
            and rejection.reason not in NOT_KEPT
        ):
            try:
                key = self._keep(data, sha)
            except Rejection:
                key = None  # the refusal is still recorded, without its photo
        trusted = sub.trusted and sub.station_id != UNAUTHENTICATED_STATION
        saved = self._guard(
            lambda: self.store.save_inspection(
                station_id=sub.station_id,
                part_id=sub.part_id if trusted else None,
                image_sha256=sha,
                image_key=key,
                image_path=sub.path,
                result=None,
                status=STATUS_REJECTED,
                reason=rejection.reason,
                message=rejection.message,
                image_bytes=len(data) if data is not None else None,
                source=sub.source,
                client_address=sub.client_address,
                dedup=trusted and rejection.reason != "station_mismatch",
            ),
            write=True,
        )
        return Ingested(saved.record or self._get(saved.id), created=saved.created, rejection=rejection)

    def ingest_batch(
        self, pipeline: BatchPipeline, submissions: Sequence[Submission]
    ) -> list[Ingested | Rejection]:
        """Admit, score (in one batch) and record each submission.

        Returns one entry per submission: ``Ingested`` (scored, re-sent or refused, and recorded), or a
        retryable ``Rejection`` when the stores could not take it (nothing was recorded; try it again later).
        """
        out: list[Ingested | Rejection | None] = [None] * len(submissions)
        waiting: list[tuple[int, Admission]] = []
        for i, sub in enumerate(submissions):
            try:
                admitted = self.admit(sub)
            except Rejection as e:
                out[i] = e
                continue
            if isinstance(admitted, Ingested):
                out[i] = admitted
            else:
                waiting.append((i, admitted))
        results = score_photos(pipeline, [a.data for _, a in waiting]) if waiting else []
        for (i, admitted), result in zip(waiting, results, strict=True):
            try:
                out[i] = self.record(admitted, result)
            except Rejection as e:
                out[i] = e
        return [o for o in out if o is not None]

    # -- helpers ---------------------------------------------------------------------------------------------

    def _keep(self, data: bytes, sha: str) -> str | None:
        if self.photos is None:
            return None
        try:
            key = self.photos.put(data, sha)
        except OSError as e:
            self._failures["photos"] = (time.monotonic(), str(e.strerror or e))
            log.error("cannot keep photo %s in %s: %s", sha[:12], self.photos.url, e)
            raise Rejection(
                "photo_store_unavailable",
                f"the photo store cannot keep the photo ({e.strerror or e}); nothing was recorded, send it again "
                "later",
            ) from e
        self._failures.pop("photos", None)
        return key

    def _guard(self, call: Any, *, write: bool = False) -> Any:
        """Run a database call; a database that cannot answer becomes a retryable ``store_unavailable``.

        A failure is remembered for :meth:`problems`; a successful write forgets it.
        """
        try:
            result = call()
        except SQLAlchemyError as e:
            self._failures["database"] = (time.monotonic(), _first_line(e))
            log.error("records store error: %s", _first_line(e))
            raise Rejection(
                "store_unavailable",
                f"the records database cannot take the record ({e.__class__.__name__}); nothing was recorded, "
                "send it again later",
            ) from e
        if write:
            self._failures.pop("database", None)
        return result

    def _get(self, record_id: int) -> dict[str, Any]:
        record = self._guard(lambda: self.store.get_inspection(record_id))
        if record is None:  # pragma: no cover - deleted between the write and the read
            raise Rejection("store_unavailable", f"record {record_id} vanished right after it was written")
        return dict(record)


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.splitlines()[0][:200] if text else error.__class__.__name__
