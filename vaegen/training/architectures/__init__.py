"""The architectures a VAE can be built with, by name.

    base.py  Architecture (what each one declares and builds), its Settings, Layers
    mlp.py   dense layers: hidden, decoder_layers
    conv.py  strided convolutions: hidden, conv_channels, conv_blocks
    resnet.py  residual convolutions by levels, for colour and larger images: res_channels, res_blocks

A new architecture is a new file with an Architecture subclass and its
Settings, one line in ARCHITECTURES below, and its name and settings in
vaegen.archs, which the light commands read without torch (docs/extending.md).
Imports torch.
"""

from __future__ import annotations

from vaegen.errors import ArgumentError
from vaegen.training.architectures.base import Architecture, Layers, Settings
from vaegen.training.architectures.conv import Conv
from vaegen.training.architectures.mlp import MLP
from vaegen.training.architectures.resnet import Resnet

__all__ = ["ARCHITECTURES", "Architecture", "Layers", "Settings", "get_architecture"]

ARCHITECTURES: dict[str, type[Architecture]] = {arch.name: arch for arch in (MLP, Conv, Resnet)}


def get_architecture(name: str) -> type[Architecture]:
    """The registered architecture called `name`; an ArgumentError names the known ones."""
    try:
        return ARCHITECTURES[name]
    except (KeyError, TypeError):
        raise ArgumentError(f"unknown arch {name!r}; choose one of {', '.join(ARCHITECTURES)}",
                            argument="arch") from None
