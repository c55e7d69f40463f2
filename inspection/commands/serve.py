"""``inspection serve --host 127.0.0.1 --port 8000 [--db URL] [--models DIR] [--config service.toml]``."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

from inspection.commands._config import add_dataclass_flags, config_from_args

HELP = "Run the HTTP scoring service for QA stations (FastAPI + uvicorn)."

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """The service's settings. Fields map one to one onto ``inspection serve`` flags and config file keys.

    Attributes:
        host, port: where to listen (loopback by default; put a TLS proxy in front for a network).
        db: SQLAlchemy URL of the records store (default: SQLite in the data directory, or ``$INSPECTION_DB``).
        models: models folder with ``noise/``, ``denoiser/``, ``defect/`` (default: the shipped models).
        photos: where uploaded photos are kept (default: ``<data dir>/photos``).
        max_upload_mb: the largest photo accepted, in MiB.
        pipelines: how many pipelines score in parallel (each holds its own copy of the models).
        max_batch: the most waiting uploads one pipeline scores together.
        torch_threads: torch intra-op threads per process (0 = torch's default). One is the default: batches are
            small and the server's own threads need the cores; on a busy 2-core machine two torch threads made a
            single photo 20x slower (158 ms against 7 ms) from thread contention.
        access_log: log every request (uvicorn's access log).
        api_keys: config file only: ``station = "sha256:<hex>"`` (or a plain key); ``$INSPECTION_API_KEYS`` adds
            ``station:key`` pairs.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    db: str = ""
    models: str = ""
    photos: str = ""
    max_upload_mb: float = 20.0
    pipelines: int = 1
    max_batch: int = 8
    torch_threads: int = 1
    access_log: bool = False
    api_keys: dict[str, str] = dataclasses.field(default_factory=dict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_flags(parser, ServeConfig, skip=("api_keys",))
    parser.add_argument(
        "--hash-key", metavar="KEY", help="print the sha256:... hash of KEY for the config file and exit"
    )


def build_app(cfg: ServeConfig) -> Any:
    """The FastAPI app for ``cfg``: store opened and migrated, models loaded, keys read."""
    import torch

    from inspection.auth import load_api_keys
    from inspection.paths import data_dir
    from inspection.pipeline import InspectionPipeline
    from inspection.service import create_app
    from inspection.store import RecordStore

    if cfg.pipelines < 1:
        raise SystemExit(f"--pipelines must be at least 1, got {cfg.pipelines}")
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    keys = load_api_keys({"api_keys": cfg.api_keys} if cfg.api_keys else None)
    if not len(keys):
        log.warning(
            "no API keys configured: every upload will get 401. Set INSPECTION_API_KEYS or [api_keys]"
        )
    store = RecordStore(cfg.db or None)
    models = cfg.models or None
    pipelines = [InspectionPipeline.from_dir(models) for _ in range(cfg.pipelines)]
    photos = Path(cfg.photos) if cfg.photos else data_dir() / "photos"
    store.register_models(pipelines[0])
    log.info(
        "store %r, models %s, %d station key(s), photos in %s",
        store,
        pipelines[0].model_versions,
        len(keys),
        photos,
    )
    return create_app(
        pipelines,
        store,
        keys,
        photos_dir=photos,
        max_upload_bytes=int(cfg.max_upload_mb * 1024 * 1024),
        max_batch=cfg.max_batch,
    )


def run(args: argparse.Namespace) -> int:
    if args.hash_key:
        from inspection.auth import hash_key

        print(hash_key(args.hash_key))
        return 0
    import uvicorn

    from inspection.auth import AuthConfigError
    from inspection.store import StoreConfigError

    cfg = config_from_args(ServeConfig, args)
    try:
        app = build_app(cfg)
    except (AuthConfigError, StoreConfigError) as e:
        print(f"inspection serve: {e}", file=sys.stderr)
        return 2
    uvicorn.run(
        app, host=cfg.host, port=cfg.port, access_log=cfg.access_log, log_level="info", timeout_keep_alive=30
    )
    return 0
