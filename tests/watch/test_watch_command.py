"""``inspection watch`` as a command: its flags, one pipeline load, the default photo store, exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from inspection.cli import build_parser, main
from inspection.loadtest import make_photos
from inspection.pipeline import InspectionPipeline
from inspection.store import RecordStore


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    for i, data in enumerate(make_photos(2, size=64)):
        (path / f"part-{i}.png").write_bytes(data)
    return path


def subcommand(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def watch_once(tmp_path: Path, inbox: Path, models: Path) -> tuple[str, list[str]]:
    """A records store in ``tmp_path`` and the ``watch`` arguments of one unhurried pass over ``inbox``."""
    db = f"sqlite:///{tmp_path / 'records.db'}"
    return db, [
        "watch",
        str(inbox),
        "--station",
        "s1",
        "--db",
        db,
        "--models",
        str(models),
        "--settle-s",
        "0",
    ]


@pytest.mark.parametrize("command", ["watch", "score"])
def test_every_flag_has_a_help_sentence(command: str) -> None:
    missing = [
        a.dest for a in subcommand(command)._actions if not isinstance(a, argparse._HelpAction) and not a.help
    ]
    assert missing == []


def test_loads_the_pipeline_once_and_keeps_photos_in_the_data_dir_by_default(
    tmp_path: Path, inbox: Path, tiny_models: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("INSPECTION_HOME", str(tmp_path / "home"))
    loads: list[object] = []
    real = InspectionPipeline.from_dir.__func__  # type: ignore[attr-defined]

    def counting(cls, *args, **kwargs):
        loads.append(args)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(InspectionPipeline, "from_dir", classmethod(counting))
    db = f"sqlite:///{tmp_path / 'records.db'}"
    args = ["watch", str(inbox), "--station", "s1", "--db", db, "--models", str(tiny_models)]
    assert main([*args, "--settle-s", "0", "--once"]) == 0
    assert len(loads) == 1
    assert capsys.readouterr().out.strip() == "2 scored, 0 rejected, 0 resumed"
    with RecordStore(db) as store:
        records = store.list_inspections()
    assert len(records) == 2
    assert all((tmp_path / "home" / "photos" / r["image_key"]).is_file() for r in records)


def test_once_exits_3_and_leaves_the_photos_when_the_database_refuses(
    tmp_path: Path, inbox: Path, tiny_models: Path, monkeypatch, capsys
) -> None:
    def locked(self, **_kw):
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(RecordStore, "save_inspection", locked)
    db, args = watch_once(tmp_path, inbox, tiny_models)
    assert main([*args, "--photos", str(tmp_path / "photos"), "--once"]) == 3
    assert "left in the inbox" in capsys.readouterr().err
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == ["part-0.png", "part-1.png"]
    monkeypatch.undo()
    assert main([*args, "--photos", str(tmp_path / "photos"), "--once"]) == 0
    assert not [p for p in inbox.iterdir() if p.is_file()]


def test_a_station_id_that_is_not_valid_is_refused(inbox: Path, capsys) -> None:
    assert main(["watch", str(inbox), "--station", "no spaces please", "--once"]) == 2
    assert "station id" in capsys.readouterr().err


def test_worker_processes_score_and_are_closed_when_watch_ends(
    tmp_path: Path, inbox: Path, tiny_models: Path, monkeypatch, capsys
) -> None:
    closed: list[bool] = []
    real_close = InspectionPipeline.close

    def recording_close(self):
        closed.append(self.workers.processes)
        real_close(self)

    monkeypatch.setattr(InspectionPipeline, "close", recording_close)
    db = f"sqlite:///{tmp_path / 'records.db'}"
    args = ["watch", str(inbox), "--station", "s1", "--db", db, "--models", str(tiny_models)]
    assert (
        main([*args, "--photos", str(tmp_path / "photos"), "--settle-s", "0", "--once", "--worker-processes"])
        == 0
    )
    assert capsys.readouterr().out.strip() == "2 scored, 0 rejected, 0 resumed"
    assert closed == [True]


def test_once_names_the_files_a_later_pass_takes(
    tmp_path: Path, inbox: Path, tiny_models: Path, capsys
) -> None:
    """A truncated PNG waits for its writer (``--incomplete-timeout-s``): the one pass says so, and exits 0."""
    whole = next(p for p in sorted(inbox.iterdir()) if p.suffix == ".png")
    (inbox / "half.png").write_bytes(whole.read_bytes()[:300])
    db, args = watch_once(tmp_path, inbox, tiny_models)
    assert main([*args, "--photos", str(tmp_path / "photos"), "--once"]) == 0
    assert (
        capsys.readouterr().out.strip()
        == "2 scored, 0 rejected, 0 resumed, 1 left in the inbox for a later pass: half.png"
    )
    assert (inbox / "half.png").is_file()


def test_inspection_photos_points_every_command_at_one_photo_store(
    tmp_path: Path, inbox: Path, tiny_models: Path, monkeypatch, capsys
) -> None:
    """``$INSPECTION_PHOTOS`` (and ``$INSPECTION_REPORTS``) are the defaults of every command, not the dashboard's
    alone: the watcher keeps its photos there, where the dashboard and the export look."""
    from inspection import paths
    from inspection.dashboard import config

    monkeypatch.setenv("INSPECTION_PHOTOS", str(tmp_path / "plant-photos"))
    monkeypatch.setenv("INSPECTION_REPORTS", str(tmp_path / "plant-reports"))
    assert config.sources().photos == str(tmp_path / "plant-photos") == paths.default_photos()
    assert config.sources().reports_dir == tmp_path / "plant-reports" == paths.reports_dir()
    db, args = watch_once(tmp_path, inbox, tiny_models)
    assert main([*args, "--once"]) == 0
    with RecordStore(db) as store:
        keys = [r["image_key"] for r in store.list_inspections()]
    assert len(keys) == 2 and all((tmp_path / "plant-photos" / k).is_file() for k in keys)


def test_the_older_flag_spellings_still_work_with_a_note(capsys) -> None:
    """watch's seconds and batch flags are spelled as serve's and score's; the old spellings keep working."""
    args = build_parser().parse_args(
        ["watch", "d", "--station", "s1", "--settle", "0", "--poll", "1", "--pickup", "0", "--batch", "4",
         "--incomplete-timeout", "5"]
    )  # fmt: skip
    assert (args.settle_s, args.poll_s, args.pickup_s, args.batch_size, args.incomplete_timeout_s) == (
        0,
        1,
        0,
        4,
        5,
    )
    err = capsys.readouterr().err
    assert all(f"{old} is deprecated; use {old}-s" in err for old in ("--settle", "--poll", "--pickup"))
    assert "--batch is deprecated; use --batch-size" in err
    assert "--incomplete-timeout is deprecated; use --incomplete-timeout-s" in err
