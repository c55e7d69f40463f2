"""Helpers for the store's migration tests."""

from __future__ import annotations

from sqlalchemy import inspect


def columns(engine, table: str) -> set[str]:
    """The column names of ``table`` as the database has them now."""
    return {c["name"] for c in inspect(engine).get_columns(table)}
