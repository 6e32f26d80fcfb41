"""The default training recipe of each named dataset: what `vaegen train
--dataset NAME` runs when an option is not given. Each was chosen by
measuring quality against wall time on a 2-core CPU (docs/training.md);
where a GPU changes the winner, the dataset has a GPU recipe too, used when
the run trains on CUDA. Image folders take the generic recipe. Standard
library only: the CLI reads it for --help without importing torch.
"""

from __future__ import annotations

# MNIST's recipe, and every dataset's unless it has its own: the best NLL per
# minute measured (docs/training.md, "Time to quality").
GENERIC = {"arch": "mlp", "latent_dim": 32, "hidden": 256, "decoder_layers": 4, "conv_channels": 32, "conv_blocks": 0,
           "epochs": 26, "batch_size": 256, "lr": 3e-3, "beta": 1.0, "kl_warmup": 2.0}

RECIPES: dict[str, dict] = {
    "mnist": {},
    # A low KL weight: samples come from the fitted prior, so informative codes cost little there; the
    # sharpest samples for a small loss of bits/dim, of the weights measured (docs/training.md).
    "fashion-mnist": {"beta": 0.1},
}


# On a GPU the conv's convolutions cost little, and it wins by far: the shipped model's recipe
# (docs/training.md, "Fashion-MNIST: 8-bit images").
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
