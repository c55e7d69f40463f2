"""``inspection watch DIR --station S [--db URL] [--photos LOCATION] [--models DIR] [--pickup-s S]``.

With ``--models`` a models root (or the default models), the watcher follows its ``LIVE`` file and scores with a
newly promoted bundle from the next batch on (``Watcher.follow_live``).

Stores that cannot be opened are one line and exit 2 (``inspection.commands._stores``), never a traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

from inspection.commands._backend import (
    add_backend_flag,
    add_device_flag,
    add_worker_processes_flag,
    backend_of,
    device_of,
)
from inspection.commands._config import add_deprecated_aliases, add_threads_flag, positive_int

if TYPE_CHECKING:
    from inspection.watch import Watcher

HELP = (
    "Score photos as they arrive in a folder; file each under processed/ or rejected/ (with a reason file)."
)
EXIT_BAD_SETUP = 2
EXIT_STORES_DOWN = 3


# watch's flags before they were spelled as serve's and score's
RENAMED = {
    **{"--pickup": "--pickup-s", "--poll": "--poll-s", "--settle": "--settle-s"},
    **{"--incomplete-timeout": "--incomplete-timeout-s", "--batch": "--batch-size"},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="the folder a camera or file share drops photos into")
    parser.add_argument("--station", required=True, help="the station id the photos belong to")
    parser.add_argument(
        "--db", default="", help="SQLAlchemy URL of the records store (default: SQLite in the data dir)"
    )
    parser.add_argument(
        "--photos",
        default="",
        help="where photos are kept: a folder, 'db' (the records database) or an fsspec URL "
        "(default: $INSPECTION_PHOTOS, else photos/ in the data dir)",
    )
    parser.add_argument(
        "--models",
        default="",
        help="a models root (its live bundle, followed while watching) or a bundle folder (pinned); default: "
        "the shipped models",
    )
    parser.add_argument(
        "--pickup-s",
        type=float,
        default=2.0,
        help="seconds between checks of the models root's LIVE file: a newly promoted bundle is loaded and used "
        "from the next batch on, without a restart (default 2; 0 = never)",
    )
    parser.add_argument(
        "--poll-s", type=float, default=0.5, help="seconds between scans of the folder (default 0.5)"
    )
    parser.add_argument(
        "--settle-s",
        type=float,
        default=0.5,
        help="take a file once unchanged this many seconds (default 0.5)",
    )
    parser.add_argument(
        "--incomplete-timeout-s",
        type=float,
        default=300.0,
        help="reject a photo as 'incomplete' once it has stayed unfinished (no end marker) and unchanged this "
        "many seconds; until then it waits in the folder (default 300; 0 rejects it at once)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=8, help="photos scored together (default 8)"
    )
    add_deprecated_aliases(parser, RENAMED)
    add_threads_flag(
        parser, default=1, help="torch (and runtime) intra-op threads (default 1; 0 = torch's default)"
    )
    add_backend_flag(parser)
    add_device_flag(parser)
    add_worker_processes_flag(parser)
    parser.add_argument(
        "--once",
        action="store_true",
        help="process what is there now, then exit (exit code 3 when the stores were down and photos were left)",
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from inspection.commands._stores import StoreOpenError, open_stores, register_models
    from inspection.ingest.ids import STATION_ID_RULE, valid_station_id
    from inspection.models.checkpoint import CheckpointError
    from inspection.paths import default_photos
    from inspection.pipeline import InspectionPipeline
    from inspection.runtimes import BackendError
    from inspection.watch import Watcher

    if not valid_station_id(args.station):
        print(
            f"inspection watch: station id {args.station!r} is not valid; {STATION_ID_RULE}",
            file=sys.stderr,
        )
        return EXIT_BAD_SETUP
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        store, photos = open_stores(args.db, args.photos or default_photos())
        pipeline = InspectionPipeline.from_dir(
            args.models or None,
            backend=backend_of(args),
            device=device_of(args),
            worker_processes=args.worker_processes,
        )
        register_models(store, pipeline)
        watcher = Watcher(
            args.dir,
            args.station,
            pipeline,
            store,
            photos=photos,
            settle_s=args.settle_s,
            batch_size=args.batch_size,
            incomplete_timeout_s=args.incomplete_timeout_s,
        )
    except (
        StoreOpenError,
        CheckpointError,
        BackendError,
        OSError,
    ) as e:  # also a missing folder, or no bundle there
        print(f"inspection watch: {e}", file=sys.stderr)
        return EXIT_BAD_SETUP
    try:
        return _run_once(watcher) if args.once else _run_until_stopped(watcher, args)
    finally:
        getattr(watcher.pipeline, "close", lambda: None)()  # worker threads or processes


def _run_until_stopped(watcher: Watcher, args: argparse.Namespace) -> int:
    """Score as photos land, picking up promoted bundles, until SIGTERM or Ctrl-C."""
    from inspection.promotion import live_root

    root = live_root(args.models or None) if args.pickup_s > 0 else None
    follower = watcher.follow_live(root, interval_s=args.pickup_s) if root else None
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        watcher.run(poll_s=args.poll_s, stop=stop)
    finally:
        if follower is not None:
            follower.stop()
    return 0


def _run_once(watcher: Watcher) -> int:
    """One pass; exit code 3 when the stores refused and photos were left in the inbox. Files a later pass takes
    (incomplete, still settling, or to be tried again) are counted and named, and leave the exit code 0."""
    outcomes = watcher.run_once()
    counts = {a: sum(o.action == a for o in outcomes) for a in ("scored", "rejected", "resumed")}
    left = watcher.left()
    summary = ", ".join(f"{n} {a}" for a, n in counts.items())
    print(summary + (f", {len(left)} left in the inbox for a later pass: {', '.join(left[:5])}" if left else "")
          + (" ..." if len(left) > 5 else ""))  # fmt: skip
    if watcher.stores_down is not None:
        print(
            f"inspection watch: photos were left in the inbox: {watcher.stores_down.message}",
            file=sys.stderr,
        )
        return EXIT_STORES_DOWN
    return 0
