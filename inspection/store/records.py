"""``RecordStore``: the one API through which the service, the watcher and batch scoring keep records."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, case, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from inspection.paths import default_db_url
from inspection.results import InspectionResult
from inspection.store import database
from inspection.store.models import (
    LABEL_VERDICTS,
    PROMOTION_ACTIONS,
    STATUS_OK,
    STATUSES,
    EvaluationRun,
    GoldenPhoto,
    Inspection,
    Label,
    ModelVersion,
    Promotion,
    utcnow,
)

MAX_LIST_LIMIT = 1000
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class SaveOutcome:
    """Where a record went: its id, whether this call created it (False: an identical one was stored), and the
    stored record itself when this call created it (saves a read)."""

    id: int
    created: bool
    record: dict[str, Any] | None = None


@dataclass(frozen=True)
class LabelledPhoto:
    """A labelled record's photo and its newest label, as :meth:`RecordStore.labelled_photos` yields them.

    Attributes:
        inspection_id: the record.
        image_key: the photo's key in the photo store; None when the record kept no photo.
        image_sha256: the SHA-256 of the photo bytes the record was made from (None when it has no photo).
        verdict: the newest label's verdict, ``ok`` or ``defective``.
        kind: the newest label's defect kind, or None.
        labelled_by, labelled_at: who gave the newest label, and when.
        label_id: the newest label's id (ids grow with time within one store).
        image_path: where the photo was when it was scored (``inspection score`` and the watch folder name it),
            or None.
    """

    inspection_id: int
    image_key: str | None
    image_sha256: str | None
    verdict: str
    kind: str | None
    labelled_by: str
    labelled_at: datetime
    label_id: int
    image_path: str | None = None


def dedup_key(
    station_id: str | None, part_id: str | None, image_sha256: str | None, status: str, reason: str | None
) -> str | None:
    """The idempotency key of a record, or None when the attempt has no identity to deduplicate on."""
    if not (station_id and part_id and image_sha256):
        return None
    parts = [status, station_id, part_id, image_sha256] + ([] if status == STATUS_OK else [reason or ""])
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _check_filters(filters: Mapping[str, Any]) -> None:
    unknown = set(filters) - {"part_id", "part_id_prefix", "source", "noise_type", "reason", "conflict"}
    if unknown:
        raise TypeError(f"unknown filter(s) {sorted(unknown)}; see RecordStore.list_inspections")


def ood_fields(result: InspectionResult) -> tuple[bool | None, float | None]:
    """``(ood, ood_score)`` as a record keeps them: both None when the bundle has no OOD model.

    A result says ``ood=False`` without an OOD model; a record says NULL (not known), so that a station's share
    of flagged photos (:meth:`RecordStore.ood_share`) counts only photos that were checked.
    """
    score = None if result.ood_score is None else float(result.ood_score)
    return (True if result.ood else (False if score is not None else None)), score


def ood_share_query(station_id: str, last: int) -> Select[Any]:
    """SQL for ``(flagged, photos)`` over the station's ``last`` newest records with a known OOD flag.

    The newest are found on the ``(station_id, created_at)`` index, read backwards: no sort, no scan of older
    records. :meth:`RecordStore.ood_share` and the dashboard's Stations page both run it.
    """
    newest = (
        select(Inspection.ood)
        .where(Inspection.station_id == station_id, Inspection.ood.is_not(None))
        .order_by(Inspection.created_at.desc(), Inspection.id.desc())
        .limit(max(0, int(last)))
        .subquery()
    )
    flagged = func.coalesce(func.sum(case((newest.c.ood.is_(True), 1), else_=0)), 0)
    return select(flagged, func.count()).select_from(newest)


def _check_status(status: str, result: InspectionResult | None, reason: str | None) -> None:
    """Refuse an unknown status, a scored record without its result, and a rejected one without a reason."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    if status == STATUS_OK and result is None:
        raise ValueError(
            "a record with status 'ok' needs the InspectionResult; pass status='rejected' and a reason otherwise"
        )
    if status != STATUS_OK and not reason:
        raise ValueError("a rejected record needs a reason code, e.g. reason='corrupt'")


