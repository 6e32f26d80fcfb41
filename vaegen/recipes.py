"""Every default of a training run, in one place: each named dataset's
recipe (what `vaegen train --dataset NAME` runs when an option is not
given), the settings no recipe changes, and the prior fit that ends a run.

Each recipe was chosen by measuring quality against wall time on a 2-core
CPU (docs/training.md); where a GPU changes the winner, the dataset has a GPU
recipe too, used when the run trains on CUDA. Image folders take the generic
recipe. TrainConfig, ModelConfig, the prior fit's PriorSettings, the
calibration of the per-image scores, the library's `vaegen.train` and the
CLI's help all read their defaults here. Standard
library only: the CLI reads it for --help without importing torch or numpy.
"""

from __future__ import annotations

from vaegen.archs import ARCH_SETTINGS, SETTING_NAMES

# MNIST's recipe, and every dataset's unless it has its own: the best NLL per
# minute measured (docs/training.md, "Time to quality"; the mlp decoder's depth too).
GENERIC = {"arch": "mlp", "latent_dim": 32, "hidden": 256, "decoder_layers": 4, "conv_channels": 32, "conv_blocks": 0,
           "res_channels": "32,64,128,256", "res_blocks": 1,
           "epochs": 26, "batch_size": 256, "lr": 3e-3, "beta": 1.0, "kl_warmup": 2.0}

RECIPES: dict[str, dict] = {
    "mnist": {},
    # A low KL weight: samples come from the fitted prior, so informative codes cost little there; the
    # sharpest samples for a small loss of bits/dim, of the weights measured (docs/training.md).
    "fashion-mnist": {"beta": 0.1},
}


# Colour image folders (--channels 3), whatever their name: a narrow residual conv at 64x64, KL weight 0.1 with
# a 64-d latent (samples come from the fitted prior), and the logistic whose location is trained with one scale
# per image and channel (logistic-dual), measured on the emoji folder on 2 CPU cores against wider nets, other
# weights and latent sizes, the per-value logistic, the shared scale alone and the coupled mixture
# (docs/training.md, "Colour folders"); the whole command, export and prior fit included, within 30 minutes there.
COLOUR = {"arch": "resnet", "image_size": 64, "res_channels": "16,32,64,128", "res_blocks": 1, "latent_dim": 64,
          "beta": 0.1, "epochs": 60, "batch_size": 128, "lr": 1e-3, "kl_warmup": 2.0, "likelihood": "logistic-dual"}

# On a GPU the conv's convolutions cost little, and it wins by far: the shipped model's recipe
# (docs/training.md, "Fashion-MNIST: 8-bit images").
GPU_RECIPES: dict[str, dict] = {
    "fashion-mnist": {"arch": "conv", "conv_channels": 64, "conv_blocks": 1, "latent_dim": 64, "epochs": 50,
                      "lr": 1e-3, "beta": 0.05, "kl_warmup": 5.0},
}

# The settings no recipe changes: every run's, whatever its dataset.
COMMON = {"lr_schedule": "cosine", "iw_samples": 1, "iw_estimator": "iwae", "seed": 0, "device": "auto",
          "precision": "fp32", "threads": None, "image_size": 28, "channels": 1,
          # Image folders: no mirroring by default (it mirrors text and flags), unreadable files stop the run, and
          # transparency goes onto mid grey, which reconstructed the emoji's own pixels best (docs/data.md).
          "flip": False, "skip_bad": False, "background": 128}

# The prior fitted at the end of every `vaegen train`: sized to take a small share of the run; the shipped
# models' priors are fitted larger by tools/ship.py (100 and 10 components). The purity is the value that gave
# the best label agreement at the same cost (docs/samples.md, "The default purity").
PRIOR = {"components": 20, "class_components": 5, "max_codes": 10_000, "class_max_codes": 2_000, "purity": 0.99,
         "covariance_type": "full", "codes": "means", "seed": 0}


# A colour model's prior (a model of 3 channels, whatever its data): more components, each tighter, so that draws
# land where codes are. On the emoji default, 100 against 20 took the fitted-prior FD from 18.7 to 12.0 at the
# same fit time, its draws still further from any training code than the held-out codes are (docs/training.md,
# "The fitted prior of a colour model"). Whatever the model, fit_prior keeps every component at least as many codes as
# the latent has dimensions (a full covariance needs them), so a small folder gets fewer.
COLOUR_PRIOR = {"components": 100}


