"""The mlp: dense layers with ELUs, the most model per minute on a CPU.

Encoder: pixels -> 2h -> h -> (mu, logvar). Decoder: z -> h (decoder_layers
- 1 layers) -> 2h -> every value's parameters. Imports torch and base.py only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vaegen.recipes import GENERIC
from vaegen.training.architectures.base import Architecture, Layers, Settings


@dataclass(frozen=True)
class MLPSettings(Settings):
    hidden: int = GENERIC["hidden"]  # width of the dense layers (the outer ones are 2x this)
    # Hidden layers of the decoder, `hidden` wide, the last one 2x; four gave the best NLL in the
    # default's time budget on a CPU (docs/training.md).
    decoder_layers: int = GENERIC["decoder_layers"]

    def __post_init__(self):
        if self.decoder_layers < 1:
            raise ValueError("the decoder needs at least one hidden layer")


class MLP(Architecture):
    name = "mlp"
    Settings = MLPSettings

    @classmethod
    def encoder(cls, cfg):
        h, d = cfg.settings.hidden, cfg.latent_dim
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(cfg.pixels, 2 * h), nn.ELU(),
            nn.Linear(2 * h, h), nn.ELU(),
            nn.Linear(h, 2 * d),
        )

    @classmethod
    def decoder(cls, cfg):
        h, d = cfg.settings.hidden, cfg.latent_dim
        widths = [d] + [h] * (cfg.settings.decoder_layers - 1) + [2 * h]  # 2 layers: d-h-2h-pixels
        layers = []
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), nn.ELU()]
        output = nn.Linear(2 * h, cfg.outputs_per_value * cfg.pixels)
        return MLPDecoder(*layers, output, output=output, shape=(cfg.outputs_per_value * cfg.channels,
                                                                  cfg.height, cfg.width))

    @classmethod
    def output_bias(cls, start):
        return start.reshape(-1)  # one bias per value and parameter


class MLPDecoder(Layers):
    """The dense layers, then one reshape to (B, outputs_per_value * C, H, W)."""

    def __init__(self, *layers: nn.Module, output: nn.Module, shape: tuple[int, int, int]):
        super().__init__(*layers, output=output)
        self.shape = shape

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # One constant-shape Reshape in ONNX, where nn.Unflatten exports a
        # Shape/Slice/Concat chain that costs time at small batch sizes.
        return super().forward(z).reshape(-1, *self.shape)
