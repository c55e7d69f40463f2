"""Model bundles: resolving --models, the LIVE pointer, the policy in pipeline.json, the card."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from inspection.bundle import (
    BUNDLES_DIR,
    LIVE_FILE,
    PIPELINE_FILE,
    BundleError,
    VerdictPolicy,
    load_bundle,
    read_live,
    write_bundle,
    write_live,
)
from inspection.cli import main
from inspection.pipeline import InspectionPipeline
from inspection.testing import write_tiny_bundle, write_tiny_checkpoints


def _copy_with_policy(bundle: Path, dest: Path, **policy: object) -> Path:
    shutil.copytree(bundle, dest)
    spec = json.loads((dest / PIPELINE_FILE).read_text())
    spec["policy"].update(policy)
    (dest / PIPELINE_FILE).write_text(json.dumps(spec))
    return dest


def test_models_root_resolves_to_its_live_bundle(tiny_root, tiny_models):
    assert load_bundle(tiny_root).path == tiny_models
    assert load_bundle(tiny_models).path == tiny_models
    assert read_live(tiny_root) == "tiny-v1"


def test_live_pointer_moves_atomically_and_refuses_unknown_versions(tmp_path):
    root = write_tiny_bundle(tmp_path / "root")
    write_tiny_bundle(root, seed=1, version="tiny-v2")
    assert read_live(root) == "tiny-v2"
    write_live(root, "tiny-v1")
    assert load_bundle(root).version == "tiny-v1"
    assert not [p for p in root.iterdir() if p.name.startswith(".LIVE")]  # no temporary file left
    with pytest.raises(BundleError, match="no bundle 'nope'"):
        write_live(root, "nope")
    (root / LIVE_FILE).write_text("../elsewhere\n")
    with pytest.raises(BundleError, match="not a bundle version"):
        load_bundle(root)


def test_root_without_live_or_with_a_dangling_live_is_a_clear_error(tmp_path, tiny_models):
    root = tmp_path / "root"
    shutil.copytree(tiny_models, root / BUNDLES_DIR / "v1")
    with pytest.raises(BundleError, match="no LIVE file names the live one"):
        load_bundle(root)
    (root / LIVE_FILE).write_text("v2\n")
    with pytest.raises(BundleError, match="names bundle 'v2'"):
        load_bundle(root)
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "missing")


def test_pre_bundle_models_root_still_loads_with_a_deprecation_warning(tmp_path):
    legacy = write_tiny_checkpoints(tmp_path / "legacy")
    with pytest.warns(FutureWarning, match="deprecated"):
        pipe = InspectionPipeline.from_dir(legacy)
    assert pipe.bundle_version == "legacy" and pipe.threshold == 0.5
    assert pipe.router.min_denoise_sigma == 0 and pipe.config.max_noise_sigma > 0


def _checkpoints_trained_with(root: Path, train_config: dict) -> Path:
    """Tiny checkpoints whose defect model's meta says it was trained with ``train_config``."""
    parts = write_tiny_checkpoints(root)
    meta_file = parts / "defect" / "meta.json"
    meta_file.write_text(json.dumps({**json.loads(meta_file.read_text()), "train_config": train_config}))
    return parts


def test_pre_bundle_models_root_is_routed_as_its_defect_model_was_trained(tmp_path):
    legacy = _checkpoints_trained_with(
        tmp_path / "legacy", {"noise_types": ["gaussian"], "min_denoise_sigma": 25}
    )
    with pytest.warns(FutureWarning, match="deprecated"):
        pipe = InspectionPipeline.from_dir(legacy)
    assert pipe.router.min_denoise_sigma == 25 and pipe.config.max_noise_sigma > 0


def test_bundle_policy_sets_threshold_and_review_band(tmp_path, tiny_models, casting_photo):
    strict = InspectionPipeline.from_dir(_copy_with_policy(tiny_models, tmp_path / "strict", threshold=0.0))
    assert strict.inspect(casting_photo).verdict == "defective"
    unsure = InspectionPipeline.from_dir(
        _copy_with_policy(tiny_models, tmp_path / "b", review_band=[0.0, 1.0])
    )
    result = unsure.inspect(casting_photo)
    assert (result.verdict, result.review_reason) == ("review", "uncertain")
    assert (
        result.model_versions["bundle"] == "tiny-v1"
    )  # the version inside pipeline.json, not the folder name


def test_review_verdict_reaches_the_score_csv(tmp_path, tiny_models, casting_photo):
    import cv2

    bundle = _copy_with_policy(tiny_models, tmp_path / "review", review_band=[0.0, 1.0])
    photo = tmp_path / "part.png"
    cv2.imwrite(str(photo), casting_photo)
    out = tmp_path / "out.csv"
    assert main(["score", str(photo), "--models", str(bundle), "--no-db", "--out", str(out)]) == 0
    (row,) = list(csv.DictReader(out.open()))
    assert (row["verdict"], row["review_reason"], row["kind"]) == ("review", "uncertain", "")


