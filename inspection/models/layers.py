"""Plain ``nn.Module`` building blocks shared by the model families."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class CompactVGG(nn.Module):
    """A VGG-style classifier sized for CPU speed: 3x3 conv stages, max-pooling, global pooling head.

    The head concatenates global average and global max pooling: the max keeps sharp, local evidence
    (a spectral peak, a pinhole) that averaging would dilute.
    """

    def __init__(
        self,
        *,
        in_chans: int,
        num_classes: int,
        widths: tuple[int, ...],
        convs_per_stage: int = 2,
        drop: float = 0.1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_chans
        for i, w in enumerate(widths):
            if i:
                layers.append(nn.MaxPool2d(2))
            for _ in range(convs_per_stage):
                layers.append(conv_bn_relu(cin, w))
                cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(drop), nn.Linear(2 * cin, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)
        return self.head(pooled)


def conv_of_concat(conv: nn.Conv2d, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``conv(torch.cat([a, b], 1))`` as two convolutions summed: the same numbers without the copy,
    which cost a fifth of the autoencoder's CPU time in channels-last layout."""
    assert conv.groups == 1, "conv_of_concat splits input channels, which grouped convolutions do not allow"
    split = a.shape[1]
    return conv._conv_forward(a, conv.weight[:, :split], conv.bias) + conv._conv_forward(
        b, conv.weight[:, split:], None
    )


class SkipAutoencoder(nn.Module):
    """Strided-conv encoder, transposed-conv decoder, skip concatenations between matching scales.

    Runs on any image size: the input is reflect-padded to a multiple of the total stride and the output
    cropped back. ``unshuffle=2`` first folds each 2x2 block into channels and works at half resolution,
    as FFDNet does, which cuts the cost of the full-resolution layers by four. With ``residual=True`` the network predicts the noise and subtracts it, which trains
    faster and keeps fine detail (a defect edge) that a bottleneck would otherwise blur. With ``add_skips=True``
    the upsampled features are added to the skip instead of concatenated with it, which halves each fusion
    convolution (the saving ``unet_ae_lite_wide`` spends on a wider top level).

    Paper: the reference design follows arXiv 2404.10664 (denoising autoencoder with skip connections).
    """

    def __init__(
        self,
        *,
        in_chans: int = 1,
        widths: tuple[int, ...] = (16, 32, 64),
        residual: bool = True,
        unshuffle: int = 1,
        add_skips: bool = False,
    ) -> None:
        super().__init__()
        self.residual = residual
        self.unshuffle = unshuffle
        self.add_skips = add_skips
        self.stride = 2 ** (len(widths) - 1) * unshuffle
        chans = in_chans * unshuffle**2
        self.stem = nn.Sequential(nn.Conv2d(chans, widths[0], 3, 1, 1), nn.ReLU(inplace=True))
        self.down = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(widths[i], widths[i + 1], 3, 2, 1),
                nn.ReLU(inplace=True),
                nn.Conv2d(widths[i + 1], widths[i + 1], 3, 1, 1),
                nn.ReLU(inplace=True),
            )
            for i in range(len(widths) - 1)
        )
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, 2) for i in reversed(range(len(widths) - 1))
        )
        fuse_in = 1 if add_skips else 2
        self.fuse = nn.ModuleList(
            nn.Sequential(nn.Conv2d(fuse_in * widths[i], widths[i], 3, 1, 1), nn.ReLU(inplace=True))
            for i in reversed(range(len(widths) - 1))
        )
        self.out = nn.Conv2d(widths[0], chans, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.stride, (-w) % self.stride
        xp = F.pad(x, (0, pw, 0, ph), mode="reflect") if (ph or pw) else x
        skips = [self.stem(F.pixel_unshuffle(xp, self.unshuffle) if self.unshuffle > 1 else xp)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up, fuse in zip(self.up, self.fuse, strict=True):
            if self.add_skips:  # in place: the transposed convolution's backward does not need its output
                y = fuse(up(y).add_(skips.pop()))
                continue
            conv, act = cast(nn.Sequential, fuse)
            y = act(conv_of_concat(cast(nn.Conv2d, conv), up(y), skips.pop()))
        y = self.out(y)
        if self.unshuffle > 1:
            y = F.pixel_shuffle(y, self.unshuffle)
        y = xp - y if self.residual else torch.sigmoid(y)
        return y[..., :h, :w]
