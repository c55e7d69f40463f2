import pytest
import torch
from torch import nn

from inspection.models import create_model, list_models, model_task, register_model
from inspection.spectrum import FEATURE_CHANNELS

TINY = {
    "test_freq_vgg": ("noise", (2, FEATURE_CHANNELS, 32, 32), (2, 4)),
    "test_unet_ae": ("denoiser", (2, 1, 37, 45), (2, 1, 37, 45)),
    "test_defect_cnn": ("defect", (2, 1, 32, 32), (2, 1)),
}


def test_registry_lists_every_family():
    names = list_models()
    for required in [
        "freq_vgg16",
        "freq_vgg_small",
        "ae_reference",
        "unet_ae_small",
        "defect_vgg16",
        "defect_inception_v3",
        "defect_cnn_small",
        "defect_cnn_medium",
        *TINY,
    ]:
        assert required in names
    assert list_models("test_*") == sorted(TINY)
    assert set(list_models(task="noise")) == {"freq_vgg16", "freq_vgg_small", "test_freq_vgg"}


def test_each_registered_model_has_a_tiny_variant_per_task():
    for task in ("noise", "denoiser", "defect"):
        assert any(n.startswith("test_") for n in list_models(task=task))
        assert all(model_task(n) == task for n in list_models(task=task))


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_forward(name):
    task, in_shape, out_shape = TINY[name]
    torch.manual_seed(0)
    model = create_model(name).eval()
    with torch.no_grad():
        y = model(torch.rand(in_shape))
    assert y.shape == out_shape and torch.isfinite(y).all()
    assert model_task(name) == task


def test_autoencoder_runs_on_any_size_and_odd_sizes():
    model = create_model("test_unet_ae").eval()
    for shape in [(1, 1, 31, 64), (1, 1, 300, 300), (3, 1, 17, 19)]:
        with torch.no_grad():
            assert model(torch.rand(shape)).shape == shape


def test_duplicate_and_unknown_names_are_refused():
    with pytest.raises(ValueError, match="already registered"):

        @register_model("noise")
        def test_freq_vgg() -> nn.Module:  # noqa: F811
            return nn.Identity()

    with pytest.raises(KeyError, match="unknown model 'nope'"):
        create_model("nope")
