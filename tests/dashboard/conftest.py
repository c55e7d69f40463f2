"""Dashboard fixtures: one synthetic data root (reports, model metadata, photos, records) per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspection.dashboard import fixtures

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
