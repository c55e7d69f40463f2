"""Heat maps (LayerCAM / Grad-CAM with torch hooks), their mapping back to the photo, and the pointing game."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from inspection.cli import main
from inspection.data import synth_casting
from inspection.explain import (
    Explainer,
    PointingGame,
    class_activation_map,
    explain_block,
    is_hit,
    last_conv_block,
    to_photo,
)
from inspection.models import create_model
from inspection.transforms import DefectTransform


def test_heat_map_shape_range_and_model_untouched():
    torch.manual_seed(0)
    model = create_model("test_defect_cnn").train()
    x = torch.randn(2, 1, 32, 32)
    for method in ("layercam", "gradcam"):
        cams, logits = class_activation_map(model, x, method=method)
        assert cams.shape == (2, 32, 32) and logits.shape[0] == 2
        assert cams.min() >= 0 and cams.max() <= 1 + 1e-6
    assert model.training and all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="unknown heat map method"):
        class_activation_map(model, x, method="saliency")


def test_block_keeps_an_eighth_of_the_input():
    model = create_model("defect_cnn_small")
    names = {m: n for n, m in model.named_modules()}
    assert names[last_conv_block(model)] == "features.8"  # 8 x 8 at 128 px
    assert names[explain_block(model, 128)] == "features.6"  # 16 x 16


def test_to_photo_undoes_padding():
    transform = DefectTransform(size=32, resize="pad")
    cam = np.zeros((32, 32), np.float32)
    cam[8, 28] = 1.0  # a photo 2:1 wide is scaled to 32 x 16 and padded 8 rows above and below
    heat = to_photo(cam, (50, 100), transform)
    row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    assert heat.shape == (50, 100) and row <= 3 and 84 <= col <= 92


def test_is_hit_uses_the_dilation():
    mask = np.zeros((64, 64), bool)
    mask[30:34, 30:34] = True
    assert is_hit((31, 31), mask) and is_hit((31, 40), mask, 8) and not is_hit((31, 45), mask, 8)
    game = PointingGame()
    game.add("crack", True, (31, 31), mask)
    game.add("crack", True, (0, 0), mask)
    game.add("burr", False, (0, 0), mask)  # missed by the model: not in the game
    game.add("pinholes", True, (0, 0), np.zeros_like(mask))  # nothing drawn: counted apart
    assert game.to_dict() | {"by_kind": None} == {
        "hit_rate": 0.5, "n": 2, "hits": 1, "defective": 4, "flagged_with_empty_mask": 1, "dilation_px": 8,
        "by_kind": None,
    }  # fmt: skip


def test_explainer_on_a_photo(tiny_models):
    from inspection.models.checkpoint import load_checkpoint

    explainer = Explainer.from_checkpoint(load_checkpoint(tiny_models / "defect"))
    gray = synth_casting(np.random.default_rng(1), 70, "blowhole")
    [heat] = explainer([gray])
    assert heat.heat.shape == (70, 70) and 0 <= heat.p_defective <= 1
    assert heat.heat[heat.peak] == heat.heat.max()


def test_explain_command_merges_its_section(tmp_path, tiny_models, capsys):
    data = tmp_path / "data"
    assert (
        main(["synth", "--out", str(data), "--n-train", "0", "--n-test", "12", "--size", "64", "--masks"])
        == 0
    )
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"other": {"kept": True}}))
    args = [
        "explain",
        "--data",
        str(data),
        "--models",
        str(tiny_models),
        "--results",
        str(results),
        "--quiet",
    ]
    assert main(args) == 0
    assert "pointing game" in capsys.readouterr().out
    merged = json.loads(results.read_text())
    assert merged["other"] == {"kept": True}
    section = merged["explain"]
    assert section["pointing_game"]["defective"] > 0 and section["pointing_game"]["dilation_px"] == 8
    assert section["n"] == section["pointing_game"]["n"]
    assert section["commands"][0].startswith("inspection synth --out") and "--masks" in section["commands"][0]
    assert section["commands"][1].startswith("inspection explain --data")
    with pytest.raises(SystemExit, match="--masks"):
        main(["synth", "--out", str(tmp_path / "plain"), "--n-train", "0", "--n-test", "2", "--size", "48"])
        main(["explain", "--data", str(tmp_path / "plain"), "--models", str(tiny_models), "--quiet"])
