import json
import pickle
from pathlib import Path

import pytest
import torch

from inspection.bundle import resolve_checkpoint_dir
from inspection.models import create_model, load_checkpoint, save_checkpoint
from inspection.models.checkpoint import FORMAT_VERSION, REQUIRED_META, CheckpointError, read_meta


def saved(tmp_path, name="test_defect_cnn"):
    torch.manual_seed(0)
    model = create_model(name).eval()
    path = save_checkpoint(
        model,
        tmp_path / "v1",
        architecture=name,
        input_size=32,
        class_names=["ok", "defective"],
        threshold=0.4,
        metrics={"val_accuracy": 0.9},
        training_data={"sha256": "abc"},
    )
    return model, path


def test_round_trip_gives_identical_outputs_and_metadata(tmp_path):
    model, path = saved(tmp_path)
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "weights.safetensors"]
    ck = load_checkpoint(path)
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), ck.model(x))
    assert ck.meta["threshold"] == 0.4 and ck.meta["metrics"]["val_accuracy"] == 0.9
    assert ck.meta["format_version"] == FORMAT_VERSION and ck.version == "v1"
    assert not ck.model.training


def test_refuses_to_overwrite_a_version(tmp_path):
    _, path = saved(tmp_path)
    with pytest.raises(CheckpointError, match="already holds"):
        save_checkpoint(
            create_model("test_defect_cnn"),
            path,
            architecture="test_defect_cnn",
            input_size=32,
            class_names=[],
        )


def test_tampered_weights_are_refused(tmp_path):
    _, path = saved(tmp_path)
    data = bytearray((path / "weights.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (path / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="altered"):
        load_checkpoint(path)


def test_pickle_in_place_of_weights_is_never_unpickled(tmp_path):
    _, path = saved(tmp_path)
    (path / "weights.safetensors").write_bytes(pickle.dumps({"boom": 1}))
    meta = json.loads((path / "meta.json").read_text())
    import hashlib

    meta["weights_sha256"] = hashlib.sha256((path / "weights.safetensors").read_bytes()).hexdigest()
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"format_version": 99}, "unknown checkpoint format_version 99"),
        ({"architecture": "resnet9000"}, "not a registered model"),
        ({"architecture": "test_freq_vgg"}, "does not fit"),
    ],
)
def test_bad_metadata_is_refused(tmp_path, change, match):
    _, path = saved(tmp_path)
    meta = json.loads((path / "meta.json").read_text())
    meta.update(change)
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_missing_key_and_missing_files(tmp_path):
    _, path = saved(tmp_path)
    meta = json.loads((path / "meta.json").read_text())
    del meta["class_names"]
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="class_names"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="meta.json is missing"):
        load_checkpoint(tmp_path / "nowhere")


def test_version_folder_resolution(tmp_path):
    for v in ("a-1", "a-2"):
        save_checkpoint(
            create_model("test_defect_cnn"),
            tmp_path / v,
            architecture="test_defect_cnn",
            input_size=32,
            class_names=[],
        )
    assert resolve_checkpoint_dir(tmp_path).name == "a-2"
    (tmp_path / "CURRENT").write_text("a-1\n")
    assert resolve_checkpoint_dir(tmp_path).name == "a-1"


def test_shipped_checkpoints_metadata_schema(shipped_models):
    """Every shipped checkpoint has the full schema, loads strictly and names its training data."""
    for task in ("noise", "denoiser", "defect"):
        path = resolve_checkpoint_dir(shipped_models / task)
        meta = read_meta(path)
        assert set(REQUIRED_META) <= set(meta)
        assert meta["task"] == task
        assert meta["training_data"]["sha256"] and meta["training_data"]["n_images"] > 0
        roots = [
            meta["training_data"]["root"],
            *(s["root"] for s in meta["training_data"].get("sources", [])),
        ]
        assert not any("casting" in Path(r).parts for r in roots), (
            "defaults must never train on the casting photos"
        )
        assert (path / "weights.safetensors").stat().st_size < 2_000_000
        load_checkpoint(path)
    card = json.loads((shipped_models / "card.json").read_text())
    assert card["synthetic_only"] and card["data"]["synthetic"], "defaults: synthetic data only"
