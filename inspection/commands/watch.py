"""``inspection watch DIR --station S [--db URL] [--models DIR]``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

HELP = (
    "Score photos as they arrive in a folder; file each under processed/ or rejected/ (with a reason file)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="the folder a camera or file share drops photos into")
    parser.add_argument("--station", required=True, help="the station id the photos belong to")
    parser.add_argument(
        "--db", default="", help="SQLAlchemy URL of the records store (default: SQLite in the data dir)"
    )
    parser.add_argument("--models", default="", help="models folder (default: the shipped models)")
    parser.add_argument(
        "--poll", type=float, default=0.5, help="seconds between scans of the folder (default 0.5)"
    )
    parser.add_argument(
        "--settle", type=float, default=0.5, help="take a file once unchanged this long (default 0.5 s)"
    )
    parser.add_argument("--batch", type=int, default=8, help="photos scored together (default 8)")
    parser.add_argument(
        "--torch-threads", type=int, default=1, help="torch intra-op threads (default 1; 0 = torch's default)"
    )
    parser.add_argument("--once", action="store_true", help="process what is there now, then exit")


def run(args: argparse.Namespace) -> int:
    import torch

    from inspection.auth import valid_station_id
    from inspection.pipeline import InspectionPipeline
    from inspection.store import RecordStore, StoreConfigError
    from inspection.watch import Watcher

    if not valid_station_id(args.station):
        print(
            f"inspection watch: station id {args.station!r} is not valid; use 1-64 letters, digits, '.', '_' or '-'",
            file=sys.stderr,
        )
        return 2
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    try:
        store = RecordStore(args.db or None)
        pipeline = InspectionPipeline.from_dir(args.models or None)
        store.register_models(pipeline)
        pipeline = InspectionPipeline.from_dir(args.models or None)
        store.register_models(pipeline)
        watcher = Watcher(
            args.dir,
            args.station,
            pipeline,
            store,
            settle_s=args.settle,
            batch_size=args.batch,
        )
    except (StoreConfigError, FileNotFoundError) as e:
        print(f"inspection watch: {e}", file=sys.stderr)
        return 2
    if args.once:
        outcomes = watcher.run_once()
        counts = {a: sum(o.action == a for o in outcomes) for a in ("scored", "rejected", "resumed")}
        print(", ".join(f"{n} {a}" for a, n in counts.items()))
        return 0
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    watcher.run(poll_s=args.poll, stop=stop)
    return 0
