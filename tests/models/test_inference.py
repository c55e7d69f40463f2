import pytest
import torch
from torch import nn

from inspection.models import create_model
from inspection.models.inference import channels_last, for_inference


def _with_trained_batchnorm(model: nn.Module) -> nn.Module:
    """Give every BatchNorm non-trivial statistics, as training would, so folding has work to do."""
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
    return model.eval()


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("freq_vgg_small", (3, 2, 64, 64)),
        ("defect_cnn_small", (3, 1, 128, 128)),
        ("unet_ae_lite", (2, 1, 70, 90)),
        ("test_defect_cnn", (2, 1, 32, 32)),
    ],
)
def test_inference_copy_matches_the_trained_model(name, shape):
    model = _with_trained_batchnorm(create_model(name))
    fast = for_inference(model)
    x = torch.rand(shape)
    with torch.inference_mode():
        expected, got = model(x), fast(channels_last(x))
    assert torch.allclose(expected, got, atol=1e-4, rtol=1e-4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())


def test_inference_copy_leaves_the_original_trainable():
    model = _with_trained_batchnorm(create_model("test_defect_cnn")).train()
    for_inference(model)
    assert model.training
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 2


def test_conv_of_concat_equals_conv_of_the_concatenation():
    from inspection.models.layers import conv_of_concat

    torch.manual_seed(0)
    conv = nn.Conv2d(10, 6, 3, 1, 1)
    a, b = torch.rand(2, 4, 17, 19), torch.rand(2, 6, 17, 19)
    with torch.no_grad():
        assert torch.allclose(conv_of_concat(conv, a, b), conv(torch.cat([a, b], 1)), atol=1e-5)
