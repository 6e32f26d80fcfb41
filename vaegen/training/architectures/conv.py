"""The conv: strided convolutions, which win on a GPU.

Encoder: two stride-2 convolutions (c, then 2c channels: H/4 x W/4), a dense
layer of `hidden`, then (mu, logvar). Decoder: the mirror image, through
transposed convolutions. `conv_blocks` adds 3x3 convolutions at each
resolution of both. Imports torch and base.py only.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from vaegen.recipes import GENERIC
from vaegen.training.architectures.base import Architecture, Layers, Settings


@dataclass(frozen=True)
class ConvSettings(Settings):
    hidden: int = GENERIC["hidden"]  # width of the dense layer between the convolutions and the latent
    conv_channels: int = GENERIC["conv_channels"]  # channels after the first stride-2 convolution
    conv_blocks: int = GENERIC["conv_blocks"]  # 3x3 convolutions (stride 1) added at each resolution; 0: none

    def __post_init__(self):
        if self.conv_blocks < 0:
            raise ValueError("--conv-blocks cannot be negative")

    def check(self, cfg):
        if cfg.height % 4 or cfg.width % 4:
            raise ValueError("the conv arch needs image sides divisible by 4")


class Conv(Architecture):
    name = "conv"
    Settings = ConvSettings
    # NHWC memory on a CPU: 1.28x faster a step (83.6 against 106.9 ms a batch of 128,
    # benchmarks/profile_step.py --arch conv --channels-last); not measured on a GPU.
    channels_last_on_cpu = True

    @classmethod
    def encoder(cls, cfg):
        s = cfg.settings
        c = s.conv_channels
        flat = 2 * c * (cfg.height // 4) * (cfg.width // 4)
        return nn.Sequential(
            nn.Conv2d(cfg.channels, c, 4, 2, 1), nn.ELU(),  # (B, c, H/2, W/2)
            *blocks(c, s.conv_blocks),
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.ELU(),  # (B, 2c, H/4, W/4)
            *blocks(2 * c, s.conv_blocks),
            nn.Flatten(),
            nn.Linear(flat, s.hidden), nn.ELU(),
            nn.Linear(s.hidden, 2 * cfg.latent_dim),
        )

    @classmethod
    def decoder(cls, cfg):
        s = cfg.settings
        c, n = s.conv_channels, s.conv_blocks
        out = cfg.outputs_per_value * cfg.channels
        # With blocks, the last upsampling keeps c channels, and 3x3 layers at full
        # resolution end in a 3x3 output layer; without, it is the output layer.
        # Built before the layers below it: a seed's initial weights follow the order layers are made.
        top = ([nn.ConvTranspose2d(c, c, 4, 2, 1), nn.ELU(), *blocks(c, n - 1), nn.Conv2d(c, out, 3, 1, 1)] if n
               else [nn.ConvTranspose2d(c, out, 4, 2, 1)])
        return Layers(
            nn.Linear(cfg.latent_dim, s.hidden), nn.ELU(),
            nn.Linear(s.hidden, 2 * c * (cfg.height // 4) * (cfg.width // 4)), nn.ELU(),
            nn.Unflatten(1, (2 * c, cfg.height // 4, cfg.width // 4)),
            *blocks(2 * c, n),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.ELU(),  # (B, c, H/2, W/2)
            *blocks(c, n),
            *top,  # (B, outputs_per_value * C, H, W)
            output=top[-1],
        )

    @classmethod
    def output_bias(cls, start):
        return start.mean(dim=(1, 2))  # one bias per output channel: the mean over the image


def blocks(channels: int, n: int) -> list[nn.Module]:
    """n 3x3 convolutions that keep the resolution and the channels, each with its ELU."""
    return [m for _ in range(n) for m in (nn.Conv2d(channels, channels, 3, 1, 1), nn.ELU())]
