"""Shared fixtures: a small synthetic dataset in the real folder layout, tiny checkpoints, and a real PostgreSQL
database."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from inspection.bundle import BUNDLES_DIR, BundleError, load_bundle
from inspection.data import synth_casting, write_synthetic_dataset
from inspection.testing import write_tiny_bundle


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """Commands set torch's thread count for the whole process; each test leaves it as it found it."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/helpers, shared by the test packages
CASTING = Path(__file__).resolve().parents[2] / "shared" / "data" / "casting"

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 training and 8 test castings at 64 px in ``train|test/{def_front,ok_front}/``."""
    return write_synthetic_dataset(
        tmp_path_factory.mktemp("synthetic"), n_train=24, n_test=8, size=64, seed=0
    )


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models root whose live bundle holds untrained ``test_*`` models."""
    return write_tiny_bundle(tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="session")
def tiny_models(tiny_root: Path) -> Path:
    """The tiny bundle folder itself (``noise/``, ``denoiser/``, ``defect/``, ``pipeline.json``)."""
    return tiny_root / BUNDLES_DIR / "tiny-v1"


@pytest.fixture(scope="session")
def shipped_models() -> Path:
    """The shipped default bundle."""
    try:
        return load_bundle().path
    except BundleError as e:
        pytest.skip(f"no shipped models: {e}; run models/train_defaults.sh")


@pytest.fixture
def casting_photo() -> np.ndarray:
    """One synthetic 160 px casting with a defect (deterministic)."""
    return synth_casting(np.random.default_rng(7), 160, "blowhole")


@pytest.fixture(scope="session")
def casting_root() -> Path:
    if not (CASTING / "test").is_dir():
        pytest.skip(f"the real casting photos are not at {CASTING} (they ship beside the repo in CI only)")
    return CASTING


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A PostgreSQL server: INSPECTION_TEST_PG_URL (as .ci/run sets it), else a throwaway cluster of our own."""
    url = os.environ.get("INSPECTION_TEST_PG_URL")
    if url:
        yield url
        return
    from helpers.postgres import Cluster, postgres_bindir

    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip(
            "no PostgreSQL: set INSPECTION_TEST_PG_URL or install the 'postgresql' package (initdb, pg_ctl)"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install 'psycopg[binary]' to run the PostgreSQL tests")
    cluster = Cluster(bindir)
    try:
        url = cluster.start()
    except Exception as e:  # pragma: no cover - depends on the machine
        cluster.stop()
        pytest.skip(f"could not start a throwaway PostgreSQL cluster: {e}")
    yield url
    cluster.stop()


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
