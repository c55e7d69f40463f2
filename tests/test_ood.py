"""The out-of-distribution check: fitting, scoring, the bundle file, the verdict policy and the station warning."""

import shutil

import numpy as np
import pytest

from inspection.bundle import BUNDLES_DIR, VerdictPolicy, load_bundle
from inspection.cli import main
from inspection.data import synth_casting
from inspection.ood import OOD_FILE, WARN_MIN_PHOTOS, OodModel, fit_ood, station_warning
from inspection.pipeline import InspectionPipeline
from inspection.products import synth_part


def gaussian_features(rng, n, d=24, shift=0.0):
    basis = np.linspace(1.0, 0.1, d)
    return rng.normal(0, 1, (n, d)) * basis + shift


def test_fit_flags_about_one_percent_in_range_and_a_shift_almost_always():
    rng = np.random.default_rng(0)
    model = fit_ood(gaussian_features(rng, 2000))
    assert model.meta["held_out_flagged"] <= 0.02 and model.components.shape[1] == 24
    in_range = (model.score(gaussian_features(rng, 2000)) > 1).mean()
    assert in_range < 0.03
    assert (model.score(gaussian_features(rng, 500, shift=1.0)) > 1).mean() > 0.95
    novel = gaussian_features(rng, 500)
    novel[:, -1] += 1.5  # a direction the training features barely vary along
    assert (model.score(novel) > 1).mean() > 0.9


def test_groups_keep_one_photos_rows_on_one_side():
    rng = np.random.default_rng(1)
    feats = gaussian_features(rng, 400)
    model = fit_ood(feats, groups=np.repeat(np.arange(200), 2))
    assert model.meta["n_held_out"] % 2 == 0 and model.meta["n_fit"] + model.meta["n_held_out"] == 400


def test_too_few_photos_are_refused():
    with pytest.raises(ValueError, match="at least 20"):
        fit_ood(np.zeros((10, 4)))


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    model = fit_ood(gaussian_features(rng, 300))
    model.save(tmp_path / OOD_FILE)
    again = OodModel.load(tmp_path / OOD_FILE)
    probe = gaussian_features(rng, 10, shift=0.5)
    assert np.allclose(again.score(probe), model.score(probe)) and again.meta == model.meta


def test_policy_sends_flagged_photos_to_review_only_when_asked():
    assert VerdictPolicy(threshold=0.5).verdict(0.9, ood=True) == ("defective", "")
    assert VerdictPolicy(threshold=0.5, review_ood=True).verdict(0.9, ood=True) == ("review", "ood")
    assert VerdictPolicy(threshold=0.5, review_ood=True).verdict(0.1, ood=False) == ("ok", "")


def test_station_warning_needs_enough_photos_and_a_large_share():
    assert station_warning(5, WARN_MIN_PHOTOS - 1, {"synthetic_only": True}) is None
    assert station_warning(2, 100) is None
    text = station_warning(95, 100, {"synthetic_only": True})
    assert "synthetic data only" in text and "95%" in text and "last 100 photos" in text


def test_fit_ood_from_the_cli_then_the_pipeline_flags_other_products(
    tiny_root, synthetic_root, tmp_path, capsys
):
    bundle_dir = tmp_path / "bundle"
    shutil.copytree(tiny_root / BUNDLES_DIR / "tiny-v1", bundle_dir)
    assert main(["models", "fit-ood", str(bundle_dir), "--data", str(synthetic_root), "--review-ood"]) == 0
    assert "held-out views are flagged" in capsys.readouterr().out
    bundle = load_bundle(bundle_dir)
    assert bundle.ood_file is not None and bundle.policy.review_ood and bundle.card["ood"]["n_fit"] > 0
    assert "Out-of-distribution check" in (bundle_dir / "card.md").read_text()
    pipe = InspectionPipeline.from_bundle(bundle)
    rng = np.random.default_rng(0)
    results = pipe.inspect_batch([synth_casting(rng, 64) for _ in range(4)] + [synth_part(rng, 64, "tile")])
    assert all(r.ood_score is not None and r.ood == (r.ood_score > 1) for r in results)
    assert all((r.verdict == "review") == r.ood for r in results)
    assert all(r.review_reason == "ood" for r in results if r.ood)


def test_a_bundle_without_an_ood_model_scores_nothing(tiny_models, tmp_path):
    result = InspectionPipeline.from_dir(tiny_models).inspect(synth_casting(np.random.default_rng(0), 64))
    assert result.ood is False and result.ood_score is None


def test_fit_ood_on_a_missing_folder_is_a_clear_error(tiny_root, tmp_path, capsys):
    bundle_dir = tmp_path / "bundle"
    shutil.copytree(tiny_root / BUNDLES_DIR / "tiny-v1", bundle_dir)
    assert main(["models", "fit-ood", str(bundle_dir), "--data", str(tmp_path / "nowhere")]) == 2
    assert "inspection models fit-ood:" in capsys.readouterr().err
    assert not (bundle_dir / OOD_FILE).exists()


def test_fit_ood_refuses_the_live_bundle_unless_told(tiny_root, synthetic_root, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(tiny_root, root)
    live = root / BUNDLES_DIR / "tiny-v1"
    assert (root / "LIVE").read_text().strip() == "tiny-v1"
    assert main(["models", "fit-ood", str(live), "--data", str(synthetic_root)]) == 2
    assert "is the live bundle" in capsys.readouterr().err and not (live / OOD_FILE).exists()
    assert main(["models", "fit-ood", str(live), "--data", str(synthetic_root), "--live-ok"]) == 0
    assert (live / OOD_FILE).is_file()


def test_an_unreadable_ood_file_is_a_clear_bundle_error(tiny_root, tmp_path):
    from inspection.bundle import BundleError

    bundle_dir = tmp_path / "bundle"
    shutil.copytree(tiny_root / BUNDLES_DIR / "tiny-v1", bundle_dir)
    (bundle_dir / OOD_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(BundleError, match="fit it again"):
        InspectionPipeline.from_dir(bundle_dir)
    assert InspectionPipeline.from_bundle(load_bundle(bundle_dir), with_ood=False).ood is None
