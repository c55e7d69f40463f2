"""Chaos and scale-out runs of the station path; their results are in docs/security.md.

Each run starts real processes on loopback (``inspection serve``, PostgreSQL, nginx), breaks something, and checks
that no photo a station was told about is lost and none is stored twice. Every process it starts is stopped
with its whole process group.

    bash -c 'source .ci/start-postgres.sh && python scripts/station_chaos.py pg-restart'
    bash -c 'source .ci/start-postgres.sh && python scripts/station_chaos.py scale-out'
    python scripts/station_chaos.py disk-full          # as root: mounts two small tmpfs
    python scripts/station_chaos.py impatient --clients 128 --requests 2   # clients that give up after 1 s

``pg-restart`` and ``scale-out`` use the throwaway PostgreSQL that ``.ci/start-postgres.sh`` starts (it exports
``INSPECTION_TEST_PG_URL`` and ``INSPECTION_TEST_PG_DIR``). ``--models DIR`` picks the models (default: the shipped
ones); ``--json PATH`` writes the findings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import create_engine, text

from inspection.loadtest import free_port, make_photos, run_load, spawn_server, stop_process_group
from inspection.store import RecordStore
from inspection.store.photos import open_photo_store, sha256_hex


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def postgres() -> tuple[str, Path]:
    url, folder = os.environ.get("INSPECTION_TEST_PG_URL"), os.environ.get("INSPECTION_TEST_PG_DIR")
    if not (url and folder):
        raise SystemExit(
            "start PostgreSQL first: source .ci/start-postgres.sh (it exports INSPECTION_TEST_PG_*)"
        )
    return url, Path(folder)


def pg_ctl(folder: Path, *args: str) -> None:
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    run = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*run, str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-w", *args], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def fresh_database(url: str, name: str) -> str:
    """A new empty database on the server of ``url``, so a run starts from zero records."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


def poll_readiness(url: str, stop: threading.Event, seen: list[int]) -> None:
    while not stop.wait(0.25):
        try:
            seen.append(httpx.get(url + "/readyz", timeout=2).status_code)
        except httpx.HTTPError:
            seen.append(0)


def check_photos(db_url: str, photos: str) -> dict[str, int]:
    """Open every record's photo from the photo store and check its bytes against the recorded hash."""
    with RecordStore(db_url, migrate=False) as store:
        kept = open_photo_store(photos, engine=store.engine)
        records = store.list_inspections(limit=1000)
        total = store.count_inspections()
        assert total <= 1000, "check_photos reads at most 1000 records"
        bad = sum(
            sha256_hex(kept.get(r["image_key"])) != r["image_sha256"] for r in records if r["image_key"]
        )
        return {
            "records": total,
            "with_photo": sum(bool(r["image_key"]) for r in records),
            "photo_mismatch": bad,
        }


# -- PostgreSQL restarted mid-load ------------------------------------------------------------------------------


