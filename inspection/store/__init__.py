"""The records store: every inspection, evaluation run and model version, in SQLite or any SQLAlchemy database."""

from __future__ import annotations

from inspection.store.models import (
    STATUS_OK,
    STATUS_REJECTED,
    Base,
    EvaluationRun,
    Inspection,
    ModelVersion,
)

__all__ = ["STATUS_OK", "STATUS_REJECTED", "Base", "EvaluationRun", "Inspection", "ModelVersion"]
