"""``inspection synth``: dataset.json marks the data synthetic, training carries it into the checkpoint and the
bundle card, and ``--masks`` writes defect masks without changing a photo."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from inspection.bundle import complete_card
from inspection.cli import main
from inspection.models.checkpoint import read_meta


def _photo_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(q for split in ("train", "test") for q in (root / split).rglob("*.png")):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def test_masks_flag_keeps_seed0_photos(tmp_path, capsys):
    args = ["synth", "--n-train", "10", "--n-test", "6", "--size", "64", "--seed", "0"]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    assert main([*args, "--out", str(tmp_path / "masked"), "--masks"]) == 0
    assert "defect masks" in capsys.readouterr().out
    assert _photo_digest(tmp_path / "plain") == _photo_digest(tmp_path / "masked")
    masks = sorted((tmp_path / "masked" / "masks").rglob("*.png"))
    defective = sorted((tmp_path / "masked").glob("*/def_front/*.png"))
    assert [m.relative_to(tmp_path / "masked" / "masks") for m in masks] == [
        d.relative_to(tmp_path / "masked") for d in defective
    ]
    assert json.loads((tmp_path / "masked" / "dataset.json").read_text())["masks"] == "masks"


def test_training_copies_dataset_json_into_meta_and_card(tmp_path, capsys):
    data = tmp_path / "data"
    assert (
        main(["synth", "--out", str(data), "--n-train", "12", "--n-test", "0", "--size", "48", "--seed", "3"])
        == 0
    )
    train = [
        "train",
        "defect",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "m"),
        "--arch",
        "test_defect_cnn",
    ]
    assert (
        main(
            [*train, "--input-size", "32", "--epochs", "1", "--batch-size", "4", "--quiet", "--version", "v1"]
        )
        == 0
    )
    capsys.readouterr()
    meta = read_meta(tmp_path / "m" / "defect" / "v1")
    data_info = meta["training_data"]
    assert data_info["synthetic"] is True
    assert data_info["dataset"]["generator"] == "inspection.data.write_synthetic_dataset"
    assert data_info["dataset"]["seed"] == 3 and data_info["n_images"] == 12
    card = complete_card({}, "b1", {"noise": meta, "defect": meta})
    assert card["synthetic_only"] is True
    real = {**meta, "training_data": {**data_info, "synthetic": False}}
    assert complete_card({}, "b2", {"noise": meta, "defect": real})["synthetic_only"] is False