def pg_restart(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    base_url, folder = postgres()
    db_url = fresh_database(base_url, "chaos_pg_restart")
    photos = make_photos(32)
    with spawn_server(work, models=args.models, db_url=db_url, photos="db") as server:
        stop, ready = threading.Event(), []
        poller = threading.Thread(target=poll_readiness, args=(server.url, stop, ready))
        poller.start()
        breaker = threading.Timer(args.outage_after_s, restart_postgres, args=(folder, args.outage_s))
        breaker.start()
        report = run_load(server.url, server.api_key, server.station, clients=args.clients,
                          requests=args.requests, photos=photos, db_url=db_url)  # fmt: skip
        breaker.join()
        stop.set()
        poller.join()
    log(report.summary())
    return {
        "load": report.to_dict(),
        "readyz_503_polls": ready.count(503),
        "readyz_200_polls": ready.count(200),
        "photos": check_photos(db_url, "db"),
        "passed": report.passed and report.retried > 0 and ready.count(503) > 0,
    }


def restart_postgres(folder: Path, outage_s: float) -> None:
    """Stop PostgreSQL for ``outage_s`` seconds, then start it again with the options it ran with."""
    words = shlex.split((folder / "data" / "postmaster.opts").read_text())[1:]
    options = [w for i, w in enumerate(words) if w != "-D" and (i == 0 or words[i - 1] != "-D")]
    log("stopping PostgreSQL")
    pg_ctl(folder, "-m", "fast", "stop")
    time.sleep(outage_s)
    pg_ctl(folder, "-l", str(folder / "server.log"), "-o", shlex.join(options), "start")
    log(f"PostgreSQL back after {outage_s:g} s")


# -- a full disk: the photo store, then the records database -----------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path, leave_kb: int) -> Path:
    """Fill the file system of ``folder`` but ``leave_kb`` KiB."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free - leave_kb * 1024
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free))
    return filler


def distinct_photos(count: int, side: int = 256) -> list[bytes]:
    import cv2

    rng = np.random.default_rng(1)
    return [
        cv2.imencode(".png", rng.integers(0, 256, (side, side), dtype=np.uint8))[1].tobytes()
        for _ in range(count)
    ]


def post_all(server: Any, parts: list[str], photos: list[bytes]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    with httpx.Client(base_url=server.url, headers={"X-API-Key": server.api_key}, timeout=60) as http:
        for part, photo in zip(parts, photos, strict=True):
            r = http.post("/v1/inspections", data={"station_id": server.station, "part_id": part},
                          files={"image": ("p.png", photo, "image/png")})  # fmt: skip
            answers[part] = (r.status_code, r.json().get("reason"), r.json().get("id"))
        answers["/readyz"] = http.get("/readyz").json()
    return answers


def disk_full(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    photos = distinct_photos(args.requests)
    parts = [f"full-{i:03d}" for i in range(len(photos))]
    out: dict[str, Any] = {}
    for which in ("photos", "database"):
        with tmpfs(work / f"{which}-tmpfs", "4m") as mount:
            photo_dir = mount if which == "photos" else work / f"{which}-photos"
            db_url = f"sqlite:///{(mount if which == 'database' else work) / f'{which}.db'}"
            with spawn_server(
                work / which, models=args.models, db_url=db_url, photos=str(photo_dir)
            ) as server:
                filler = fill(mount, leave_kb=600 if which == "photos" else 64)
                first = post_all(server, parts, photos)
                filler.unlink()  # the operator frees space; stations re-send what got 503
                again = post_all(server, parts, photos)
            refused = [p for p in parts if first[p][0] == 503]
            out[which] = {
                "first_pass": {
                    code: sum(a[0] == code for k, a in first.items() if k in parts) for code in (201, 503)
                },
                "first_pass_reasons": sorted({first[p][1] for p in refused}),
                "readyz_when_full": first["/readyz"],
                "second_pass": {
                    code: sum(a[0] == code for k, a in again.items() if k in parts) for code in (200, 201)
                },
                "photos": check_photos(db_url, str(photo_dir)),
            }
            stored = out[which]["photos"]["records"]
            out[which]["passed"] = (
                bool(refused) and stored == len(parts) and not out[which]["photos"]["photo_mismatch"]
            )
            log(f"{which} full: {out[which]}")
    out["passed"] = all(out[w]["passed"] for w in ("photos", "database"))
    return out


# -- two replicas behind nginx, one PostgreSQL -----------------------------------------------------------------------

NGINX_CONF = """
worker_processes 1;
error_log {work}/nginx-error.log warn;
pid {work}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_max_body_size 25m;
  client_body_buffer_size 32m;  # bodies stay in memory: the workers (user nobody) need no temp folder
  proxy_request_buffering off;
  proxy_buffering off;
  upstream inspection {{ server 127.0.0.1:{a}; server 127.0.0.1:{b}; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://inspection;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_next_upstream error timeout;
    }}
  }}
}}
"""


@contextlib.contextmanager
def nginx(work: Path, a: int, b: int) -> Iterator[str]:
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, a=a, b=b, port=port))
    process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work), "-g", "daemon off;"],
                               start_new_session=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(url + "/healthz", timeout=2).status_code == 200)
        yield url
    finally:
        stop_process_group(process)


def wait_for(check: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if check():
                return
        time.sleep(0.1)
    raise TimeoutError("nginx did not come up")


def served_by(server: Any) -> int:
    text_ = httpx.get(server.url + "/metrics", headers={"X-API-Key": server.engineer_key}, timeout=5).text
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text_.splitlines()
                   if line.startswith("inspection_inspections_total{")))  # fmt: skip


def scale_out(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    base_url, _ = postgres()
    db_url = fresh_database(base_url, "chaos_scale_out")
    key = "scale-out-key-123"
    with (
        spawn_server(work / "a", models=args.models, db_url=db_url, photos="db", api_key=key) as a,
        spawn_server(work / "b", models=args.models, db_url=db_url, photos="db", api_key=key) as b,
        nginx(work, int(a.url.rsplit(":", 1)[1]), int(b.url.rsplit(":", 1)[1])) as front,
    ):
        report = run_load(front, key, a.station, clients=args.clients, requests=args.requests,
                          photos=make_photos(32), db_url=db_url)  # fmt: skip
        per_replica = {"a": served_by(a), "b": served_by(b)}
    log(report.summary())
    photos = check_photos(db_url, "db")
    part_lookup = open_in_part_lookup(db_url)
    return {
        "load": report.to_dict(),
        "records_per_replica": per_replica,
        "photos": photos,
        "part_lookup": part_lookup,
        "passed": report.passed
        and min(per_replica.values()) > 0
        and part_lookup["opened"] == photos["records"],
    }


def open_in_part_lookup(db_url: str) -> dict[str, int]:
    """Open every record's photo the way the dashboard's Part lookup does, in a process that served none."""
    code = (
        "import json, sys\n"
        "from inspection.store import RecordStore\n"
        "from inspection.dashboard.parts import load_photo\n"
        "from inspection.store.photos import open_photo_store\n"
        "store = RecordStore(sys.argv[1], migrate=False)\n"
        "photos = open_photo_store('db', engine=store.engine)\n"
        "records = store.list_inspections(limit=1000)\n"
        "opened = sum(load_photo(r, photos).gray is not None for r in records)\n"
        "print(json.dumps({'records': len(records), 'opened': opened}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, db_url], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# -- impatient clients: they give up, and the service must not score or store what nobody waits for ------------


def impatient(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    photos = make_photos(32)
    answered, gave_up = 0, 0

    def client(url: str, key: str, station: str, c: int) -> None:
        nonlocal answered, gave_up
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=args.client_timeout_s) as http:
            for r in range(args.requests):
                data = {"station_id": station, "part_id": f"impatient-{c:03d}-{r:04d}"}
                try:
                    http.post(
                        "/v1/inspections", data=data, files={"image": ("p.png", photos[r % 32], "image/png")}
                    )
                    answered += 1
                except httpx.TimeoutException:
                    gave_up += 1

    with spawn_server(work, models=args.models) as server:
        threads = [threading.Thread(target=client, args=(server.url, server.api_key, server.station, c))
                   for c in range(args.clients)]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(2)  # let the server finish what it had taken
        metrics = httpx.get(
            server.url + "/metrics", headers={"X-API-Key": server.engineer_key}, timeout=10
        ).text
        with RecordStore(server.db_url, migrate=False) as store:
            stored = store.count_inspections(part_id_prefix="impatient-")
    abandoned = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("inspection_abandoned_total")
    )
    out = {"sent": args.clients * args.requests, "answered": answered, "gave_up": gave_up, "stored": stored,
           "abandoned_by_server": int(abandoned)}  # fmt: skip
    # every answered request is stored; of the abandoned ones only those already being scored may be
    out["stored_after_client_left"] = stored - answered
    out["passed"] = stored >= answered and abandoned > 0 and stored - answered <= gave_up
    log(str(out))
    return out


RUNS = {"pg-restart": pg_restart, "disk-full": disk_full, "scale-out": scale_out, "impatient": impatient}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", choices=sorted(RUNS), help="which run")
    parser.add_argument(
        "--models", default=None, help="models root for the servers (default: the shipped models)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent load clients (default 8)")
    parser.add_argument(
        "--requests", type=int, default=40, help="requests per client, or photos (default 40)"
    )
    parser.add_argument(
        "--outage-after-s", type=float, default=3.0, help="pg-restart: seconds before the outage"
    )
    parser.add_argument(
        "--outage-s", type=float, default=5.0, help="pg-restart: seconds PostgreSQL stays down"
    )
    parser.add_argument(
        "--client-timeout-s", type=float, default=1.0, help="impatient: seconds a client waits"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the findings to this JSON file")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers it started on the way out
    with tempfile.TemporaryDirectory(prefix=f"chaos-{args.run}-") as tmp:
        result = RUNS[args.run](args, Path(tmp))
    text_ = json.dumps(result, indent=2, default=str)
    print(text_)
    if args.json:
        args.json.write_text(text_ + "\n")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
