"""Registered model variants for the three tasks: noise type, denoising and defect classification.

Every builder is keyword-only and returns a plain ``nn.Module``. timm backbones are built with
``pretrained=False`` by default (no download at run time); pass ``pretrained=True`` where weights
are available locally in timm's cache.
"""

from __future__ import annotations

import timm
from torch import nn

from inspection import NOISE_TYPES
from inspection.models.layers import CompactVGG, SkipAutoencoder
from inspection.models.registry import register_model
from inspection.spectrum import FEATURE_CHANNELS

# --- noise classifiers: input is the (spectrum, residual) feature stack ------------------------------


@register_model("noise")
def freq_vgg16(
    *, in_chans: int = 1, num_classes: int = len(NOISE_TYPES), pretrained: bool = False
) -> nn.Module:
    """timm VGG16 on the log spectrum, adapted to ``in_chans`` channels and 4 noise classes."""
    return timm.create_model("vgg16", pretrained=pretrained, in_chans=in_chans, num_classes=num_classes)


@register_model("noise")
def freq_vgg_small(*, in_chans: int = FEATURE_CHANNELS, num_classes: int = len(NOISE_TYPES)) -> nn.Module:
    """Compact VGG-style noise classifier for CPU speed (64x64 input)."""
    return CompactVGG(in_chans=in_chans, num_classes=num_classes, widths=(16, 32, 64, 96), convs_per_stage=1)


@register_model("noise")
def test_freq_vgg(*, in_chans: int = FEATURE_CHANNELS, num_classes: int = len(NOISE_TYPES)) -> nn.Module:
    """Tiny variant for tests."""
    return CompactVGG(in_chans=in_chans, num_classes=num_classes, widths=(4, 8), convs_per_stage=1)


# --- denoising autoencoders: input and output are [0, 1] grayscale --------------------------------------


@register_model("denoiser")
def ae_reference(*, in_chans: int = 1) -> nn.Module:
    """Autoencoder shaped like the reference study's: three strided stages, sigmoid output, no residual."""
    return SkipAutoencoder(in_chans=in_chans, widths=(32, 64, 128, 256), residual=False)


@register_model("denoiser")
def unet_ae_small(*, in_chans: int = 1) -> nn.Module:
    """Small residual skip autoencoder for CPU speed."""
    return SkipAutoencoder(in_chans=in_chans, widths=(16, 32, 48), residual=True)


@register_model("denoiser")
def unet_ae_fast(*, in_chans: int = 1) -> nn.Module:
    """Residual skip autoencoder on 2x2-unshuffled input: the CPU-speed default.

    Paper: FFDNet, Zhang et al. 2018 (arXiv 1710.04026), for working on downsampled sub-images.
    """
    return SkipAutoencoder(in_chans=in_chans, widths=(24, 48, 64), residual=True, unshuffle=2)


@register_model("denoiser")
def unet_ae_lite(*, in_chans: int = 1) -> nn.Module:
    """Narrower ``unet_ae_fast``: half the multiply-adds for about 0.9 dB (the casting recipe's choice)."""
    return SkipAutoencoder(in_chans=in_chans, widths=(16, 32, 64), residual=True, unshuffle=2)


@register_model("denoiser")
def test_unet_ae(*, in_chans: int = 1) -> nn.Module:
    """Tiny variant for tests."""
    return SkipAutoencoder(in_chans=in_chans, widths=(4, 8), residual=True)


# --- defect classifiers: one logit, sigmoid gives P(defective) -------------------------------------------


@register_model("defect")
def defect_vgg16(*, in_chans: int = 1, pretrained: bool = False) -> nn.Module:
    """timm VGG16 with 1-channel input and one defect logit."""
    return timm.create_model("vgg16", pretrained=pretrained, in_chans=in_chans, num_classes=1)


@register_model("defect")
def defect_inception_v3(*, in_chans: int = 1, pretrained: bool = False) -> nn.Module:
    """timm InceptionV3 with 1-channel input and one defect logit (input 299, at least 75)."""
    return timm.create_model("inception_v3", pretrained=pretrained, in_chans=in_chans, num_classes=1)


@register_model("defect")
def defect_cnn_small(*, in_chans: int = 1) -> nn.Module:
    """Compact CNN defect classifier for CPU speed (128x128 input)."""
    return CompactVGG(in_chans=in_chans, num_classes=1, widths=(16, 32, 64, 96, 128), convs_per_stage=1)


@register_model("defect")
def test_defect_cnn(*, in_chans: int = 1) -> nn.Module:
    """Tiny variant for tests."""
    return CompactVGG(in_chans=in_chans, num_classes=1, widths=(4, 8), convs_per_stage=1)
