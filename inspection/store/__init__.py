"""The records store: every inspection, label, evaluation run, model version, golden photo and promotion, in
SQLite or any SQLAlchemy database.

>>> store = RecordStore("sqlite:////tmp/records.db")  # doctest: +SKIP
>>> store.add_inspection(station_id="s1", part_id="p1", image_sha256=sha, image_path=path, result=result)  # doctest: +SKIP
"""

from __future__ import annotations

from inspection.store.database import StoreConfigError, current_revision, head_revision, make_engine, upgrade
from inspection.store.models import (
    STATUS_OK,
    STATUS_REJECTED,
    Base,
    EvaluationRun,
    GoldenPhoto,
    Inspection,
    Label,
    ModelVersion,
    Promotion,
)
from inspection.store.records import LabelledPhoto, RecordStore, SaveOutcome, dedup_key

__all__ = [
    "STATUS_OK",
    "STATUS_REJECTED",
    "Base",
    "EvaluationRun",
    "GoldenPhoto",
    "Inspection",
    "Label",
    "LabelledPhoto",
    "ModelVersion",
    "Promotion",
    "RecordStore",
    "SaveOutcome",
    "StoreConfigError",
    "current_revision",
    "dedup_key",
    "head_revision",
    "make_engine",
    "upgrade",
]
