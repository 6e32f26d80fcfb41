"""The architectures by name, with the settings each one takes, in the order
the model card shows them: what the light side (the CLI's --arch, the card)
knows of vaegen.training.architectures without importing torch. A test holds
the two together. Standard library only.
"""

from __future__ import annotations

ARCH_SETTINGS: dict[str, tuple[str, ...]] = {
    "mlp": ("hidden", "decoder_layers"),
    "conv": ("hidden", "conv_channels", "conv_blocks"),
    "resnet": ("res_channels", "res_blocks"),
}
ARCHS = tuple(ARCH_SETTINGS)
# Every architecture's settings, each once, in the order above: the model options a run names.
SETTING_NAMES = tuple(dict.fromkeys(name for own in ARCH_SETTINGS.values() for name in own))
