"""The records store's tables, as SQLAlchemy ORM models.

Seven tables, with plain names so that dashboards and ad-hoc SQL can read them:

* ``inspections``: one row per part photo a station sent, scored (``status='ok'``, with a verdict of
  ``ok``, ``defective`` or ``review``) or refused (``status='rejected'`` with a ``reason`` code and a ``message``).
* ``evaluation_runs``: one row per evaluation report written by ``inspection evaluate``.
* ``model_versions``: one row per (task, version) of a model the pipeline has used or may use.
* ``labels``: engineers' verdicts on records, beside the model's.
* ``golden_photos``: the frozen golden test set, by photo hash; these photos never enter training.
* ``promotions``: every decision to promote, refuse or roll back a model bundle.
* ``photos``: kept photo bytes, when the photo store is the database itself (``--photos db``).

Timestamps are stored in UTC and come back timezone-aware (see :class:`UTCDateTime`). Probabilities,
per-stage timings and model versions are JSON columns, which work the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false

STATUS_OK = "ok"
STATUS_REJECTED = "rejected"
STATUSES = (STATUS_OK, STATUS_REJECTED)
# A person's verdict is never "review": that is the model handing the part to a person.
LABEL_VERDICTS = ("ok", "defective")
PROMOTION_ACTIONS = ("promote", "refuse", "rollback")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp kept in UTC on every backend and always returned timezone-aware.

    SQLite has no time zones, so values are normalised to UTC on the way in and tagged UTC on the way out;
    naive datetimes handed in are taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""


class Inspection(Base):
    """One photo a station sent and what became of it.

    ``dedup_key`` makes re-sends idempotent: for a scored photo it is ``sha256(station|part|photo sha)``, so
    posting the same part and photo again finds the stored row instead of adding one. A rejected photo gets a
    key that also carries the reason, so a retried bad frame is kept once; attempts with no trustworthy
    identity (a wrong API key, a missing field) get no key and are all kept.
    """

    __tablename__ = "inspections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    station_id: Mapped[str] = mapped_column(String(64), nullable=False)
    part_id: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16), nullable=False, default="api")  # api | watch | batch
    client_address: Mapped[str | None] = mapped_column(String(64))  # the peer of an API request
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=STATUS_OK)  # ok | rejected
    reason: Mapped[str | None] = mapped_column(String(64))  # machine-readable code when rejected
    message: Mapped[str | None] = mapped_column(Text)  # human-readable explanation when rejected
    dedup_key: Mapped[str | None] = mapped_column(String(64), unique=True)

    # The photo: its content hash, size and where the bytes were kept.
    image_sha256: Mapped[str | None] = mapped_column(String(64))
    image_bytes: Mapped[int | None] = mapped_column(Integer)
    image_path: Mapped[str | None] = mapped_column(Text)  # where the file was (watch folder, batch scoring)
    image_key: Mapped[str | None] = mapped_column(String(80))  # the photo's key in the photo store
    conversion: Mapped[str | None] = mapped_column(String(32))  # gray8, rgb, rgba, gray16, cmyk ...
    height: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)

    # The verdict and how it was reached; NULL for rejected photos.
    noise_type: Mapped[str | None] = mapped_column(String(32))
    noise_probability: Mapped[float | None] = mapped_column(Float)
    noise_probabilities: Mapped[dict[str, float] | None] = mapped_column(JSON)
    denoiser: Mapped[str | None] = mapped_column(String(32))
    safe_path: Mapped[bool | None] = mapped_column(Boolean)
    defect_probability: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    verdict: Mapped[str | None] = mapped_column(String(16))  # ok | defective | review
    kind: Mapped[str | None] = mapped_column(String(64))  # the model's defect kind; NULL when it has none
    review_reason: Mapped[str | None] = mapped_column(String(32))  # why the verdict is review (uncertain ...)
    # Out of distribution (inspection.ood): beyond the range of the bundle's training photos; NULL when not
    # known (rejected photos, a bundle without an OOD model, records from before migration 0005).
    ood: Mapped[bool | None] = mapped_column(Boolean)
    ood_score: Mapped[float | None] = mapped_column(Float)  # distance over the OOD threshold: above 1 is out
    model_versions: Mapped[dict[str, str] | None] = mapped_column(JSON)
    timings_ms: Mapped[dict[str, float] | None] = mapped_column(JSON)
    latency_ms: Mapped[float | None] = mapped_column(Float)  # total pipeline time, copied out for charts
    # True when another photo of the same part got the opposite verdict (both records are marked).
    conflict: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())

    __table_args__ = (
        Index("ix_inspections_station_created", "station_id", "created_at"),
        Index("ix_inspections_part_id", "part_id"),
        Index("ix_inspections_created_at", "created_at"),
        # Covering for the dashboard's station counts (migration 0006); it also serves lookups by status.
        Index(
            "ix_inspections_status_stats",
            "status",
            "created_at",
            "station_id",
            "verdict",
            "noise_type",
            "noise_probability",
        ),
        Index("ix_inspections_image_sha256", "image_sha256"),
    )

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (timestamps as ISO 8601 strings in UTC)."""
        out: dict[str, Any] = {c.name: getattr(self, c.name) for c in self.__table__.columns}
        out["created_at"] = self.created_at.isoformat() if self.created_at else None
        return out