def _apply_result(row: Inspection, result: InspectionResult, conversion: str | None) -> None:
    """Copy a verdict and how it was reached onto a record."""
    row.noise_type = result.noise_type
    row.noise_probability = float(result.noise_probability)
    row.noise_probabilities = {k: float(v) for k, v in result.noise_probabilities.items()}
    row.denoiser = result.denoiser
    row.safe_path = bool(result.safe_path)
    row.defect_probability = float(result.defect_probability)
    row.threshold = float(result.threshold)
    row.verdict = result.verdict
    row.kind = result.kind[:64] or None
    row.review_reason = result.review_reason[:32] or None
    row.ood, row.ood_score = ood_fields(result)
    row.model_versions = dict(result.model_versions)
    row.timings_ms = {k: float(v) for k, v in result.timings_ms.items()}
    row.latency_ms = float(result.timings_ms["total"]) if "total" in result.timings_ms else None
    row.conversion = conversion or result.conversion
    row.height = result.height or None
    row.width = result.width or None


class RecordStore:
    """The records database: inspections, labels, the golden set, promotions, evaluation runs, model versions.

    Args:
        url: a SQLAlchemy URL; None means :func:`inspection.paths.default_db_url` (SQLite in the data directory).
        migrate: bring the schema to the newest migration on open (the default). Opening is cheap when the
            database is already current.

    Every write commits before returning, so a record that a caller was told about survives a crash.
    """

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        self.url = url or default_db_url()
        self.engine = database.make_engine(self.url)
        if migrate:
            database.upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"RecordStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Release all pooled connections."""
        self.engine.dispose()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inspections ---------------------------------------------------------------------------------------

    def save_inspection(
        self,
        *,
        station_id: str,
        part_id: str | None,
        image_sha256: str | None,
        image_path: str | None,
        result: InspectionResult | None,
        image_key: str | None = None,
        client_address: str | None = None,
        status: str = STATUS_OK,
        reason: str | None = None,
        message: str | None = None,
        conversion: str | None = None,
        image_bytes: int | None = None,
        source: str = "api",
        dedup: bool = True,
        created_at: datetime | None = None,
    ) -> SaveOutcome:
        """Store one inspection and say whether it was new.

        A scored record is idempotent on (station, part, photo sha): storing it again returns the first id.
        A rejected record is idempotent on the same plus its reason, unless ``dedup`` is False (used for
        attempts whose claimed identity cannot be trusted, such as a wrong API key). When another photo of the
        same part got the opposite verdict, every scored record of the part is marked ``conflict``.

        Raises:
            ValueError: for an unknown status, or a scored record without a result.
        """
        _check_status(status, result, reason)
        key = (
            dedup_key(station_id, part_id, image_sha256, status, reason)
            if dedup or status == STATUS_OK
            else None
        )
        row = Inspection(
            created_at=created_at or utcnow(),
            station_id=station_id[:64],
            part_id=part_id[:128] if part_id is not None else None,
            source=source,
            status=status,
            reason=reason,
            message=message,
            dedup_key=key,
            image_sha256=image_sha256,
            image_bytes=image_bytes,
            image_path=image_path,
            image_key=image_key,
            client_address=client_address[:64] if client_address else None,
            conversion=conversion,
        )
        if result is not None:
            _apply_result(row, result, conversion)
        try:
            with self._sessions.begin() as session:
                session.add(row)
                session.flush()
                saved = SaveOutcome(row.id, True, row.to_dict())
        except IntegrityError:
            if key is None:
                raise
        else:
            if row.verdict is not None and row.part_id is not None and self._mark_conflicts(row):
                saved = SaveOutcome(row.id, True, {**(saved.record or {}), "conflict": True})
            return saved
        existing = self._id_by_key(key)
        if existing is None:  # pragma: no cover - the clash was on another constraint
            raise RuntimeError(
                f"could not store the record for part {part_id!r} and could not find a stored copy"
            )
        return SaveOutcome(existing, False)

    def _mark_conflicts(self, row: Inspection) -> bool:
        """Mark every scored record of this station's part when its photos got opposite verdicts.

        Run after the record's own commit, so two opposite verdicts committed at once still see each other (each
        then marks both). Only one station's records are compared: no station learns of, or changes, another's.
        """
        same_part = (
            (Inspection.station_id == row.station_id)
            & (Inspection.part_id == row.part_id)
            & (Inspection.status == STATUS_OK)
        )
        # "review" is no opinion, so it contradicts neither ok nor defective.
        opinions = same_part & Inspection.verdict.in_(LABEL_VERDICTS)
        with self.engine.connect() as conn:  # a read first: a write transaction only for a conflict
            verdicts = conn.scalar(select(func.count(func.distinct(Inspection.verdict))).where(opinions))
        if (verdicts or 0) < 2:
            return False
        with self.engine.begin() as conn:
            conn.execute(update(Inspection).where(same_part).values(conflict=True))
        return True

    def add_inspection(self, **kwargs: Any) -> int:
        """Store one inspection and return its id (an identical stored record's id on a re-send).

        Takes the keyword arguments of :meth:`save_inspection`.
        """
        return self.save_inspection(**kwargs).id

    def _id_by_key(self, key: str) -> int | None:
        with self._sessions() as session:
            return session.scalar(select(Inspection.id).where(Inspection.dedup_key == key))

    def find_inspection(self, *, station_id: str, part_id: str, image_sha256: str) -> dict[str, Any] | None:
        """The scored record for this station, part and photo, if one is stored."""
        key = dedup_key(station_id, part_id, image_sha256, STATUS_OK, None)
        with self._sessions() as session:
            row = session.scalar(select(Inspection).where(Inspection.dedup_key == key))
            return row.to_dict() if row else None

    def find_rejection(
        self, *, station_id: str, part_id: str, image_sha256: str, reason: str | None = None
    ) -> dict[str, Any] | None:
        """The rejected record for this station, part and photo (with this ``reason``, or the newest of any)."""
        if reason is not None:
            query = select(Inspection).where(
                Inspection.dedup_key == dedup_key(station_id, part_id, image_sha256, "rejected", reason)
            )
        else:
            query = (
                select(Inspection)
                .where(
                    Inspection.image_sha256 == image_sha256,
                    Inspection.station_id == station_id,
                    Inspection.part_id == part_id,
                    Inspection.status == "rejected",
                )
                .order_by(Inspection.id.desc())
                .limit(1)
            )
        with self._sessions() as session:
            row = session.scalar(query)
            return row.to_dict() if row else None

    def get_inspection(self, id: int) -> dict[str, Any] | None:
        """One record by id, or None."""
        with self._sessions() as session:
            row = session.get(Inspection, id)
            return row.to_dict() if row else None

    def _filtered(self, query: Select[Any], filters: Mapping[str, Any]) -> Select[Any]:
        if filters.get("station_id") is not None:
            query = query.where(Inspection.station_id == filters["station_id"])
        if filters.get("part_id") is not None:
            query = query.where(Inspection.part_id == filters["part_id"])
        if filters.get("part_id_prefix") is not None:
            query = query.where(Inspection.part_id.startswith(filters["part_id_prefix"], autoescape=True))
        if filters.get("since") is not None:
            query = query.where(Inspection.created_at >= filters["since"])
        if filters.get("until") is not None:
            query = query.where(Inspection.created_at < filters["until"])
        for name in ("verdict", "status", "source", "noise_type", "reason", "conflict"):
            if filters.get(name) is not None:
                query = query.where(getattr(Inspection, name) == filters[name])
        return query

    def list_inspections(
        self,
        station_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        verdict: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
        **filters: Any,
    ) -> list[dict[str, Any]]:
        """Records matching the filters, newest first.

        Args:
            station_id, verdict, status: exact matches.
            since, until: ``since <= created_at < until`` (naive datetimes are taken as UTC).
            limit, offset: paging; ``limit`` is capped at 1000.
            **filters: also ``part_id``, ``part_id_prefix``, ``source``, ``noise_type``, ``reason``, ``conflict``.
        """
        _check_filters(filters)
        filters.update(station_id=station_id, since=since, until=until, verdict=verdict, status=status)
        query = self._filtered(select(Inspection), filters).order_by(Inspection.id.desc())
        query = query.limit(max(0, min(int(limit), MAX_LIST_LIMIT))).offset(max(0, int(offset)))
        with self._sessions() as session:
            return [row.to_dict() for row in session.scalars(query)]

    def count_inspections(
        self,
        station_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        verdict: str | None = None,
        status: str | None = None,
        **filters: Any,
    ) -> int:
        """How many records match; same filters as :meth:`list_inspections`."""
        _check_filters(filters)
        filters.update(station_id=station_id, since=since, until=until, verdict=verdict, status=status)
        query = self._filtered(select(func.count()).select_from(Inspection), filters)
        with self._sessions() as session:
            return int(session.scalar(query) or 0)

    def ood_share(self, station_id: str, last: int | None = None) -> tuple[int, int]:
        """``(flagged, photos)`` over the station's ``last`` newest records whose OOD flag is known.

        ``last`` defaults to :data:`inspection.ood.WARN_WINDOW` (imported only then: that module loads torch).

        Records with no flag (rejected photos, a bundle without an OOD model, records from before the flag) are
        left out, not counted as in range. One query on the ``(station_id, created_at)`` index, cheap enough to
        run for every upload; :func:`inspection.ood.station_warning` turns the pair into a warning.
        """
        if last is None:
            from inspection.ood import WARN_WINDOW

            last = WARN_WINDOW
        with self._sessions() as session:
            flagged, photos = session.execute(ood_share_query(station_id, last)).one()
        return int(flagged), int(photos)

    # -- labels --------------------------------------------------------------------------------------------

    def add_label(
        self,
        inspection_id: int,
        *,
        verdict: str,
        labelled_by: str,
        kind: str | None = None,
        note: str | None = None,
    ) -> dict[str, Any] | None:
        """Label a record (the newest label holds); None when there is no such record.

        Raises:
            ValueError: for a verdict other than ``ok`` or ``defective``.
        """
        if verdict not in LABEL_VERDICTS:
            raise ValueError(f"a label's verdict must be one of {LABEL_VERDICTS}, got {verdict!r}")
        with self._sessions.begin() as session:
            if session.get(Inspection, inspection_id) is None:
                return None
            row = Label(
                inspection_id=inspection_id, verdict=verdict, kind=kind, note=note, labelled_by=labelled_by
            )
            session.add(row)
            session.flush()
            return row.to_dict()

    def list_labels(self, inspection_id: int) -> list[dict[str, Any]]:
        """A record's labels, newest first."""
        query = select(Label).where(Label.inspection_id == inspection_id).order_by(Label.id.desc())
        with self._sessions() as session:
            return [row.to_dict() for row in session.scalars(query)]

    def labelled_photos(self) -> list[LabelledPhoto]:
        """Every labelled record with its newest label and its photo's key and hash, oldest record first.

        Records of any status are included, with or without a kept photo: the caller decides what it can use
        and reports the rest. Several records may share one photo (the same bytes sent twice).
        """
        newest = (
            select(Label.inspection_id, func.max(Label.id).label("label_id"))
            .group_by(Label.inspection_id)
            .subquery()
        )
        query = (
            select(
                Inspection.id,
                Inspection.image_key,
                Inspection.image_sha256,
                Label.verdict,
                Label.kind,
                Label.labelled_by,
                Label.created_at,
                Label.id,
                Inspection.image_path,
            )
            .join(newest, newest.c.inspection_id == Inspection.id)
            .join(Label, Label.id == newest.c.label_id)
            .order_by(Inspection.id)
        )
        with self._sessions() as session:
            return [LabelledPhoto(*row) for row in session.execute(query)]

    # -- the golden test set -------------------------------------------------------------------------------

    def golden_hashes(self) -> set[str]:
        """The SHA-256 of every photo in the golden test set."""
        with self._sessions() as session:
            return set(session.scalars(select(GoldenPhoto.sha256)))

    def list_golden(self) -> list[dict[str, Any]]:
        """The golden test set, in the order it grew."""
        query = select(GoldenPhoto).order_by(GoldenPhoto.added_at, GoldenPhoto.sha256)
        with self._sessions() as session:
            return [row.to_dict() for row in session.scalars(query)]

    def add_golden(self, items: Iterable[Mapping[str, Any]], *, added_by: str) -> int:
        """Add photos to the golden test set and return how many were new.

        Each item has ``sha256`` (of the photo bytes) and ``label`` (``ok`` or ``defective``), and may have
        ``kind`` and ``inspection_id``. A hash already in the set keeps its first row: the set is frozen, it
        only grows.

        Raises:
            ValueError: for a malformed hash or a label other than ``ok``/``defective``; nothing is added then.
        """
        rows: dict[str, dict[str, Any]] = {}
        now = utcnow()
        for item in items:
            sha = str(item.get("sha256") or "").lower()
            if not SHA256_RE.fullmatch(sha):
                raise ValueError(
                    f"a golden photo needs the 64-hex-digit SHA-256 of its bytes, got {sha[:80]!r}"
                )
            label = item.get("label")
            if label not in LABEL_VERDICTS:
                raise ValueError(f"golden photo {sha}: label must be one of {LABEL_VERDICTS}, got {label!r}")
            kind = item.get("kind") or None
            rows.setdefault(
                sha,
                dict(
                    sha256=sha,
                    label=label,
                    kind=str(kind)[:64] if kind else None,
                    inspection_id=item.get("inspection_id"),
                    added_by=added_by[:64],
                    added_at=now,
                ),
            )
        if not rows:
            return 0
        for attempt in range(2):
            try:
                with self._sessions.begin() as session:
                    known = set(
                        session.scalars(select(GoldenPhoto.sha256).where(GoldenPhoto.sha256.in_(rows)))
                    )
                    new = [GoldenPhoto(**values) for sha, values in rows.items() if sha not in known]
                    session.add_all(new)
                    return len(new)
            except IntegrityError:  # another export added one of these hashes first: read again
                if attempt:
                    raise
        raise AssertionError("unreachable")

    # -- promotions ----------------------------------------------------------------------------------------

    def record_promotion(
        self,
        models_root: str | Path,
        version: str,
        previous: str | None,
        action: str,
        decided_by: str,
        comparison: dict[str, Any] | None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Record a decision about bundle ``version`` under ``models_root`` and return the stored row.

        Args:
            models_root: the models root whose ``LIVE`` pointer the decision is about (pass a resolved path, so
                one root is always named the same way).
            version: the bundle decided on: the candidate (``promote``, ``refuse``) or the bundle rolled back to.
            previous: the live bundle before the decision (None when none was live).
            action: ``promote``, ``refuse`` or ``rollback``.
            decided_by: who decided (a user name, or the command).
            comparison: the candidate-against-live table the decision rested on (JSON-ready), if any.
            note: free text, such as why a rollback was made.

        Raises:
            ValueError: for an unknown action.
        """
        if action not in PROMOTION_ACTIONS:
            raise ValueError(f"a promotion's action must be one of {PROMOTION_ACTIONS}, got {action!r}")
        row = Promotion(
            models_root=str(models_root),
            version=version,
            previous=previous,
            action=action,
            decided_by=decided_by[:64],
            decided_at=utcnow(),
            comparison=comparison,
            note=note,
        )
        with self._sessions.begin() as session:
            session.add(row)
            session.flush()
            return row.to_dict()

    def list_promotions(
        self, models_root: str | Path | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Promotion decisions, newest first, optionally for one models root; ``limit`` is capped at 1000."""
        query = select(Promotion).order_by(Promotion.id.desc())
        if models_root is not None:
            query = query.where(Promotion.models_root == str(models_root))
        query = query.limit(max(0, min(int(limit), MAX_LIST_LIMIT)))
        with self._sessions() as session:
            return [row.to_dict() for row in session.scalars(query)]

    # -- evaluation runs and model versions ----------------------------------------------------------------

    def add_evaluation_run(self, report: dict[str, Any], path: str) -> int:
        """Keep an evaluation report (the JSON itself, and where its file is); returns the run's id."""
        versions = report.get("model_versions")
        if not isinstance(versions, dict):  # the report format's "models": {task: {"version": ...}}
            models: dict[str, Any] = report["models"] if isinstance(report.get("models"), dict) else {}
            versions = {k: v.get("version") for k, v in models.items() if isinstance(v, dict)} or None
        name = report.get("name") or report.get("id")
        name = str(name)[:128] if name is not None else None
        with self._sessions.begin() as session:
            row = EvaluationRun(path=str(path), report=report, model_versions=versions, name=name)
            session.add(row)
            session.flush()
            return row.id

    def list_evaluation_runs(self, limit: int = 100) -> list[dict[str, Any]]:
        """Evaluation runs, newest first."""
        query = select(EvaluationRun).order_by(EvaluationRun.id.desc()).limit(min(limit, MAX_LIST_LIMIT))
        with self._sessions() as session:
            return [row.to_dict() for row in session.scalars(query)]

    def upsert_model_version(
        self, task: str, version: str, meta: dict[str, Any] | None = None, in_use: bool = False
    ) -> int:
        """Add or update a model version; marking one ``in_use`` clears the flag on the task's other versions."""
        for attempt in range(2):
            try:
                with self._sessions.begin() as session:
                    return self._upsert_model_version(session, task, version, meta, in_use)
            except IntegrityError:  # another process inserted the same version first
                if attempt:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _upsert_model_version(
        session: Session, task: str, version: str, meta: dict[str, Any] | None, in_use: bool
    ) -> int:
        row = session.scalar(
            select(ModelVersion).where(ModelVersion.task == task, ModelVersion.version == version)
        )
        if row is None:
            row = ModelVersion(task=task, version=version, meta=meta, in_use=in_use)
            session.add(row)
        else:
            if meta is not None:
                row.meta = meta
            row.in_use = in_use
            row.updated_at = utcnow()
        session.flush()
        if in_use:
            session.execute(
                update(ModelVersion)
                .where(ModelVersion.task == task, ModelVersion.id != row.id)
                .values(in_use=False)
            )
        return row.id

    def register_models(self, pipeline: Any) -> dict[str, str]:
        """Record the model versions a pipeline scores with, marked ``in_use``; returns ``{task: version}``.

        Takes anything with ``model_versions`` (an :class:`inspection.pipeline.InspectionPipeline`); a checkpoint's
        ``meta`` and folder are kept when the pipeline exposes them (``pipeline.noise``, ``pipeline.defect``).
        """
        versions = {str(k): str(v) for k, v in dict(pipeline.model_versions).items()}
        for task, version in versions.items():
            checkpoint = getattr(pipeline, task, None)
            meta = getattr(checkpoint, "meta", None)
            meta = dict(meta) if isinstance(meta, dict) else {}
            path = getattr(checkpoint, "path", None)
            if path is not None:
                meta.setdefault("path", str(path))
            self.upsert_model_version(task, version, meta or None, in_use=True)
        return versions

    def list_model_versions(self, task: str | None = None) -> list[dict[str, Any]]:
        """Model versions, newest first, optionally for one task."""
        query = select(ModelVersion).order_by(ModelVersion.id.desc())
        if task is not None:
            query = query.where(ModelVersion.task == task)
        with self._sessions() as session:
            return [row.to_dict() for row in session.scalars(query)]

    # -- health --------------------------------------------------------------------------------------------

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def check_writable(self) -> None:
        """Raise ``SQLAlchemyError`` when the database cannot take a write now (unreachable, read-only).

        It writes a row in a transaction that is rolled back, so nothing changes. A full disk shows only when a
        commit fails; callers track that themselves (``Ingestor.problems``).
        """
        with self.engine.connect() as conn, conn.begin() as tx:
            conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
            tx.rollback()

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result (``ok`` when sound); ``ok`` on other backends after a ping."""
        if self.engine.dialect.name != "sqlite":
            return "ok" if self.ping() else "unreachable"
        with self.engine.connect() as conn:
            rows = conn.execute(text("PRAGMA integrity_check")).scalars().all()
        return "; ".join(str(r) for r in rows)
