"""Dashboard fixtures: one synthetic data root (reports, model metadata, photos, records) per test session."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import Table, insert

from inspection.dashboard import fixtures
from inspection.store.models import Inspection

APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
N_RECORDS = 4000


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dashboard-data")
    fixtures.write_fixture_all(root, n_records=N_RECORDS)
    return root


@pytest.fixture(scope="session")
def data_env(data_root: Path) -> dict[str, str]:
    return {
        "INSPECTION_REPORTS": str(data_root / "reports"),
        "INSPECTION_DB": f"sqlite:///{data_root / 'records.db'}",
        "INSPECTION_MODELS": str(data_root / "models"),
        "INSPECTION_PHOTOS": str(data_root / "photo-store"),
        "INSPECTION_DASHBOARD_NO_MODELS": "1",
    }


@pytest.fixture(autouse=True)
def no_login(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages open without a login unless a test configures one (as on loopback)."""
    monkeypatch.delenv("INSPECTION_DASHBOARD_AUTH_CONFIG", raising=False)
    monkeypatch.delenv("INSPECTION_DASHBOARD_AUTH_HEADER", raising=False)


@pytest.fixture
def dashboard_env(monkeypatch: pytest.MonkeyPatch, data_env: dict[str, str]) -> dict[str, str]:
    for key, value in data_env.items():
        monkeypatch.setenv(key, value)
    return data_env


@pytest.fixture
def empty_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Sources that do not exist yet: no reports folder, no database file, no models."""
    monkeypatch.setenv("INSPECTION_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("INSPECTION_DB", f"sqlite:///{tmp_path / 'records.db'}")
    monkeypatch.setenv("INSPECTION_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("INSPECTION_PHOTOS", str(tmp_path / "photos"))
    monkeypatch.setenv("INSPECTION_DASHBOARD_NO_MODELS", "1")
    return tmp_path


Batch = tuple[str, datetime, int, int]  # station, when, scored parts, how many of them defective


def write_batches(url: str, batches: list[Batch], *, spread: timedelta = timedelta(minutes=10)) -> None:
    """A records database holding exactly ``batches``: each one's parts spread evenly from ``when`` on."""
    engine = fixtures.create_schema(url)
    rows = []
    for station, when, scored, defective in batches:
        for i in range(scored):
            bad = i < defective
            rows.append({
                "created_at": when + spread * i / max(1, scored), "station_id": station,
                "part_id": f"{station}-{when:%m%d%H%M}-{i:04d}", "source": "api", "status": "ok",
                "noise_type": "clean", "noise_probability": 0.95, "defect_probability": 0.9 if bad else 0.1,
                "threshold": 0.5, "verdict": "defective" if bad else "ok", "ood": False,
            })  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(cast(Table, Inspection.__table__)), rows)
    engine.dispose()


@pytest.fixture
def batches_env(empty_env: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[list[Batch]], str]:
    """Point the dashboard at a records database of hand-made batches; returns its URL."""

    def make(batches: list[Batch]) -> str:
        url = f"sqlite:///{empty_env / 'records.db'}"
        write_batches(url, batches)
        return url

    return make
