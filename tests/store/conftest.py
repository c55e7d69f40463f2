"""Store test fixtures: a SQLite file and a real PostgreSQL database (``pg_url``, tests/conftest.py) for every
store test."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Each store test runs against a SQLite file and against a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'records.db'}"
    return request.getfixturevalue("pg_url")
