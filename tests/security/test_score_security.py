"""``inspection score`` on hostile input: a FIFO never blocks the run, path-like names never become part ids."""

from __future__ import annotations

import csv
import os
import threading
from pathlib import Path

import pytest

from inspection.cli import main
from inspection.loadtest import make_photos
from inspection.store import RecordStore


def test_a_fifo_named_on_the_command_line_is_rejected_not_read(tmp_path: Path, tiny_models: Path) -> None:
    fifo = tmp_path / "camera.png"
    os.mkfifo(fifo)
    out = tmp_path / "r.csv"
    args = ["score", str(fifo), "--no-db", "--out", str(out), "--models", str(tiny_models), "--quiet"]
    codes: list[int] = []
    worker = threading.Thread(target=lambda: codes.append(main(args)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    if worker.is_alive():  # release the blocked reader so the test process can finish
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("score opened a FIFO and blocked on it")
    assert codes == [0]
    (row,) = csv.DictReader(out.open())
    assert row["status"] == "rejected" and row["reason"] == "unreadable" and "regular file" in row["message"]


@pytest.mark.parametrize("name", ["üml.png", "a..b.png", "-dash.png", "x" * 129 + ".png"])
def test_names_that_are_no_part_id_are_recorded_as_bad_part_id(
    tmp_path: Path, tiny_models: Path, name: str
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / name).write_bytes(make_photos(1, size=64)[0])
    db = f"sqlite:///{tmp_path / 'records.db'}"
    out = tmp_path / "r.csv"
    assert (
        main(["score", str(folder), "--db", db, "--out", str(out), "--models", str(tiny_models), "--quiet"])
        == 0
    )
    (row,) = csv.DictReader(out.open())
    assert (row["status"], row["reason"]) == ("rejected", "bad_part_id")
    with RecordStore(db) as store:
        assert [r["reason"] for r in store.list_inspections()] == ["bad_part_id"]
