"""Every default of a training run, in one place: each named dataset's
recipe (what `vaegen train --dataset NAME` runs when an option is not
given), the settings no recipe changes, and the prior fit that ends a run.

Each recipe was chosen by measuring quality against wall time on a 2-core
CPU (docs/training.md); where a GPU changes the winner, the dataset has a GPU
recipe too, used when the run trains on CUDA. Image folders take the generic
recipe. TrainConfig, ModelConfig, the prior fit's PriorSettings, the library's
`vaegen.train` and the CLI's help all read their defaults here. Standard
library only: the CLI reads it for --help without importing torch or numpy.
"""

from __future__ import annotations

# MNIST's recipe, and every dataset's unless it has its own: the best NLL per
# minute measured (88 nats in about 3 minutes). The mlp decoder's four layers:
# in this time budget two gave 89.30 nats, three 88.02, four 87.43, five 87.95
# (docs/training.md).
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

# The settings no recipe changes: every run's, whatever its dataset.
COMMON = {"lr_schedule": "cosine", "iw_samples": 1, "iw_estimator": "iwae", "seed": 0, "device": "auto",
          "precision": "fp32", "threads": None, "image_size": 28, "channels": 1}

# The prior fit that ends every `vaegen train` (and `vaegen fit-prior`'s defaults), sized to take a tenth of
# the default run or less (docs/samples.md); the shipped models' priors are fitted larger by tools/ship.py
# (100 components over every code, 10 a class). Class mixtures are refitted without the codes their own
# class explains with p < purity: on the default run's model (10,000 draws judged), 0.9 over 1,000 codes a
# class gave label agreement 96.4%; 0.99 over 2,000, 97.6% at a lower FD (6.2 against 7.0), in about the
# same time.
PRIOR = {"components": 20, "class_components": 5, "max_codes": 10_000, "class_max_codes": 2_000, "purity": 0.99,
         "covariance_type": "full", "codes": "means", "seed": 0}


def recipe(dataset: str, gpu: bool = False) -> dict:
    """The recipe's settings for `dataset` (a name, or an image folder's path),
    on a GPU where `gpu`."""
    return {**GENERIC, **RECIPES.get(dataset, {}), **(GPU_RECIPES.get(dataset, {}) if gpu else {})}


def run_settings(dataset: str, given: dict, gpu: bool) -> tuple[dict, bool]:
    """Every setting of a run of `dataset`: those `given` (None counts as not
    given), the others from the dataset's recipe over COMMON; and whether its
    GPU recipe was taken. A run on a GPU (`gpu`) takes the GPU recipe unless
    it asks for another arch (--decoder-layers alone asks for the mlp): a GPU
    recipe is for its own arch."""
    given = {k: v for k, v in given.items() if v is not None}
    asked = given.get("arch") or ("mlp" if "decoder_layers" in given else None)
    own = recipe(dataset, gpu=True)
    on_gpu = gpu and dataset in GPU_RECIPES and asked in (None, own["arch"])
    settings = {**COMMON, **(own if on_gpu else recipe(dataset)), **given}
    if settings["arch"] != "mlp" and "decoder_layers" not in given:
        settings["decoder_layers"] = None  # the recipes' decoder depth is the mlp's
    return settings, on_gpu


def default_note(key: str) -> str:
    """The `[default: ...]` of an option whose default depends on the dataset (and the device)."""
    own = [f"{name}: {settings[key]}" for name, settings in RECIPES.items() if key in settings]
    own += [f"{name} on a GPU: {settings[key]}" for name, settings in GPU_RECIPES.items() if key in settings]
    return f"[default: {GENERIC[key]}" + "".join(f"; {o}" for o in own) + "]"
