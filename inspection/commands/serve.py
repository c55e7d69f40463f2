"""``inspection serve --host 127.0.0.1 --port 8000 [--db URL] [--models DIR] [--config service.toml]``.

With ``--models`` a models root (or the default models), the service follows its ``LIVE`` file and picks up a
newly promoted bundle without a restart (:mod:`inspection.service.pickup`).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from typing import TYPE_CHECKING, Any

from inspection.commands._backend import add_backend_flag, add_device_flag
from inspection.commands._config import add_dataclass_flags, config_from_args

if TYPE_CHECKING:
    from inspection.bundle import Bundle
    from inspection.service.remote import ProcessPipeline
    from inspection.service.settings import ServiceLimits

EXTRA = "serve"  # pip install 'inspection[serve]'
HELP = "Run the HTTP scoring service for QA stations (FastAPI + uvicorn)."

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """The service's settings. Fields map one to one onto ``inspection serve`` flags and config file keys.

    Attributes:
        host: the address to listen on (loopback by default; put a TLS proxy in front for a network).
        port: the TCP port to listen on.
        db: SQLAlchemy URL of the records store (default: SQLite in the data directory, or ``$INSPECTION_DB``).
        models: a models root (its live bundle, followed while serving) or a bundle folder (pinned); default: the
            shipped models.
        pickup_s: seconds between checks of the models root's LIVE file: a newly promoted bundle is loaded and
            swapped in without a restart (0 = never; a pinned bundle folder is never swapped).
        photos: where photos are kept: a folder (default: $INSPECTION_PHOTOS, else <data dir>/photos), 'db' for the
            records database itself, or an fsspec URL such as s3://bucket/photos (several replicas need 'db' or a
            shared URL).
        max_upload_mb: the largest photo accepted, in MiB; bigger uploads get 413 unread.
        pipelines: how many scoring processes run in parallel (each holds its own copy of the models, and
            none waits on the server's threads).
        max_batch: the most waiting uploads one pipeline scores together.
        max_queued_mp: the most megapixels waiting to be scored; more get 503 with Retry-After.
        max_uploads: uploads in progress at once, from the first byte of the body to the answer (so also the
            most photos waiting to be scored); more get 503 before their body is read.
        max_inflight_mb: megabytes of upload bodies in progress at once (by Content-Length); more get 503 before
            their body is read. This bounds the memory bodies take.
        max_connections: open connections at once; more get 503 from the server (slow clients cannot hold
            every socket).
        header_timeout_s: seconds a connection has to send a request's complete headers, from its opening or
            from the first byte after its previous answer; a slower one gets 408 and is closed (so idle or
            trickling clients cannot hold the open connections).
        body_timeout_s: seconds an upload may take to arrive; a slower one gets 408.
        score_timeout_s: seconds an upload may wait for its verdict; then 503, unscored.
        unauthenticated_per_minute: attempts without a valid key recorded per client address and minute;
            more get 429 and are not stored.
        retry_after_s: the Retry-After (whole seconds) sent with 503 and 429: when a station should try again.
        threads: torch intra-op threads per scoring process (0 = torch's default). One is the default:
            batches are small and the server's own threads need the cores; on a busy 2-core machine two torch
            threads made a single photo 20x slower (158 ms against 7 ms) from thread contention.
        access_log: log every request (uvicorn's access log).
        backend: what runs the models: torch, onnxruntime or openvino (the bundle's export from
            ``inspection export``); a newly promoted bundle must be exported for it too, or it is not picked up.
        device: where the torch backend runs the models in each scoring process: cpu, or cuda (an error, not a
            fall back to the CPU, when torch sees no CUDA GPU).
        api_keys: config file only: station = "sha256:<hex>" (or a plain key); $INSPECTION_API_KEYS adds
            station:key pairs.
        engineer_keys: config file only: name = "sha256:<hex>"; $INSPECTION_ENGINEER_KEYS adds name:key pairs.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    db: str = ""
    models: str = ""
    pickup_s: float = 2.0
    photos: str = ""
    max_upload_mb: float = 20.0
    pipelines: int = 1
    max_batch: int = 8
    max_queued_mp: float = 64.0
    max_uploads: int = 128
    max_inflight_mb: float = 256.0
    max_connections: int = 256
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    score_timeout_s: float = 60.0
    unauthenticated_per_minute: int = 20
    retry_after_s: int = 1
    threads: int = 1
    access_log: bool = False
    backend: str = "torch"
    device: str = "cpu"
    api_keys: dict[str, str] = dataclasses.field(default_factory=dict)
    engineer_keys: dict[str, str] = dataclasses.field(default_factory=dict)

    def limits(self) -> ServiceLimits:
        from inspection.service.settings import ServiceLimits

        return ServiceLimits(
            max_upload_bytes=int(self.max_upload_mb * 1024 * 1024),
            max_batch=self.max_batch,
            max_queued_pixels=int(self.max_queued_mp * 1e6),
            max_uploads=self.max_uploads,
            max_inflight_mb=self.max_inflight_mb,
            body_timeout_s=self.body_timeout_s,
            score_timeout_s=self.score_timeout_s,
            unauthenticated_per_minute=self.unauthenticated_per_minute,
            retry_after_s=self.retry_after_s,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_flags(parser, ServeConfig, skip=("api_keys", "engineer_keys", "backend", "device"))
    add_backend_flag(parser)
    add_device_flag(parser)
    parser.add_argument(
        "--hash-key",
        action="store_true",
        help="read a key from standard input, print its sha256:... hash for the config file, and exit",
    )


def build_app(cfg: ServeConfig) -> Any:
    """The FastAPI app for ``cfg``: store opened, migrated and checked writable, models loaded, keys read.

    Raises:
        StoreOpenError: the records database or the photo store cannot be used (the message says why).
    """
    from inspection.auth import load_api_keys
    from inspection.bundle import load_bundle
    from inspection.commands._stores import open_stores, register_models
    from inspection.paths import default_photos
    from inspection.promotion import live_root
    from inspection.runtimes import check_device, check_export
    from inspection.service import create_app
    from inspection.service.pickup import Pickup
    from inspection.service.remote import start_pipelines

    if cfg.pipelines < 1:
        raise SystemExit(f"--pipelines must be at least 1, got {cfg.pipelines}")
    keys = load_api_keys({"api_keys": cfg.api_keys, "engineer_keys": cfg.engineer_keys})
    if not keys.hashes:
        log.warning(
            "no station keys configured: every upload will get 401. Set INSPECTION_API_KEYS or [api_keys]"
        )
    store, photos = open_stores(cfg.db or None, cfg.photos or default_photos())
    assert photos is not None
    root = live_root(cfg.models or None) if cfg.pickup_s > 0 else None
    bundle = load_bundle(cfg.models or None)  # LIVE read once here, so every process loads the same bundle
    check_export(bundle, cfg.backend)  # here, as one clear line, rather than from inside a scoring process
    check_device(cfg.device, cfg.backend)

    def load(b: Bundle) -> list[ProcessPipeline]:
        check_export(b, cfg.backend)
        return start_pipelines(
            str(b.path), cfg.pipelines, torch_threads=cfg.threads, backend=cfg.backend, device=cfg.device
        )

    pipelines = load(bundle)
    register_models(store, pipelines[0])
    log.info(
        "store %r, bundle %s %s, %d key(s), photos in %s; %s",
        store,
        bundle.version,
        pipelines[0].model_versions,
        len(keys),
        photos.url,
        f"following {root / 'LIVE'} every {cfg.pickup_s:g} s" if root else "no pick-up of new bundles",
    )
    pickup = Pickup(root, load, cfg.pickup_s) if root else None
    return create_app(pipelines, store, keys, photos=photos, limits=cfg.limits(), pickup=pickup)


def run(args: argparse.Namespace) -> int:
    if args.hash_key:
        from inspection.auth import hash_key

        key = sys.stdin.readline().strip()
        if not key:
            print("inspection serve --hash-key: type the key on standard input", file=sys.stderr)
            return 2
        print(hash_key(key))
        return 0
    import uvicorn

    from inspection.auth import AuthConfigError
    from inspection.commands._stores import StoreOpenError
    from inspection.models.checkpoint import CheckpointError
    from inspection.service.protocol import header_deadline_protocol

    cfg = config_from_args(ServeConfig, args)
    try:
        http = header_deadline_protocol(cfg.header_timeout_s)
        app = build_app(cfg)
    except (AuthConfigError, StoreOpenError, CheckpointError, ValueError) as e:  # BundleError too
        print(f"inspection serve: {e}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        http=http,
        ws="none",  # the service has no WebSocket route; an upgrade would also escape the header deadline
        host=cfg.host,
        port=cfg.port,
        access_log=cfg.access_log,
        log_level="info",
        timeout_keep_alive=30,
        limit_concurrency=cfg.max_connections,
        timeout_graceful_shutdown=10,
    )
    return 0
