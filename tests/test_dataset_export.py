"""``inspection dataset export``: labelled records and their kept photos become train|test/<class>/."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers.photos import encode

from inspection.cli import main
from inspection.data import write_synthetic_dataset
from inspection.results import InspectionResult
from inspection.store import RecordStore
from inspection.store.export import export_dataset, normalise_kind, pick_golden
from inspection.store.photos import LocalPhotoStore

RESULT = InspectionResult(
    noise_type="clean",
    noise_probability=0.9,
    noise_probabilities={"clean": 0.9, "gaussian": 0.1},
    denoiser="identity",
    defect_probability=0.4,
    threshold=0.5,
    verdict="ok",
)


class Plant:
    """A records store and a photo store, with records made from fresh random photos."""

    def __init__(self, root: Path) -> None:
        self.url = f"sqlite:///{root / 'records.db'}"
        self.store = RecordStore(self.url)
        self.photos = LocalPhotoStore(root / "photos")
        self.rng = np.random.default_rng(0)
        self.n = 0

    def photo(self, fmt: str = "PNG") -> bytes:
        return encode(self.rng.integers(0, 256, (32, 32), dtype=np.uint8), fmt)

    def record(self, data: bytes | None = None, *, station: str = "s1") -> int:
        data = data if data is not None else self.photo()
        self.n += 1
        key = self.photos.put(data)
        return self.store.add_inspection(
            station_id=station,
            part_id=f"part-{self.n}",
            image_sha256=hashlib.sha256(data).hexdigest(),
            image_path=None,
            result=RESULT,
            image_key=key,
        )

    def labelled(self, verdict: str, kind: str | None = None, data: bytes | None = None) -> int:
        rid = self.record(data)
        self.store.add_label(rid, verdict=verdict, kind=kind, labelled_by="alice")
        return rid

    def export(self, out: Path, *extra: str) -> int:
        return main(["dataset", "export", "--db", self.url, "--out", str(out), "--photos", str(self.photos.root),
                     "--quiet", *extra])  # fmt: skip

    def sha(self, rid: int) -> str:
        record = self.store.get_inspection(rid)
        assert record is not None
        return str(record["image_sha256"])


@pytest.fixture
def plant(tmp_path: Path):
    p = Plant(tmp_path)
    yield p
    p.store.close()


def files(out: Path, split: str) -> dict[str, str]:
    """``{sha256: class folder}`` of every photo under ``out/split``."""
    return {f.stem: f.parent.name for f in (out / split).glob("*/*")} if (out / split).is_dir() else {}


def test_layout_classes_labels_csv_and_summary(plant: Plant, tmp_path: Path) -> None:
    ok = [plant.labelled("ok") for _ in range(3)]
    crack = [plant.labelled("defective", "Crack") for _ in range(2)]
    burr = plant.labelled("defective", "burr")
    unkinded = plant.labelled("defective")
    plant.record()  # not labelled: not exported
    out = tmp_path / "ds"

    assert plant.export(out) == 0

    train = files(out, "train")
    assert train == {
        **{plant.sha(r): "ok" for r in ok},
        **{plant.sha(r): "def_crack" for r in crack},
        plant.sha(burr): "def_burr",
        plant.sha(unkinded): "def_unknown",
    }
    assert files(out, "test") == {}
    with open(out / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) == {"path", "label", "kind"}
    by_sha = {Path(r["path"]).stem: r for r in rows}
    assert by_sha[plant.sha(crack[0])] == {
        "path": f"train/def_crack/{plant.sha(crack[0])}.png", "label": "defective", "kind": "crack",
    }  # fmt: skip
    assert (by_sha[plant.sha(unkinded)]["label"], by_sha[plant.sha(unkinded)]["kind"]) == ("defective", "")
    assert (by_sha[plant.sha(ok[0])]["label"], by_sha[plant.sha(ok[0])]["kind"]) == ("ok", "")
    assert all((out / r["path"]).is_file() for r in rows) and len(rows) == 7

    meta = json.loads((out / "dataset.json").read_text())
    assert meta["counts"] == {"train": {"def_burr": 1, "def_crack": 2, "def_unknown": 1, "ok": 3}, "test": {}}
    assert meta["kinds"] == ["burr", "crack"] and meta["unkinded_defects"] == 1
    assert meta["source"]["db"] == plant.url and meta["golden"]["in_store"] == 0
    expected = hashlib.sha256(
        "".join(
            f"{Path(r['path']).stem}\ttrain\t{r['label']}\t{r['kind']}\n"
            for r in sorted(rows, key=lambda r: Path(r["path"]).stem)
        ).encode()
    ).hexdigest()
    assert meta["fingerprint"] == expected


def test_without_any_kind_defects_go_to_one_def_front_folder(plant: Plant, tmp_path: Path) -> None:
    plant.labelled("ok")
    plant.labelled("defective")
    plant.labelled("defective")
    assert plant.export(tmp_path / "ds") == 0
    assert sorted(Counter(files(tmp_path / "ds", "train").values()).items()) == [("def_front", 2), ("ok", 1)]


def test_original_bytes_keep_their_format(plant: Plant, tmp_path: Path) -> None:
    jpeg = plant.photo("JPEG")
    rid = plant.labelled("ok", data=jpeg)
    assert plant.export(tmp_path / "ds") == 0
    [path] = (tmp_path / "ds" / "train" / "ok").iterdir()
    assert path.name == f"{plant.sha(rid)}.jpg" and path.read_bytes() == jpeg


def test_one_photo_sent_twice_is_exported_once_under_its_newest_label(
    plant: Plant, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = plant.photo()
    first = plant.labelled("ok", data=same)
    second = plant.labelled("defective", "crack", data=same)  # another part, same bytes, newer label
    relabelled = plant.labelled("ok")
    plant.store.add_label(relabelled, verdict="defective", kind="burr", labelled_by="bob")  # a correction
    out = tmp_path / "ds"

    assert plant.export(out) == 0

    assert files(out, "train") == {plant.sha(first): "def_crack", plant.sha(relabelled): "def_burr"}
    err = capsys.readouterr().err
    assert (
        f"labels disagree on photo {plant.sha(first)[:12]}" in err
        and "kept the newest, defective/crack" in err
    )
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["disagreements"] == [
        {
            "sha256": plant.sha(first),
            "kept": "defective/crack",
            "labels": [[first, "ok"], [second, "defective/crack"]],
        }
    ]  # the corrected record is no disagreement: its newest label holds
    assert meta["total"] == 2


def test_golden_set_is_frozen_grows_only_on_request_and_never_trains(plant: Plant, tmp_path: Path) -> None:
    for _ in range(12):
        plant.labelled("ok")
    for _ in range(6):
        plant.labelled("defective", "crack")
    for _ in range(2):
        plant.labelled("defective", "burr")
    out = tmp_path / "ds"

    assert plant.export(out, "--golden-add", "5", "--seed", "3") == 0
    test = files(out, "test")
    assert len(test) == 5 and set(test) == plant.store.golden_hashes()
    # 12 ok, 6 crack, 2 burr: 3, 1.5 and 0.5 photos in proportion; the rare burr still gets one
    assert Counter(test.values()) == {"ok": 3, "def_crack": 1, "def_burr": 1}
    assert not set(test) & set(files(out, "train"))
    first_fingerprint = json.loads((out / "dataset.json").read_text())["fingerprint"]

    assert plant.export(out) == 0  # again, into the same folder: the same test set, nothing added
    assert files(out, "test") == test and len(files(out, "train")) == 15
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["golden"] == {"in_store": 5, "exported": 5, "added": 0, "seed": 0, "relabelled": []}
    assert meta["golden_sha256"] == sorted(test)  # what training drops from this and any replayed export
    assert meta["fingerprint"] == first_fingerprint

    new = plant.labelled("defective", "crack")
    assert plant.export(out) == 0  # a new labelled photo trains; it does not become golden by itself
    assert files(out, "train")[plant.sha(new)] == "def_crack" and files(out, "test") == test

    assert plant.export(out, "--golden-add", "3") == 0
    grown = files(out, "test")
    assert len(grown) == 8 and set(test) < set(grown)
    assert not set(grown) & set(files(out, "train")) and len(files(out, "train")) == 13


def test_golden_fraction_tops_the_set_up_to_a_share_of_the_photos(plant: Plant, tmp_path: Path) -> None:
    for verdict in ["ok"] * 6 + ["defective"] * 4:
        plant.labelled(verdict)
    out = tmp_path / "ds"
    assert plant.export(out, "--golden-fraction", "0.2") == 0
    assert len(files(out, "test")) == 2
    assert plant.export(out, "--golden-fraction", "0.2") == 0  # already there: nothing added
    assert len(plant.store.golden_hashes()) == 2
    assert plant.export(out, "--golden-fraction", "0.5") == 0
    assert len(files(out, "test")) == 5 and len(files(out, "train")) == 5


def test_a_relabelled_golden_photo_stays_golden_under_its_newest_label(plant: Plant, tmp_path: Path) -> None:
    rid = plant.labelled("ok")
    plant.labelled("defective")
    out = tmp_path / "ds"
    assert plant.export(out, "--golden-add", "2") == 0
    plant.store.add_label(rid, verdict="defective", labelled_by="bob")
    assert plant.export(out) == 0
    assert files(out, "test")[plant.sha(rid)] == "def_front"
    assert json.loads((out / "dataset.json").read_text())["golden"]["relabelled"] == [plant.sha(rid)]


def test_missing_photos_are_skipped_and_reported(
    plant: Plant, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = plant.labelled("ok")
    gone = plant.labelled("defective")
    (plant.photos.root / plant.store.get_inspection(gone)["image_key"]).unlink()
    no_photo = plant.store.add_inspection(
        station_id="s1", part_id="no-photo", image_sha256="e" * 64, image_path=None, result=RESULT
    )
    plant.store.add_label(no_photo, verdict="ok", labelled_by="alice")
    out = tmp_path / "ds"

    assert plant.export(out) == 0

    assert files(out, "train") == {plant.sha(kept): "ok"}
    err = capsys.readouterr().err
    assert f"skipped record {gone} (photo_missing)" in err and f"skipped record {no_photo} (no_photo)" in err
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["skipped"] == {"no_photo": 1, "photo_missing": 1}
    assert {s["inspection_id"] for s in meta["skipped_photos"]} == {gone, no_photo}


def test_nothing_to_export_exits_non_zero_and_leaves_the_folder(
    plant: Plant, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    assert plant.export(out) == 1  # no labels at all
    assert not out.exists()
    rid = plant.labelled("ok")
    assert plant.export(out) == 0
    (plant.photos.root / plant.store.get_inspection(rid)["image_key"]).unlink()
    assert plant.export(out) == 1
    assert "nothing to export" in capsys.readouterr().err
    assert files(out, "train") == {plant.sha(rid): "ok"}  # the previous export is still whole


def test_a_folder_that_is_not_an_export_is_never_replaced(
    plant: Plant, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plant.labelled("ok")
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert plant.export(out) == 2
    assert "not a previous export" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    generated = write_synthetic_dataset(tmp_path / "generated", n_train=2, n_test=0, size=64, seed=0)
    assert (generated / "dataset.json").is_file()  # inspection synth writes one too, so that alone is no mark
    before = sorted(p.relative_to(generated) for p in generated.rglob("*"))
    assert plant.export(generated) == 2
    assert sorted(p.relative_to(generated) for p in generated.rglob("*")) == before


def test_bad_golden_arguments_are_refused_before_anything_changes(plant: Plant, tmp_path: Path) -> None:
    plant.labelled("ok")
    with pytest.raises(ValueError, match="golden_add"):
        export_dataset(plant.store, plant.photos, tmp_path / "a", golden_add=-1)
    with pytest.raises(ValueError, match="golden_fraction"):
        export_dataset(plant.store, plant.photos, tmp_path / "b", golden_fraction=1.5)
    assert plant.store.golden_hashes() == set() and not (tmp_path / "a").exists()
    assert plant.export(tmp_path / "d", "--golden-add", "-1") == 2
    with pytest.raises(SystemExit):  # one way to grow the golden set per run
        plant.export(tmp_path / "c", "--golden-add", "1", "--golden-fraction", "0.5")


def test_pick_golden_is_seeded_and_gives_every_class_a_photo() -> None:
    from inspection.store.export import _Photo

    photos = [_Photo(f"{i:064x}", None, "", "ok" if i < 90 else "def_rare") for i in range(100)]  # type: ignore[arg-type]
    picked = pick_golden(photos, 10, seed=1)
    assert Counter(p.class_name for p in picked) == {"ok": 9, "def_rare": 1}
    assert [p.sha256 for p in pick_golden(photos, 10, seed=1)] == [p.sha256 for p in picked]
    assert [p.sha256 for p in pick_golden(photos, 10, seed=2)] != [p.sha256 for p in picked]
    assert len(pick_golden(photos, 500, seed=0)) == 100


def test_kind_names_become_safe_folder_names() -> None:
    assert normalise_kind(" Cold Shut ") == "cold_shut"
    assert normalise_kind("../etc") == "etc"
    assert normalise_kind(None) == normalise_kind("") == ""


def test_records_scored_without_kept_photos_export_the_files_they_were_scored_from(
    tmp_path: Path, tiny_models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``inspection score`` without ``--photos`` records where each file was: the export reads it there, when its
    bytes still hash to the record's; a moved or changed file is skipped with its reason."""
    folder = tmp_path / "line"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in ("kept", "moved", "changed"):
        (folder / f"{name}.png").write_bytes(encode(rng.integers(0, 256, (64, 64), dtype=np.uint8), "PNG"))
    url = f"sqlite:///{tmp_path / 'records.db'}"
    args = ["score", str(folder), "--out", str(tmp_path / "r.csv"), "--db", url, "--quiet", "--models"]
    assert main([*args, str(tiny_models)]) == 0
    with RecordStore(url) as store:
        ids = {Path(r["image_path"]).stem: r["id"] for r in store.list_inspections(limit=10)}
        assert all(store.get_inspection(i)["image_key"] is None for i in ids.values())
        for name, rid in ids.items():
            store.add_label(rid, verdict="defective" if name == "kept" else "ok", labelled_by="alice")
        kept_sha = store.get_inspection(ids["kept"])["image_sha256"]
    (folder / "moved.png").rename(tmp_path / "moved.png")
    (folder / "changed.png").write_bytes(encode(rng.integers(0, 256, (64, 64), dtype=np.uint8), "PNG"))
    out = tmp_path / "ds"
    assert (
        main(
            ["dataset", "export", "--db", url, "--out", str(out), "--photos", str(tmp_path / "p"), "--quiet"]
        )
        == 0
    )
    assert files(out, "train") == {kept_sha: "def_front"}
    assert (out / "train" / "def_front" / f"{kept_sha}.png").read_bytes() == (
        folder / "kept.png"
    ).read_bytes()
    err = capsys.readouterr().err
    assert f"skipped record {ids['moved']} (photo_missing)" in err
    assert f"skipped record {ids['changed']} (hash_mismatch)" in err