class Label(Base):
    """An engineer's verdict on one record (``ok`` or ``defective``, with an optional defect kind and note).

    Labels sit beside the model's verdict, never over it; a record may be labelled again, and the newest label
    holds. They are what ``dataset export`` turns into training data.
    """

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    inspection_id: Mapped[int] = mapped_column(Integer, ForeignKey("inspections.id"), nullable=False)
    verdict: Mapped[str] = mapped_column(String(16), nullable=False)
    kind: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    labelled_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)

    __table_args__ = (Index("ix_labels_inspection_id", "inspection_id"),)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {c.name: getattr(self, c.name) for c in self.__table__.columns}
        out["created_at"] = self.created_at.isoformat() if self.created_at else None
        return out


class GoldenPhoto(Base):
    """One photo of the golden test set, by the SHA-256 of its bytes.

    The set is frozen: rows are only ever added (``dataset export --golden-add``), never changed or removed, and
    a photo whose hash is here never enters training. ``label`` and ``kind`` are the photo's label when it was
    frozen; the export uses the photo's newest label and reports a change.
    """

    __tablename__ = "golden_photos"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(16), nullable=False)  # ok | defective
    kind: Mapped[str | None] = mapped_column(String(64))
    inspection_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("inspections.id"))
    added_by: Mapped[str] = mapped_column(String(64), nullable=False)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {c.name: getattr(self, c.name) for c in self.__table__.columns}
        out["added_at"] = self.added_at.isoformat() if self.added_at else None
        return out


class Promotion(Base):
    """One decision about a model bundle under a models root: ``promote``, ``refuse`` or ``rollback``.

    ``version`` is the bundle the decision is about and ``previous`` the live bundle before it; ``comparison``
    is the candidate-against-live table the decision was made on (None for a rollback without one).
    """

    __tablename__ = "promotions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    models_root: Mapped[str] = mapped_column(Text, nullable=False)
    version: Mapped[str] = mapped_column(String(128), nullable=False)
    previous: Mapped[str | None] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16), nullable=False)  # promote | refuse | rollback
    decided_by: Mapped[str] = mapped_column(String(64), nullable=False)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    comparison: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {c.name: getattr(self, c.name) for c in self.__table__.columns}
        out["decided_at"] = self.decided_at.isoformat() if self.decided_at else None
        return out


class Photo(Base):
    """A kept photo, for the ``db`` photo store (``inspection.store.photos.DatabasePhotoStore``)."""

    __tablename__ = "photos"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class EvaluationRun(Base):
    """One evaluation report: where its JSON file is, and the report itself."""

    __tablename__ = "evaluation_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str | None] = mapped_column(String(128))
    model_versions: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)

    __table_args__ = (Index("ix_evaluation_runs_created_at", "created_at"),)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {c.name: getattr(self, c.name) for c in self.__table__.columns}
        out["created_at"] = self.created_at.isoformat() if self.created_at else None
        return out


class ModelVersion(Base):
    """A model version per task (``noise``, ``denoise_gaussian``, ``defect`` ...), with its metadata."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[str] = mapped_column(String(128), nullable=False)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    in_use: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False
    )

    __table_args__ = (Index("uq_model_versions_task_version", "task", "version", unique=True),)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {c.name: getattr(self, c.name) for c in self.__table__.columns}
        for key in ("created_at", "updated_at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out
