"""``inspection load --clients 8 --requests 200``: measure the scoring service under concurrent load."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from inspection.commands._config import add_threads_flag

EXTRA = "serve"  # pip install 'inspection[serve]'
HELP = "Drive the scoring service with N concurrent clients x M requests; report throughput, p50/p99, 5xx, records."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", "-n", type=int, default=8, help="concurrent clients N (default 8)")
    parser.add_argument("--requests", "-m", type=int, default=200, help="requests per client M (default 200)")
    parser.add_argument(
        "--url", default="", help="a running service; without it a server is started on loopback"
    )
    parser.add_argument("--station", default="", help="station id (with --url)")
    parser.add_argument(
        "--api-key", default="", help="the station's API key (with --url; or $INSPECTION_LOAD_API_KEY)"
    )
    parser.add_argument("--db", default="", help="the service's store URL, to count the run's records")
    parser.add_argument(
        "--models", default="", help="models folder for the started server (default: shipped models)"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="start the server with tiny untrained models (for smoke runs)"
    )
    parser.add_argument(
        "--pipelines", type=int, default=1, help="pipelines in the started server (default 1)"
    )
    add_threads_flag(parser, default=1, help="torch intra-op threads in the started server (default 1)")
    parser.add_argument(
        "--workdir", default="", help="where the started server keeps its store and photos (default: temp)"
    )
    parser.add_argument(
        "--photo-size", type=int, default=300, help="side of the synthetic photos in pixels (default 300)"
    )
    parser.add_argument(
        "--data",
        default="",
        help="draw the photos from this dataset's test split with the bench's noise mix (default: synthetic)",
    )
    parser.add_argument(
        "--photo-count", type=int, default=64, help="distinct photos the clients cycle through (default 64)"
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="pass ARG on to the started 'inspection serve' (repeat it: --server-arg=--max-uploads --server-arg=8)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the report
    from inspection.loadtest import make_photos, run_load, spawn_server

    photos = make_photos(args.photo_count, size=args.photo_size, data=args.data)
    if args.url:
        key = args.api_key or os.environ.get("INSPECTION_LOAD_API_KEY", "")
        if not (args.station and key):
            print(
                "inspection load: with --url, pass --station and --api-key (or $INSPECTION_LOAD_API_KEY)",
                file=sys.stderr,
            )
            return 2
        report = run_load(
            args.url,
            key,
            args.station,
            clients=args.clients,
            requests=args.requests,
            photos=photos,
            db_url=args.db or None,
        )
    else:
        with tempfile.TemporaryDirectory(prefix="inspection-load-") as tmp:
            workdir = Path(args.workdir or tmp)
            models = args.models or None
            if args.tiny:
                from inspection.testing import write_tiny_bundle

                models = str(write_tiny_bundle(workdir / "tiny-models"))
            extra = [
                "--pipelines",
                str(args.pipelines),
                "--threads",
                str(args.threads),
                *args.server_arg,
            ]
            with spawn_server(workdir, models=models, db_url=args.db or None, extra_args=extra) as server:
                report = run_load(
                    server.url,
                    server.api_key,
                    server.station,
                    clients=args.clients,
                    requests=args.requests,
                    photos=photos,
                    db_url=server.db_url,
                )
            report.notes.append(
                f"server: inspection serve {' '.join(extra)} with models {models or 'shipped default'}"
            )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0 if report.passed else 1
