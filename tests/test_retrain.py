"""``inspection retrain``: a candidate bundle fine-tuned from a parent bundle."""

from __future__ import annotations

import json

from inspection.bundle import load_bundle
from inspection.cli import main
from inspection.models.checkpoint import read_meta


def test_retrain_writes_a_candidate_bundle_that_keeps_its_parents_router(
    tmp_path, tiny_root, synthetic_root, capsys
):
    out = tmp_path / "candidates" / "v2"
    argv = ["retrain", "--from", str(tiny_root), "--data", str(synthetic_root), "--out", str(out)]
    assert main([*argv, "--epochs", "1", "--quiet", "--threads", "1"]) == 0
    parent, candidate = load_bundle(tiny_root), load_bundle(out)
    assert candidate.version == "v2" and candidate.parent == parent.version
    assert candidate.routing == parent.routing
    for task in ("noise", "denoiser"):  # the router is the parent's, byte for byte
        assert (
            read_meta(candidate.path / task)["weights_sha256"]
            == read_meta(parent.path / task)["weights_sha256"]
        )
    defect = read_meta(candidate.path / "defect")
    assert candidate.policy.threshold == defect["threshold"]
    assert defect["train_config"]["epochs"] == 1  # the flag beat the fine-tune default
    assert defect["parent"]["weights_sha256"] == read_meta(parent.path / "defect")["weights_sha256"]
    card = json.loads((out / "card.json").read_text())
    assert card["commands"][0].startswith("inspection retrain --from")
    assert card["data"]["new"]["root"] == str(synthetic_root.resolve())
    assert not (out.parent / ".v2.training").exists()  # the work folder goes once the bundle is written
    assert json.loads(capsys.readouterr().out)["bundle"] == str(out)
    assert main([*argv, "--epochs", "1", "--quiet"]) == 2  # never over an existing candidate
    assert "already exists" in capsys.readouterr().err


def test_a_fine_tune_inherits_how_the_parent_trained_not_where_or_on_what(tmp_path, tiny_models):
    import shutil

    from inspection.retrain import recipe

    parent = tmp_path / "parent"
    shutil.copytree(tiny_models, parent)
    meta_path = parent / "defect" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["train_config"] = {
        **{"batch_size": 8, "noise_aug": 0.3, "miss_cost": 5.0, "epochs": 40, "lr": 0.01, "threads": 7},
        **{"device": "cuda", "kinds_only": True, "mlflow_uri": "https://u:***@h", "max_images": 10},
        **{"time_budget_s": 60.0, "data": "/old", "arch": "defect_cnn_small"},
    }
    meta_path.write_text(json.dumps(meta))
    settings = recipe(load_bundle(parent), {"epochs": 2})
    assert settings == {"batch_size": 8, "noise_aug": 0.3, "miss_cost": 5.0, "epochs": 2, "lr": 1e-3}
    spec_path = parent / "pipeline.json"
    spec = json.loads(spec_path.read_text())
    spec_path.write_text(json.dumps({**spec, "routing": {**spec["routing"], "min_denoise_sigma": 25.0}}))
    assert (
        recipe(load_bundle(parent), {"epochs": 2})["min_denoise_sigma"] == 25.0
    )  # the gate its routing keeps
