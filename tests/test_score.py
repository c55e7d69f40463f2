"""``inspection score`` on the ingestion path: part ids checked, idempotent records, photos kept on request, and
rows that the stores could not take written as ``unrecorded`` (exit 3) and recorded by a rerun."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from inspection.cli import main
from inspection.loadtest import make_photos
from inspection.store import RecordStore


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "photos"
    path.mkdir()
    good, other = make_photos(2, size=64)
    (path / "good-1.png").write_bytes(good)
    (path / "good-2.png").write_bytes(other)
    (path / "bad name!.png").write_bytes(good)  # a fine photo whose name is no part id
    (path / "text.jpg").write_bytes(b"not a photo")
    return path


def score(folder: Path, tmp_path: Path, *extra: str, models: Path) -> tuple[int, dict[str, dict[str, str]]]:
    out = tmp_path / "results.csv"
    code = main(["score", str(folder), "--out", str(out), "--models", str(models), "--quiet", *extra])
    with out.open() as fh:
        return code, {Path(r["path"]).name: r for r in csv.DictReader(fh)}


def test_part_ids_are_checked_and_a_rerun_adds_no_records(
    tmp_path: Path, folder: Path, tiny_models: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'records.db'}"
    code, rows = score(folder, tmp_path, "--db", db, "--station", "line-9", models=tiny_models)

    assert code == 0
    assert rows["bad name!.png"]["status"] == "rejected" and rows["bad name!.png"]["reason"] == "bad_part_id"
    assert rows["text.jpg"]["reason"] == "not_an_image"
    assert rows["good-1.png"]["status"] == "ok" and rows["good-1.png"]["verdict"] in ("ok", "defective")
    assert all(r["record_id"] for r in rows.values())
    with RecordStore(db) as store:
        assert store.count_inspections(station_id="line-9") == 4
        record = store.get_inspection(int(rows["good-1.png"]["record_id"]))
        assert record is not None and record["source"] == "batch" and record["part_id"] == "good-1"
        assert record["image_path"] == str(folder / "good-1.png") and record["image_key"] is None

        code, again = score(folder, tmp_path, "--db", db, "--station", "line-9", models=tiny_models)
        assert code == 0 and store.count_inspections(station_id="line-9") == 4
    assert {n: r["record_id"] for n, r in again.items()} == {n: r["record_id"] for n, r in rows.items()}
    assert again["good-1.png"]["defect_probability"] == rows["good-1.png"]["defect_probability"]


def test_no_db_checks_part_ids_without_a_store(
    tmp_path: Path, folder: Path, tiny_models: Path, monkeypatch
) -> None:
    monkeypatch.setenv("INSPECTION_HOME", str(tmp_path / "home"))
    code, rows = score(folder, tmp_path, "--no-db", models=tiny_models)
    assert code == 0
    assert {n: (r["status"], r["reason"]) for n, r in rows.items()} == {
        "bad name!.png": ("rejected", "bad_part_id"),
        "good-1.png": ("ok", ""),
        "good-2.png": ("ok", ""),
        "text.jpg": ("rejected", "not_an_image"),
    }
    assert "record_id" not in next(iter(rows.values()))
    assert not (tmp_path / "home").exists()  # no database was opened


def test_photos_flag_keeps_copies_in_the_photo_store(tmp_path: Path, folder: Path, tiny_models: Path) -> None:
    db = f"sqlite:///{tmp_path / 'records.db'}"
    code, rows = score(folder, tmp_path, "--db", db, "--photos", str(tmp_path / "kept"), models=tiny_models)
    assert code == 0
    with RecordStore(db) as store:
        record = store.get_inspection(int(rows["good-2.png"]["record_id"]))
    assert record is not None and record["image_key"]
    assert (tmp_path / "kept" / record["image_key"]).read_bytes() == (folder / "good-2.png").read_bytes()


def test_photos_flag_needs_the_store(tmp_path: Path, folder: Path, tiny_models: Path, capsys) -> None:
    args = ["score", str(folder), "--no-db", "--photos", str(tmp_path / "kept"), "--models", str(tiny_models)]
    assert main(args) == 2
    assert "--photos" in capsys.readouterr().err


def test_rows_the_store_could_not_take_are_written_unrecorded_and_a_rerun_records_them(
    tmp_path: Path, folder: Path, tiny_models: Path, monkeypatch, capsys
) -> None:
    db = f"sqlite:///{tmp_path / 'records.db'}"
    real_save = RecordStore.save_inspection

    def flaky(self, **kw):  # the database refuses the records of one part
        if kw["part_id"] == "good-2":
            raise OperationalError("INSERT INTO inspections", {}, Exception("disk I/O error"))
        return real_save(self, **kw)

    monkeypatch.setattr(RecordStore, "save_inspection", flaky)
    code, rows = score(folder, tmp_path, "--db", db, models=tiny_models)

    assert code == 3
    lost = rows["good-2.png"]
    assert (lost["status"], lost["reason"], lost["record_id"]) == ("unrecorded", "store_unavailable", "")
    assert rows["good-1.png"]["status"] == "ok" and rows["good-1.png"]["record_id"]
    out, err = capsys.readouterr()
    assert "1 not recorded" in out and "1 row(s) were not recorded" in err and "store_unavailable" in err
    with RecordStore(db) as store:
        assert store.count_inspections() == 3 and store.count_inspections(part_id="good-2") == 0

    monkeypatch.undo()
    code, rows = score(folder, tmp_path, "--db", db, models=tiny_models)
    assert code == 0 and rows["good-2.png"]["status"] == "ok"
    with RecordStore(db) as store:
        assert store.count_inspections() == 4 and store.count_inspections(part_id="good-2") == 1


def test_a_store_that_cannot_be_opened_is_one_line_and_exit_2(
    tmp_path: Path, folder: Path, tiny_models: Path, capsys
) -> None:
    args = ["score", str(folder), "--db", f"sqlite:///{tmp_path}", "--models", str(tiny_models), "--quiet"]
    assert main([*args, "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("inspection score: cannot open the records store") and len(err.splitlines()) == 1


def test_the_summary_counts_every_verdict_and_the_folder_walk_skips_its_own_csv_and_hidden_folders(
    tmp_path: Path, folder: Path, tiny_models: Path, capsys
) -> None:
    (folder / ".git").mkdir()
    (folder / ".git" / "config").write_text("[core]")
    out = folder / "results.csv"  # inside the scored folder: a rerun must not score its own CSV
    args = ["score", str(folder), "--out", str(out), "--models", str(tiny_models), "--quiet", "--no-db"]
    for _ in range(2):
        assert main(args) == 0
        with out.open() as fh:
            rows = list(csv.DictReader(fh))
        assert sorted(Path(r["path"]).name for r in rows) == [
            "bad name!.png",
            "good-1.png",
            "good-2.png",
            "text.jpg",
        ]
    verdicts = [r["verdict"] or r["status"] for r in rows]
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    counted = {name: verdicts.count(name) for name in ("ok", "defective", "review", "rejected")}
    assert summary.startswith(
        f"scored 4 files: {counted['ok']} ok, {counted['defective']} defective, {counted['review']} review, "
        f"{counted['rejected']} rejected"
    )
    assert sum(counted.values()) == 4


def test_a_missing_path_is_a_row_and_a_warning_and_setup_mistakes_are_one_line_and_exit_2(
    tmp_path: Path, folder: Path, tiny_models: Path, capsys
) -> None:
    out = str(tmp_path / "r.csv")
    base = ["score", "--out", out, "--quiet", "--no-db"]
    assert (
        main([*base, str(tmp_path / "typo.png"), "--models", str(tiny_models)]) == 2
    )  # nothing to score at all
    assert "no such file or folder" in capsys.readouterr().err and not Path(out).exists()
    typo = [*base, str(folder / "good-1.png"), str(tmp_path / "typo.png"), "--models", str(tiny_models)]
    assert (
        main(typo) == 0
    )  # the rest carries on; the missing file is a row with its reason, and said on stderr
    assert "warning: no such file or folder" in capsys.readouterr().err
    with open(out) as fh:
        assert [r["reason"] for r in csv.DictReader(fh)] == ["", "unreadable"]
    assert main([*base, str(folder), "--models", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("inspection score: ")
    with pytest.raises(SystemExit):
        main([*base, str(folder), "--batch-size", "0"])
    assert "must be at least 1" in capsys.readouterr().err
