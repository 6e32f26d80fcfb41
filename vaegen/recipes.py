"""The default training recipe of each named dataset: what `vaegen train
--dataset NAME` runs when an option is not given. Each was chosen by
measuring quality against wall time on a 2-core CPU (docs/training.md);
where a GPU changes the winner, the dataset has a GPU recipe too, used when
the run trains on CUDA. Image folders take the generic recipe. Standard
library only: the CLI reads it for --help without importing torch.
"""

from __future__ import annotations

# MNIST's recipe, and every dataset's unless it has its own: the best NLL per
# minute measured (88 nats in about 3 minutes).
GENERIC = {"arch": "mlp", "latent_dim": 32, "hidden": 256, "decoder_layers": 4, "conv_channels": 32, "conv_blocks": 0,
           "epochs": 26, "batch_size": 256, "lr": 3e-3, "beta": 1.0, "kl_warmup": 2.0}

RECIPES: dict[str, dict] = {
    "mnist": {},
    # A low KL weight: samples come from the fitted prior, so informative codes cost little there. At 26
    # epochs, beta 1, 0.3 and 0.1 gave fitted-prior FD 52.9, 49.0 and 45.7 (Fashion-MNIST judge, 10,000
    # draws) for 3.50, 3.51 and 3.56 bits/dim (docs/training.md).
    "fashion-mnist": {"beta": 0.1},
}


# On a GPU the conv's convolutions cost little, and it wins by far: the shipped model's recipe, 1.8 min of
# epochs on one H200, draws at fitted-prior FD 4.06 with 95.4% class agreement (its shipped prior), where
# the CPU recipe's mlp drew at 45.7 and 92.0% (the prior `vaegen train` fits; docs/training.md).
GPU_RECIPES: dict[str, dict] = {
    "fashion-mnist": {"arch": "conv", "conv_channels": 64, "conv_blocks": 1, "latent_dim": 64, "epochs": 50,
                      "lr": 1e-3, "beta": 0.05, "kl_warmup": 5.0},
}


def recipe(dataset: str, gpu: bool = False) -> dict:
    """The recipe's settings for `dataset` (a name, or an image folder's path),
    on a GPU where `gpu`."""
    return {**GENERIC, **RECIPES.get(dataset, {}), **(GPU_RECIPES.get(dataset, {}) if gpu else {})}


def default_note(key: str) -> str:
    """The `[default: ...]` of an option whose default depends on the dataset (and the device)."""
    own = [f"{name}: {settings[key]}" for name, settings in RECIPES.items() if key in settings]
    own += [f"{name} on a GPU: {settings[key]}" for name, settings in GPU_RECIPES.items() if key in settings]
    return f"[default: {GENERIC[key]}" + "".join(f"; {o}" for o in own) + "]"
