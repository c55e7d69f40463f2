"""``inspection score`` and out-of-distribution photos: the ``ood`` and ``ood_score`` columns, and the warning on
stderr when most of a batch lies beyond the models' range."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

from inspection.bundle import load_bundle
from inspection.cli import main
from inspection.loadtest import make_photos
from inspection.ood import WARN_MIN_PHOTOS, station_warning
from inspection.pipeline import InspectionPipeline
from inspection.results import InspectionResult
from inspection.store import RecordStore

N = WARN_MIN_PHOTOS + 2


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ood-photos")
    for i, photo in enumerate(make_photos(N, size=64)):
        (path / f"part-{i:02d}.png").write_bytes(photo)
    (path / "text.jpg").write_bytes(b"not a photo")
    return path


def flag(monkeypatch: pytest.MonkeyPatch, out_of_range: int) -> None:
    """Make the pipeline flag the first ``out_of_range`` photos it scores (score 3.0), the rest in range (0.5)."""
    real = InspectionPipeline.inspect_batch
    seen = [0]

    def inspect_batch(self, images):
        results = []
        for r in real(self, images):
            if isinstance(r, InspectionResult):
                out = seen[0] < out_of_range
                r = dataclasses.replace(r, ood=out, ood_score=3.0 if out else 0.5)
                seen[0] += 1
            results.append(r)
        return results

    monkeypatch.setattr(InspectionPipeline, "inspect_batch", inspect_batch)


def score(folder: Path, tmp_path: Path, models: Path, *extra: str) -> tuple[int, dict[str, dict[str, str]]]:
    out = tmp_path / "results.csv"
    code = main(["score", str(folder), "--out", str(out), "--models", str(models), "--quiet", *extra])
    with out.open() as fh:
        return code, {Path(r["path"]).name: r for r in csv.DictReader(fh)}


def test_columns_are_empty_without_an_ood_model_and_no_warning(
    folder: Path, tmp_path: Path, tiny_models: Path, capsys
) -> None:
    code, rows = score(folder, tmp_path, tiny_models, "--no-db")
    assert code == 0
    header = list(next(iter(rows.values())))
    assert header.index("ood") == header.index("review_reason") + 1
    assert header.index("ood_score") == header.index("ood") + 1
    # not known: the tiny bundle has no OOD model
    assert {(r["ood"], r["ood_score"]) for r in rows.values()} == {("", "")}
    assert "warning:" not in capsys.readouterr().err


def test_a_batch_mostly_out_of_range_is_warned_about(
    folder: Path, tmp_path: Path, tiny_models: Path, monkeypatch, capsys
) -> None:
    flag(monkeypatch, out_of_range=N - 2)
    db = f"sqlite:///{tmp_path / 'records.db'}"
    code, rows = score(folder, tmp_path, tiny_models, "--db", db, "--station", "line-7")
    assert code == 0
    scored = {n: r for n, r in rows.items() if r["status"] == "ok"}
    assert len(scored) == N and rows["text.jpg"]["ood"] == ""
    assert sorted(r["ood"] for r in scored.values()) == ["false"] * 2 + ["true"] * (N - 2)
    assert {r["ood_score"] for r in scored.values() if r["ood"] == "true"} == {"3.0000"}
    with RecordStore(db) as store:  # the records keep the flags the CSV shows
        assert store.ood_share("line-7") == (N - 2, N)

    out, err = capsys.readouterr()
    expected = station_warning(N - 2, N, load_bundle(tiny_models).card)
    assert expected is not None
    assert f"warning: {expected}" in err.splitlines()
    assert out.startswith(f"scored {N + 1} files:")  # the summary is unchanged


def test_a_few_out_of_range_photos_are_no_warning(
    folder: Path, tmp_path: Path, tiny_models: Path, monkeypatch, capsys
) -> None:
    flag(monkeypatch, out_of_range=2)  # 2 of 22: under the share that warns
    code, rows = score(folder, tmp_path, tiny_models, "--no-db")
    assert code == 0 and sum(r["ood"] == "true" for r in rows.values()) == 2
    assert "warning:" not in capsys.readouterr().err
