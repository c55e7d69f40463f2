"""Drive the scoring service with N concurrent clients x M requests each and measure it.

The report gives throughput, latency percentiles, the count of each HTTP status (5xx must be zero) and, when the
store is reachable, how many records the run left in it (must be exactly N x M: every request carries its own
part id). ``spawn_server`` starts a real ``inspection serve`` on a free loopback port for a self-contained run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np


@dataclass
class LoadReport:
    """What one load run measured. Latencies are client-side, request sent to response read, in ms."""

    url: str
    clients: int
    requests_per_client: int
    total_requests: int
    seconds: float
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    status_counts: dict[str, int]
    transport_errors: int
    server_errors_5xx: int
    run_id: str
    retried: int = 0
    records_in_store: int | None = None
    expected_records: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No 5xx (a 503 that was retried until it went through does not count), no transport errors, and
        (when counted) exactly one record per request."""
        records_ok = self.records_in_store is None or self.records_in_store == self.expected_records
        return self.server_errors_5xx == 0 and self.transport_errors == 0 and records_ok

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values: a latency no request measured is None, not NaN."""
        values = {k: None if isinstance(v, float) and v != v else v for k, v in asdict(self).items()}
        return {**values, "passed": self.passed}

    def summary(self) -> str:
        lines = [
            f"load: {self.clients} clients x {self.requests_per_client} requests = {self.total_requests} against {self.url}",
            f"  throughput   {self.throughput_rps:.1f} req/s over {self.seconds:.1f} s",
            f"  latency      p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, max {self.max_ms:.1f} ms"
            if self.p50_ms == self.p50_ms
            else "  latency      - (no request was answered)",
            f"  statuses     {dict(sorted(self.status_counts.items()))}; 5xx: {self.server_errors_5xx}; "
            f"transport errors: {self.transport_errors}; 503/429 answers retried after Retry-After: {self.retried}",
        ]
        if self.records_in_store is not None:
            lines.append(
                f"  records      {self.records_in_store} in the store for run {self.run_id} (expected {self.expected_records})"
            )
        lines.extend(f"  note         {n}" for n in self.notes)
        lines.append("  PASSED" if self.passed else "  FAILED")
        return "\n".join(lines)


def make_photos(count: int = 16, size: int = 300, seed: int = 0, data: str = "") -> list[bytes]:
    """PNG-encoded photos with the four noise types in turn: the bench's noisy mix (``inspection bench``), drawn
    from ``data``'s test split when given, else synthetic castings of ``size`` pixels."""
    from inspection.bench import noisy_mix
    from inspection.configs import BenchConfig

    photos = []
    for img in noisy_mix(BenchConfig(data=data, n=count, size=size, seed=seed)):
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(img, dtype=np.uint8))
        if not ok:  # pragma: no cover
            raise RuntimeError("PNG encoding of a load photo failed")
        photos.append(buf.tobytes())
    return photos


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


RETRY_STATUSES = (429, 503)
MAX_RETRIES = 30


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    transport_errors: int = 0
    error_reasons: Counter[str] = field(default_factory=Counter)
    retried: int = 0


async def _post_until_answered(
    http: httpx.AsyncClient, data: dict[str, str], photo: bytes, tally: _Tally
) -> httpx.Response | None:
    """Post once, and again after ``Retry-After`` while the service answers 503 or 429 (as a station would)."""
    for _ in range(MAX_RETRIES + 1):
        try:
            resp = await http.post(
                "/v1/inspections", data=data, files={"image": ("part.png", photo, "image/png")}
            )
            await resp.aread()
        except httpx.HTTPError as e:
            tally.transport_errors += 1
            tally.error_reasons[f"{type(e).__name__}: {e}"] += 1
            return None
        if resp.status_code not in RETRY_STATUSES or "retry-after" not in resp.headers:
            return resp
        tally.retried += 1
        await asyncio.sleep(min(float(resp.headers["retry-after"]), 30.0))
    return resp


async def _drive(
    url: str,
    api_key: str,
    station: str,
    clients: int,
    requests: int,
    photos: Sequence[bytes],
    run_id: str,
    timeout_s: float,
) -> tuple[_Tally, float]:
    tally = _Tally()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, timeout=timeout_s, limits=limits, headers={"X-API-Key": api_key}
    ) as http:

        async def client(c: int) -> None:
            for r in range(requests):
                photo = photos[(c * requests + r) % len(photos)]
                data = {"station_id": station, "part_id": f"{run_id}-c{c:02d}-r{r:05d}"}
                t0 = time.perf_counter()
                resp = await _post_until_answered(http, data, photo, tally)
                if resp is not None:
                    tally.latencies.append((time.perf_counter() - t0) * 1000)
                    tally.statuses[str(resp.status_code)] += 1

        t_start = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(clients)))
        elapsed = time.perf_counter() - t_start
    return tally, elapsed


