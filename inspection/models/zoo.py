"""Registered model variants for the three tasks: noise type, denoising and defect classification.

Every builder is keyword-only and returns a plain ``nn.Module``. timm backbones are built with
``pretrained=False`` by default (no download at run time); pass ``pretrained=True`` where weights
are available locally in timm's cache.
"""

from __future__ import annotations

from collections.abc import Mapping

import timm
import torch
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
def unet_ae_quarter(*, in_chans: int = 1) -> nn.Module:
    """Residual skip autoencoder on 4x4-unshuffled input, additive skips: candidate successor of ``unet_ae_lite``.

    Working at quarter resolution (16 channels in, 75x75 for a 300x300 photo) lets every layer be 48-96 channels
    wide, which the CPU's convolutions run far more efficiently than ``unet_ae_lite``'s 16-channel half-resolution
    layers: about the same multiply-adds (0.40 G per 300x300 photo against 0.42 G) in 0.8x the time at batch 1.
    Measured on casting (issue 11): too few features per pixel at the finest scale; 27.46 dB validation PSNR after
    6 of 8 epochs against ``unet_ae_lite``'s 30.12 dB, so stopped there.
    """
    return SkipAutoencoder(in_chans=in_chans, widths=(48, 96), residual=True, unshuffle=4, add_skips=True)


@register_model("denoiser")
def unet_ae_quarter3(*, in_chans: int = 1) -> nn.Module:
    """``unet_ae_quarter`` with a third, 128-channel level at 1/16 resolution: a wider receptive field for 1.5x the
    multiply-adds (0.64 G per 300x300 photo). Not trained on casting: ``unet_ae_quarter`` showed quarter resolution
    loses too much."""
    return SkipAutoencoder(
        in_chans=in_chans, widths=(48, 96, 128), residual=True, unshuffle=4, add_skips=True
    )


@register_model("denoiser")
def unet_ae_lite_wide(*, in_chans: int = 1) -> nn.Module:
    """``unet_ae_lite`` with 24 channels at half resolution (as ``unet_ae_fast``) and additive skips.

    Adding the upsampled features to the skip instead of concatenating them halves each fusion convolution, which
    pays for the wider top level: about the multiply-adds of ``unet_ae_lite`` (0.42 G per 300x300 photo) and, on 2
    threads, its time at batch 1 (0.95-1.00x); 1.04-1.08x at batch 32, where the wider activations cost memory
    traffic. Casting, 8 epochs (issue 11): validation PSNR 30.81 dB against 30.25 dB, test split 32.75 dB against
    32.12 dB; 12 epochs (the casting recipe): 31.07 dB and 33.10 dB.
    """
    return SkipAutoencoder(in_chans=in_chans, widths=(24, 32, 64), residual=True, unshuffle=2, add_skips=True)


@register_model("denoiser")
def unet_ae_lite_wide_deep(*, in_chans: int = 1) -> nn.Module:
    """``unet_ae_lite_wide`` with a fourth level (48 then 64 channels at 1/8 and 1/16 resolution): a wider
    receptive field for 1.04x ``unet_ae_lite``'s multiply-adds (0.44 G per 300x300 photo), 1.06x its time at batch 1.
    Casting (issue 11): 0.3 dB behind ``unet_ae_lite_wide`` after 3 of 8 epochs, so stopped there."""
    return SkipAutoencoder(
        in_chans=in_chans, widths=(24, 32, 48, 64), residual=True, unshuffle=2, add_skips=True
    )


@register_model("denoiser")
def test_unet_ae(*, in_chans: int = 1) -> nn.Module:
    """Tiny variant for tests."""
    return SkipAutoencoder(in_chans=in_chans, widths=(4, 8), residual=True)


# --- defect classifiers: output 0 is the defect logit, outputs 1..num_kinds the kind logits -------------
#
# sigmoid(output 0 / T) gives P(defective), with T the temperature in the checkpoint's calibration; softmax over
# outputs 1..num_kinds gives the defect kind. ``num_kinds=0`` (the default) is the one-logit shape of every
# checkpoint written before kinds, so those keep loading.


@register_model("defect")
def defect_vgg16(*, in_chans: int = 1, num_kinds: int = 0, pretrained: bool = False) -> nn.Module:
    """timm VGG16 with 1-channel input, one defect logit and ``num_kinds`` kind logits."""
    return timm.create_model("vgg16", pretrained=pretrained, in_chans=in_chans, num_classes=1 + num_kinds)


@register_model("defect")
def defect_inception_v3(*, in_chans: int = 1, num_kinds: int = 0, pretrained: bool = False) -> nn.Module:
    """timm InceptionV3 with 1-channel input, one defect logit and ``num_kinds`` kind logits (input >= 75)."""
    return timm.create_model(
        "inception_v3", pretrained=pretrained, in_chans=in_chans, num_classes=1 + num_kinds
    )


@register_model("defect")
def defect_cnn_small(*, in_chans: int = 1, num_kinds: int = 0) -> nn.Module:
    """Compact CNN defect classifier for CPU speed (128x128 input)."""
    return CompactVGG(
        in_chans=in_chans, num_classes=1 + num_kinds, widths=(16, 32, 64, 96, 128), convs_per_stage=1
    )


@register_model("defect")
def defect_cnn_medium(*, in_chans: int = 1, num_kinds: int = 0) -> nn.Module:
    """``defect_cnn_small`` with two convolutions per stage (about 3.3x its multiply-adds)."""
    return CompactVGG(
        in_chans=in_chans, num_classes=1 + num_kinds, widths=(16, 32, 64, 96, 128), convs_per_stage=2
    )


@register_model("defect")
def test_defect_cnn(*, in_chans: int = 1, num_kinds: int = 0) -> nn.Module:
    """Tiny variant for tests."""
    return CompactVGG(in_chans=in_chans, num_classes=1 + num_kinds, widths=(4, 8), convs_per_stage=1)


def defect_head(model: nn.Module) -> tuple[str, nn.Linear]:
    """The defect model's output layer ``(name, layer)``: the last ``nn.Linear``, one row per output."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ValueError(f"{type(model).__name__} has no nn.Linear output layer")
    return found[-1]


def load_grown(model: nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Load ``state`` from a defect model with fewer outputs into ``model``; returns the grown tensors' names.

    Every tensor must match in shape, except the output layer's weight and bias, which may have fewer rows:
    those rows are copied to the top (output 0, then the old kinds in their order) and the new kinds' rows keep
    their fresh initialisation. Anything else that differs is an error: the architectures do not match.
    """
    head, layer = defect_head(model)
    grown_names = {f"{head}.weight", f"{head}.bias"}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
    merged, grown = {}, []
    for name, new in own.items():
        old = state[name]
        if old.shape == new.shape:
            merged[name] = old
        elif name in grown_names and old.shape[1:] == new.shape[1:] and old.shape[0] < new.shape[0]:
            t = new.clone()
            t[: old.shape[0]] = old
            merged[name] = t
            grown.append(name)
        else:
            raise ValueError(
                f"weights do not fit: {name} is {tuple(old.shape)}, the model wants {tuple(new.shape)}"
            )
    model.load_state_dict(merged, strict=True)
    return grown
