"""``inspection watch`` killed with SIGKILL mid-batch and restarted: every photo scored once, none skipped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import torch

from inspection.cli import main
from inspection.loadtest import make_photos
from inspection.store import RecordStore

REPO = Path(__file__).resolve().parents[2]


def watch_cmd(inbox: Path, db_url: str, models: Path, *extra: str) -> list[str]:
    # the truncated photo below is rejected as 'incomplete' at once (no 5-minute wait for its writer)
    return [
        sys.executable,
        "-m",
        "inspection.cli",
        "watch",
        str(inbox),
        "--station",
        "station-w",
        "--db",
        db_url,
        "--models",
        str(models),
        "--settle-s",
        "0",
        "--poll-s",
        "0.1",
        "--batch-size",
        "3",
        "--photos",
        str(inbox.parent / "photos"),
        "--incomplete-timeout-s",
        "0",
        *extra,
    ]


def test_sigkill_mid_batch_then_restart_scores_every_photo_exactly_once(
    tmp_path: Path, tiny_models: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    photos = make_photos(10, size=64)
    names = [f"part-{i:03d}.png" for i in range(60)]
    for i, name in enumerate(names):
        (inbox / name).write_bytes(photos[i % len(photos)])
    (inbox / "broken-1.png").write_bytes(photos[0][:150])
    (inbox / "broken-2.jpg").write_bytes(b"not an image at all")
    db_url = f"sqlite:///{tmp_path / 'records.db'}"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        INSPECTION_HOME=str(tmp_path / "home"),
    )
    log = open(tmp_path / "watch.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        watch_cmd(inbox, db_url, tiny_models),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, killed whole below
    )
    processed = inbox / "processed"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if processed.is_dir() and sum(1 for _ in processed.iterdir()) >= 15:
                break
            time.sleep(0.02)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # SIGKILL in the middle of the batch
        proc.wait()
    done_at_kill = sum(1 for _ in processed.iterdir())
    assert 15 <= done_at_kill < len(names), (done_at_kill, (tmp_path / "watch.log").read_text()[-2000:])

    with RecordStore(db_url, migrate=False) as store:
        assert store.integrity_check() == "ok"

    log.close()
    # restart: the same command, run in this process (its imports are warm, which keeps the test quick)
    threads = torch.get_num_threads()
    try:
        assert main(watch_cmd(inbox, db_url, tiny_models, "--once")[3:]) == 0
    finally:
        torch.set_num_threads(threads)  # the command sets its own; leave the session as it was

    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == []  # nothing skipped
    assert sorted(p.name for p in processed.iterdir()) == names
    rejected = sorted(p.name for p in (inbox / "rejected").iterdir())
    assert rejected == ["broken-1.png", "broken-1.png.reason.txt", "broken-2.jpg", "broken-2.jpg.reason.txt"]
    with RecordStore(db_url) as store:
        assert store.integrity_check() == "ok"
        records = store.list_inspections(limit=1000)
        per_part = Counter(r["part_id"] for r in records)
        assert max(per_part.values()) == 1, "a photo was recorded twice"
        assert set(per_part) == {Path(n).stem for n in names} | {"broken-1", "broken-2"}
        assert (
            store.count_inspections(status="ok") == len(names)
            and store.count_inspections(status="rejected") == 2
        )
        for rec in records:
            assert Path(rec["image_path"]).is_absolute() and Path(rec["image_path"]).exists()
        reasons = {r["part_id"]: r["reason"] for r in records if r["status"] == "rejected"}
        assert reasons == {"broken-1": "incomplete", "broken-2": "not_an_image"}
        kept = {r["image_key"] for r in records}
        assert None not in kept and all((tmp_path / "photos" / key).is_file() for key in kept)