def run_load(
    url: str,
    api_key: str,
    station: str,
    *,
    clients: int = 8,
    requests: int = 200,
    photos: Sequence[bytes] | None = None,
    db_url: str | None = None,
    timeout_s: float = 120.0,
) -> LoadReport:
    """Run ``clients`` concurrent clients, each posting ``requests`` photos one after another.

    Args:
        url: the service's base URL, e.g. ``http://127.0.0.1:8000``.
        api_key, station: the station's credentials.
        photos: the photo bytes to cycle through (default: 16 synthetic castings).
        db_url: the service's store; when given, the run's records are counted there.
    """
    if clients < 1 or requests < 1:
        raise ValueError(f"clients and requests must be at least 1, got {clients} and {requests}")
    photos = list(photos) if photos is not None else make_photos()
    run_id = f"load-{uuid.uuid4().hex[:8]}"
    tally, elapsed = asyncio.run(
        _drive(url.rstrip("/"), api_key, station, clients, requests, photos, run_id, timeout_s)
    )
    latencies, statuses = tally.latencies, tally.statuses
    total = clients * requests
    report = LoadReport(
        url=url,
        clients=clients,
        requests_per_client=requests,
        total_requests=total,
        seconds=round(elapsed, 3),
        throughput_rps=round(len(latencies) / elapsed, 2) if elapsed > 0 else 0.0,
        p50_ms=round(percentile(latencies, 50), 2),
        p95_ms=round(percentile(latencies, 95), 2),
        p99_ms=round(percentile(latencies, 99), 2),
        max_ms=round(max(latencies, default=float("nan")), 2),
        status_counts=dict(statuses),
        transport_errors=tally.transport_errors,
        server_errors_5xx=sum(n for code, n in statuses.items() if code.startswith("5")),
        run_id=run_id,
        retried=tally.retried,
        expected_records=total,
        notes=[f"transport error ({n}x): {reason}" for reason, n in tally.error_reasons.most_common(3)],
    )
    if db_url:
        from inspection.store import RecordStore

        with RecordStore(db_url, migrate=False) as store:
            report.records_in_store = store.count_inspections(part_id_prefix=run_id + "-")
    return report


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SpawnedServer:
    """A running ``inspection serve`` subprocess and how to reach it."""

    process: subprocess.Popen[bytes]
    url: str
    db_url: str
    station: str
    api_key: str
    log_path: Path
    engineer_key: str = ""


def wait_healthy(url: str, timeout_s: float = 60.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``/healthz`` until it answers 200; raise if the server exits or does not come up in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before it became healthy")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url}/healthz did not answer 200 within {timeout_s:.0f} s")


@contextmanager
def spawn_server(
    workdir: str | Path,
    *,
    models: str | Path | None = None,
    db_url: str | None = None,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    station: str = "load-station",
    api_key: str | None = None,
    photos: str | None = None,
    startup_timeout_s: float = 120.0,
) -> Iterator[SpawnedServer]:
    """Run ``inspection serve`` on loopback in a subprocess (SQLite in ``workdir`` unless ``db_url``, photos in
    ``workdir/photos`` unless ``photos``); stop its whole process group after."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    api_key = api_key or secrets.token_urlsafe(24)
    db_url = db_url or f"sqlite:///{workdir / 'records.db'}"
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    engineer_key = secrets.token_urlsafe(24)  # reads /metrics
    env = dict(
        os.environ,
        INSPECTION_API_KEYS=f"{station}:{api_key}",
        INSPECTION_ENGINEER_KEYS=f"loadtest:{engineer_key}",
        INSPECTION_HOME=str(workdir),
    )
    repo_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo_root, env.get("PYTHONPATH")]))
    cmd = [
        sys.executable,
        "-m",
        "inspection.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        db_url,
        "--photos",
        photos or str(workdir / "photos"),
        *extra_args,
    ]
    if models:
        cmd += ["--models", str(models)]
    log_path = workdir / f"server-{port}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = SpawnedServer(process, url, db_url, station, api_key, log_path, engineer_key)
    try:
        wait_healthy(url, startup_timeout_s, process)
        yield server
    except BaseException:
        tail = log_path.read_text(errors="replace")[-3000:]
        sys.stderr.write(f"--- server log ({log_path}) ---\n{tail}\n")
        raise
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """SIGTERM the process's whole group (it was started with ``start_new_session``), then SIGKILL if need be."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=timeout_s)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # the leader may be gone while its group lives on
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