def test_bad_policy_in_pipeline_json_is_refused(tmp_path, tiny_models):
    with pytest.raises(BundleError, match="unknown policy settings"):
        load_bundle(_copy_with_policy(tiny_models, tmp_path / "x", loosen_gate=True))
    with pytest.raises(BundleError, match="review_band"):
        load_bundle(_copy_with_policy(tiny_models, tmp_path / "y", review_band=[0.9, 0.1]))
    edited = _copy_with_policy(tiny_models, tmp_path / "z")
    spec = json.loads((edited / PIPELINE_FILE).read_text())
    spec["routing"]["min_confidense"] = 0.5
    (edited / PIPELINE_FILE).write_text(json.dumps(spec))
    with pytest.raises(BundleError, match="unknown routing settings"):
        load_bundle(edited)
    del spec["routing"]["min_confidense"]
    spec["preprocessing"]["std"] = 0.5
    (edited / PIPELINE_FILE).write_text(json.dumps(spec))
    with pytest.raises(BundleError, match="differs from the defect model's own"):
        InspectionPipeline.from_dir(edited)


def test_policy_verdicts():
    policy = VerdictPolicy(threshold=0.5, review_band=(0.3, 0.7))
    assert [policy.verdict(p)[0] for p in (0.1, 0.3, 0.69, 0.7, 0.95)] == [
        "ok",
        "review",
        "review",
        "defective",
        "defective",
    ]
    assert VerdictPolicy(threshold=0.5).verdict(0.5) == ("defective", "")


def test_write_bundle_copies_checkpoints_and_writes_card(tmp_path):
    parts = write_tiny_checkpoints(tmp_path / "parts")
    bundle = write_bundle(
        tmp_path / "v7",
        {t: parts / t for t in ("noise", "denoiser", "defect")},
        card={"parent": "v6", "commands": ["inspection retrain ..."], "synthetic_only": True},
    )
    assert bundle.version == "v7" and bundle.parent == "v6"
    assert (bundle.path / "defect" / "weights.safetensors").is_file()
    card = (bundle.path / "card.md").read_text()
    assert "Trained on synthetic data only" in card and "inspection retrain ..." in card and "v6" in card
    assert json.loads((bundle.path / "card.json").read_text())["models"]["defect"]["architecture"]
    with pytest.raises(BundleError, match="already exists"):
        write_bundle(tmp_path / "v7", {t: parts / t for t in ("noise", "defect")})
    with pytest.raises(BundleError, match="needs a defect model"):
        write_bundle(tmp_path / "v8", {"noise": parts / "noise"})


def test_shipped_defaults_are_a_synthetic_only_bundle(shipped_models):
    bundle = load_bundle()
    assert bundle.path == shipped_models and not bundle.legacy
    assert bundle.card["synthetic_only"] is True
    assert "Trained on synthetic data only" in (shipped_models / "card.md").read_text()


def test_bundle_denoises_sensor_noise_only_for_a_defect_model_that_learned_camera_noise(tmp_path):
    parts = write_tiny_checkpoints(tmp_path / "parts")
    plain = write_bundle(tmp_path / "v1", {t: parts / t for t in ("noise", "denoiser", "defect")})
    assert plain.routing["max_signal_dependence"] > 0 and plain.routing["max_noise_sigma"] > 0
    meta_file = parts / "defect" / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "train_config": {"noise_types": ["camera"], "noise_aug": 0.5}}))
    camera = write_bundle(tmp_path / "v2", {t: parts / t for t in ("noise", "denoiser", "defect")})
    assert camera.routing["max_signal_dependence"] == 0 and camera.routing["max_noise_sigma"] == 0
    assert camera.routing["routes"] == plain.routing["routes"]
    assert (
        "min_denoise_sigma" not in plain.routing | camera.routing
    )  # no gate: loadable by code from before it


def test_bundle_gates_the_autoencoder_as_its_defect_model_was_trained(tmp_path):
    parts = _checkpoints_trained_with(
        tmp_path / "parts", {"noise_types": ["camera"], "min_denoise_sigma": 25.0}
    )
    bundle = write_bundle(tmp_path / "v1", {t: parts / t for t in ("noise", "denoiser", "defect")})
    assert bundle.routing["min_denoise_sigma"] == 25.0
    assert InspectionPipeline.from_dir(bundle.path).router.min_denoise_sigma == 25.0


def test_write_bundle_refuses_swapped_checkpoints_and_without_a_denoiser_judges_gaussian_undenoised(
    tmp_path, casting_photo
):
    parts = write_tiny_checkpoints(tmp_path / "parts")
    with pytest.raises(BundleError, match="is a defect model, not a noise model"):
        write_bundle(tmp_path / "swapped", {"noise": parts / "defect", "defect": parts / "noise"})
    with pytest.raises(BundleError, match="no denoiser was given"):
        write_bundle(
            tmp_path / "routed", {"noise": parts / "noise", "defect": parts / "defect"},
            routing={"routes": {"gaussian": "autoencoder"}},
        )  # fmt: skip
    assert not (tmp_path / "swapped").exists() and not (tmp_path / "routed").exists()
    bare = write_bundle(tmp_path / "bare", {"noise": parts / "noise", "defect": parts / "defect"})
    assert (
        bare.routing["routes"]["gaussian"] == "identity"
        and "autoencoder" not in bare.routing["routes"].values()
    )
    pipe = InspectionPipeline.from_dir(bare.path)
    try:
        assert pipe.inspect(casting_photo).verdict in ("ok", "defective", "review")
    finally:
        pipe.close()
