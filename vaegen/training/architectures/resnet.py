"""The resnet: residual convolutions by levels, which scale with resolution
(32x32, 64x64, 128x128 and up) and carry colour.

Encoder: pixel-unshuffle (a lossless 2x downsampling that costs nothing at
full size), a 3x3 convolution, then at each level `res_blocks` residual
blocks (GroupNorm, SiLU, 3x3 convolution, twice) and a stride-2 convolution
to the next, down to a RES_GRID x RES_GRID map whatever the input size; a
dense layer to (mu, logvar). Decoder: the mirror image, upsampling by nearest
neighbour then a 3x3 convolution (no transposed convolution, so no
checkerboard), and at full size GroupNorm, SiLU and a 1x1 convolution to the
likelihood's parameters. Each level's channel count is `res_channels` (the
last repeated where the image has more levels). Plain ONNX operators only.
Imports torch and base.py only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vaegen.recipes import GENERIC
from vaegen.training.architectures.base import Architecture, Layers, Settings

RES_GRID = 4  # the side of the smallest map, where the dense layer to the latent starts


@dataclass(frozen=True)
class ResnetSettings(Settings):
    res_channels: str = GENERIC["res_channels"]  # channels at each level, from half resolution down (comma-separated)
    res_blocks: int = GENERIC["res_blocks"]  # residual blocks at each level of the encoder and of the decoder

    def __post_init__(self):
        counts = self.channels_per_level()
        if not counts or any(c < 1 for c in counts):
            raise ValueError(f"--res-channels takes positive counts separated by commas, not {self.res_channels!r}")
        if self.res_blocks < 0:
            raise ValueError("--res-blocks cannot be negative")

    def channels_per_level(self) -> list[int]:
        try:
            return [int(c) for c in str(self.res_channels).split(",") if c.strip()]
        except ValueError:
            return []

    def check(self, cfg):
        if cfg.height != cfg.width or cfg.height < 2 * RES_GRID or cfg.height & (cfg.height - 1):
            raise ValueError(f"the resnet arch needs square images whose side is a power of two, at least "
                             f"{2 * RES_GRID} (not {cfg.height}x{cfg.width})")


def levels(cfg) -> list[int]:
    """The channels of each level: one level per halving from H/2 down to RES_GRID."""
    counts = cfg.settings.channels_per_level()
    n = max(1, int(math.log2(cfg.height // RES_GRID)))
    return [counts[min(i, len(counts) - 1)] for i in range(n)]


def groups(channels: int) -> int:
    """GroupNorm groups: channels / 8, at most 32 (each group of at least 8 channels where it can be)."""
    return min(32, max(1, channels // 8))


class ResBlock(nn.Module):
    """x + conv(silu(gn(conv(silu(gn(x)))))); the last convolution starts at zero, so the block starts as the
    identity and a deep stack trains from the first step."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(groups(channels), channels), nn.SiLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1),
                                  nn.GroupNorm(groups(channels), channels), nn.SiLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1))
        nn.init.zeros_(self.body[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Centred(nn.Module):
    """[0, 1] -> [-1, 1]: inputs centred on zero, as the normalised layers expect."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * x - 1.0


class Resnet(Architecture):
    name = "resnet"
    Settings = ResnetSettings
    channels_last_on_cpu = True

    @classmethod
    def encoder(cls, cfg):
        chs, blocks = levels(cfg), cfg.settings.res_blocks
        layers: list[nn.Module] = [Centred(), nn.PixelUnshuffle(2), nn.Conv2d(4 * cfg.channels, chs[0], 3, padding=1)]
        for i, c in enumerate(chs):  # (B, c, H / 2^(i+1), W / 2^(i+1))
            layers += [ResBlock(c) for _ in range(blocks)]
            if i + 1 < len(chs):
                layers.append(nn.Conv2d(c, chs[i + 1], 3, stride=2, padding=1))
        flat = chs[-1] * RES_GRID * RES_GRID
        return nn.Sequential(*layers, nn.GroupNorm(groups(chs[-1]), chs[-1]), nn.SiLU(), nn.Flatten(),
                             nn.Linear(flat, 2 * cfg.latent_dim))

    @classmethod
    def decoder(cls, cfg):
        chs, blocks = levels(cfg), cfg.settings.res_blocks
        layers: list[nn.Module] = [nn.Linear(cfg.latent_dim, chs[-1] * RES_GRID * RES_GRID),
                                   nn.Unflatten(1, (chs[-1], RES_GRID, RES_GRID))]
        for i in reversed(range(len(chs))):
            layers += [ResBlock(chs[i]) for _ in range(blocks)]
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(chs[i], chs[max(i - 1, 0)], 3, padding=1)]
        output = nn.Conv2d(chs[0], cfg.outputs_per_value * cfg.channels, 1)
        return Layers(*layers, nn.GroupNorm(groups(chs[0]), chs[0]), nn.SiLU(), output, output=output)

    @classmethod
    def output_bias(cls, start):
        return start.mean(dim=(1, 2))  # one bias per output channel: the mean over the image
