"""What every architecture declares: its settings dataclass, how it builds
the encoder and the decoder, and which decoder layer is the output layer.

Imports torch only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from vaegen.training.model import ModelConfig


@dataclass(frozen=True)
class Settings:
    """An architecture's own settings. Saved flat beside ModelConfig's shared
    fields (the checkpoint's model_config, the bundle's architecture), so
    their names are unique across architectures unless the meaning is shared."""

    def check(self, cfg: ModelConfig) -> None:
        """Raise ValueError where these settings cannot build a model of cfg's shape."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Settings:
        """This architecture's keys of a flat dict; a missing key or None takes the default."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if data.get(f.name) is not None})

    @classmethod
    def defaults(cls) -> dict:
        return {f.name: f.default for f in fields(cls)}


class Architecture:
    """Builds a VAE's two networks from a ModelConfig; registered by name in
    vaegen.training.architectures. Subclasses set `name` and `Settings` and
    implement encoder, decoder and output_bias."""

    name: ClassVar[str] = ""
    Settings: ClassVar[type[Settings]] = Settings
    channels_last_on_cpu: ClassVar[bool] = False  # trains in NHWC memory on a CPU (convolutions gain)

    @classmethod
    def encoder(cls, cfg: ModelConfig) -> nn.Module:
        """x (B, C, H, W) -> (B, 2D): mu, then logvar."""
        raise NotImplementedError

    @classmethod
    def decoder(cls, cfg: ModelConfig) -> Layers:
        """z (B, D) -> the likelihood's raw output (B, outputs_per_value * C, H, W)."""
        raise NotImplementedError

    @classmethod
    def output_bias(cls, start: torch.Tensor) -> torch.Tensor:
        """The bias of the decoder's output layer that starts it at `start`, a
        raw decoder output (outputs_per_value * C, H, W)."""
        raise NotImplementedError


class Layers(nn.Sequential):
    """An nn.Sequential that names its output layer, `output`: the layer
    whose bias starts the decoder at the data's mean image. The name is a
    plain reference, not a second registration, so the state-dict keys stay
    the layers' positions (the names that saved checkpoints and bundles hold)."""

    def __init__(self, *layers: nn.Module, output: nn.Module):
        super().__init__(*layers)
        object.__setattr__(self, "output", output)