def test_a_photo_shared_by_records_takes_the_newest_label_and_the_kept_bytes(
    plant: Plant, tmp_path: Path
) -> None:
    """Record A kept its photo; record B, scored later from a file that has since moved, has the same bytes and
    the newer label: B's label, A's bytes."""
    data = plant.photo()
    kept = plant.labelled("ok", data=data)
    moved = plant.store.add_inspection(
        station_id="s1", part_id="again", image_sha256=hashlib.sha256(data).hexdigest(),
        image_path=str(tmp_path / "gone.png"), result=RESULT,
    )  # fmt: skip
    plant.store.add_label(moved, verdict="defective", kind="crack", labelled_by="bob")
    out = tmp_path / "ds"
    assert plant.export(out) == 0
    assert files(out, "train") == {plant.sha(kept): "def_crack"}


def test_a_shared_photo_whose_kept_copy_is_gone_is_read_from_another_records_file(
    plant: Plant, tmp_path: Path
) -> None:
    data = plant.photo()
    kept = plant.labelled("ok", data=data)
    (plant.photos.root / plant.store.get_inspection(kept)["image_key"]).unlink()
    (tmp_path / "still-here.png").write_bytes(data)
    scored = plant.store.add_inspection(
        station_id="s1", part_id="scored", image_sha256=hashlib.sha256(data).hexdigest(),
        image_path=str(tmp_path / "still-here.png"), result=RESULT,
    )  # fmt: skip
    plant.store.add_label(scored, verdict="ok", labelled_by="bob")
    out = tmp_path / "ds"
    assert plant.export(out) == 0
    assert (out / "train" / "ok" / f"{plant.sha(kept)}.png").read_bytes() == data
