"""The denoisers with additive skips (``unet_ae_lite_wide*`` at half resolution, ``unet_ae_quarter*`` at quarter)."""

import numpy as np
import pytest
import torch

from inspection.denoise import AutoencoderDenoiser
from inspection.models import create_model
from inspection.models.inference import channels_last, for_inference
from inspection.models.layers import SkipAutoencoder
from inspection.models.registry import list_models, model_task

NEW = {"unet_ae_lite_wide": 2, "unet_ae_lite_wide_deep": 2, "unet_ae_quarter": 4, "unet_ae_quarter3": 4}


@pytest.mark.parametrize("name", NEW)
def test_registered_as_denoisers(name):
    assert name in list_models(task="denoiser")
    assert model_task(name) == "denoiser"


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("shape", [(2, 1, 96, 96), (1, 1, 37, 45), (1, 1, 300, 300)])
def test_any_photo_size_comes_back_the_same_shape(name, shape):
    model = create_model(name).eval()
    with torch.inference_mode():
        assert model(torch.rand(shape)).shape == shape


@pytest.mark.parametrize("name", NEW)
def test_predicts_the_noise_so_a_silent_output_layer_is_the_identity(name):
    model = create_model(name).eval()
    assert isinstance(model, SkipAutoencoder) and model.residual and model.add_skips
    assert model.unshuffle == NEW[name]
    torch.nn.init.zeros_(model.out.weight)
    torch.nn.init.zeros_(model.out.bias)
    x = torch.rand(2, 1, 41, 53)
    with torch.inference_mode():
        assert torch.equal(model(x), x)


def test_additive_skips_halve_the_fusion_convolutions():
    cat = SkipAutoencoder(widths=(8, 16), unshuffle=2)
    add = SkipAutoencoder(widths=(8, 16), unshuffle=2, add_skips=True)
    assert cat.fuse[0][0].in_channels == 16 and add.fuse[0][0].in_channels == 8
    # The concatenating layout (every checkpoint before additive skips) keeps its parameter names and shapes.
    lite = create_model("unet_ae_lite").state_dict()
    assert lite["fuse.0.0.weight"].shape == (32, 64, 3, 3) and not create_model("unet_ae_lite").add_skips


@pytest.mark.parametrize("name", NEW)
def test_inference_copy_matches_and_runs_in_the_denoiser(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = torch.rand(2, 1, 70, 90)
    with torch.inference_mode():
        assert torch.allclose(model(x), for_inference(model)(channels_last(x)), atol=1e-5)
    photo = np.random.default_rng(0).integers(0, 256, (61, 77), dtype=np.uint8)
    out = AutoencoderDenoiser(model)(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8


@pytest.mark.parametrize("name", ["unet_ae_lite_wide", "unet_ae_lite_wide_deep"])
def test_onnx_export_matches_torch_on_any_size(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from inspection.export import export_onnx
    from inspection.models.checkpoint import Checkpoint

    torch.manual_seed(0)
    model = create_model(name).eval()
    export_onnx("denoiser", Checkpoint(model=model, meta={}, path=tmp_path), tmp_path / "d.onnx")
    session = ort.InferenceSession(str(tmp_path / "d.onnx"), providers=["CPUExecutionProvider"])
    for shape in [(1, 1, 300, 300), (3, 1, 61, 77)]:
        x = torch.rand(shape)
        with torch.inference_mode():
            expected = model(x).numpy()
        (got,) = session.run(None, {"x": x.numpy()})
        assert got.shape == shape and np.allclose(got, expected, atol=1e-4)