def prior_defaults(channels: int) -> dict:
    """The prior fit's settings for a model of `channels` (PRIOR; a colour model's with COLOUR_PRIOR)."""
    return {**PRIOR, **(COLOUR_PRIOR if int(channels) == 3 else {})}


# A labelled folder's judge (`vaegen judge`, vaegen.training.judge): its epochs (the emoji's judge was trained
# for 8, `make judges`), and the reference it keeps back: every 4th training image.
JUDGE = {"epochs": 15, "reference_every": 4}

# Per-image scores (vaegen.evaluation.scores, `vaegen score`), each measured (docs/ood.md): the importance
# samples per image (AUROC is the same from k=1 to 300; k=10 keeps 99.8% of flags against a second draw, at a
# tenth of k=100's time), the percentile of the held-out images' OOD scores above which an image is flagged,
# how many held-out images a prior fit calibrates the scores on (spread over the split), and the OOD score
# by default (the best of those that need no background model: AUROC 1.000 / 0.957 / 1.000 on the targets).
SCORING = {"k": 10, "flag_above": 99.0, "calibration_images": 2000, "score": "complexity+latent"}


def recipe(dataset: str, gpu: bool = False, channels: int = 1) -> dict:
    """The recipe's settings for `dataset` (a name, or an image folder's path),
    on a GPU where `gpu`; an image folder read in colour (`channels` 3) takes COLOUR."""
    own = RECIPES[dataset] if dataset in RECIPES else COLOUR if int(channels) == 3 else {}
    return {**GENERIC, **own, **(GPU_RECIPES.get(dataset, {}) if gpu else {})}


def run_settings(dataset: str, given: dict, gpu: bool) -> tuple[dict, bool]:
    """Every setting of a run of `dataset`: those `given` (None counts as not
    given), the others from the dataset's recipe over COMMON; and whether its
    GPU recipe was taken. A run on a GPU (`gpu`) takes the GPU recipe unless
    it asks for another arch (--decoder-layers alone asks for the mlp): a GPU
    recipe is for its own arch. So is the colour recipe of a folder read in
    colour (given["channels"] 3)."""
    given = {k: v for k, v in given.items() if v is not None}
    asked = given.get("arch") or _arch_implied_by(given)
    channels = given.get("channels", COMMON["channels"])
    own = recipe(dataset, gpu=True, channels=channels)
    on_gpu = gpu and dataset in GPU_RECIPES and asked in (None, own["arch"])
    base = own if on_gpu else recipe(dataset, channels=channels)
    if asked not in (None, base["arch"]) and dataset not in RECIPES:
        base = GENERIC  # the colour recipe is for its own arch, as a GPU recipe is
    settings = {**COMMON, **base, **given}
    if given.get("binarize") and "likelihood" not in given:
        settings.pop("likelihood", None)  # binarized pixels take their own likelihood, not the recipe's 8-bit one
    for key in _other_archs_settings(settings["arch"]) - set(given):
        settings[key] = None  # the recipe's value of another arch's setting: not this arch's
    return settings, on_gpu


def _other_archs_settings(arch: str) -> set[str]:
    return set(SETTING_NAMES) - set(ARCH_SETTINGS.get(arch, ()))


def _arch_implied_by(given: dict) -> str | None:
    """The one arch that takes every architecture setting given (--decoder-layers alone: the mlp), if any."""
    named = {k for k in given if any(k in own for own in ARCH_SETTINGS.values())}
    takers = [arch for arch, own in ARCH_SETTINGS.items() if named and named <= set(own)]
    return takers[0] if len(takers) == 1 else None


def default_note(key: str) -> str:
    """The `[default: ...]` of an option whose default depends on the dataset (and the device)."""
    own = [f"{name}: {settings[key]}" for name, settings in RECIPES.items() if key in settings]
    own += [f"colour folders: {COLOUR[key]}"] if key in COLOUR and COLOUR[key] != GENERIC.get(key) else []
    own += [f"{name} on a GPU: {settings[key]}" for name, settings in GPU_RECIPES.items() if key in settings]
    return f"[default: {GENERIC[key]}" + "".join(f"; {o}" for o in own) + "]"
