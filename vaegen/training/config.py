"""The training settings (TrainConfig) and the resume policy: which settings a
`train --resume` takes from the saved run and which it may change.

TrainConfig is saved in every checkpoint as a dict and read back with
`from_dict`; its defaults are the recipes' (vaegen.recipes). Imports the
model's config and the recipes only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from vaegen.archs import SETTING_NAMES
from vaegen.errors import TrainingError
from vaegen.recipes import COMMON, GENERIC
from vaegen.training.model import ModelConfig


@dataclass
class TrainConfig:
    dataset: str = "mnist"
    data_dir: str | None = None
    epochs: int = GENERIC["epochs"]
    batch_size: int = GENERIC["batch_size"]
    lr: float = GENERIC["lr"]
    lr_schedule: str = COMMON["lr_schedule"]  # cosine (to lr/100) or constant
    beta: float = GENERIC["beta"]
    kl_warmup: float = GENERIC["kl_warmup"]  # epochs over which the KL weight ramps from 0 to beta
    iw_samples: int = COMMON["iw_samples"]  # >1 trains on the importance-weighted bound (Burda et al.)
    iw_estimator: str = COMMON["iw_estimator"]  # the encoder's gradient of that bound: iwae, or dreg (Tucker et al. 2018)
    schedule_start: int = 0  # the epoch the learning-rate schedule starts from (a resumed fine-tuning stage)
    seed: int = COMMON["seed"]
    device: str = COMMON["device"]
    precision: str = COMMON["precision"]  # fp32, or bf16 autocast on CUDA
    threads: int | None = COMMON["threads"]
    flip: bool = COMMON["flip"]  # mirror each training image left to right with probability 1/2
    skip_bad: bool = COMMON["skip_bad"]  # an image folder's unreadable files left out (else they stop the run)
    background: int = COMMON["background"]  # the grey level under an image folder's transparent pixels
    command: str = ""  # the exact command line, for the model card

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """A saved config; keys it no longer has (an older checkpoint's `binarize`) are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# The train options that name a model setting (option name -> ModelConfig field):
# a resume may repeat them but not change them.
MODEL_OPTIONS = {"arch": "arch", "latent_dim": "latent_dim", **{name: name for name in SETTING_NAMES},
                 "image_size": "height", "channels": "channels", "likelihood": "likelihood", "binarize": "likelihood"}
# What every resume takes from this command, given or not: how long and where
# to run. (A resume without epochs takes the run's own total: saved_settings.)
ALWAYS_FROM_COMMAND = {"epochs", "device", "threads"}
# The settings that, given to a resume, override the saved ones (model settings
# must match them); a setting not given keeps the run's own value.
OVERRIDABLE = {*MODEL_OPTIONS, "dataset", "batch_size", "lr", "lr_schedule", "beta", "kl_warmup", "iw_samples",
               "iw_estimator", "precision", "flip", "skip_bad"}


def saved_settings(state: dict) -> dict:
    """What a resume takes from its checkpoint `state` before anything else
    is decided: its total epochs (a resume without epochs finishes the run),
    its dataset, and its model's shape (image size, channels and every
    architecture setting, vaegen.archs), so that neither today's recipe nor
    this machine's device can build another model before resumed_config checks it."""
    shape, saved = ("arch", "latent_dim", "channels", *SETTING_NAMES), state["model_config"]
    run = TrainConfig.from_dict(state["train_config"])
    return {"epochs": run.epochs, "dataset": run.dataset, "image_size": saved.get("height"),
            **{k: saved[k] for k in shape if k in saved}}


def resumed_config(state: dict, cfg: TrainConfig, model_cfg: ModelConfig,
                   overrides: set[str]) -> tuple[TrainConfig, ModelConfig]:
    """The run's saved settings; training options given explicitly this time
    (`overrides`) win, and model options given explicitly must match the saved model."""
    saved_model = ModelConfig.from_dict(state["model_config"])
    saved = TrainConfig.from_dict(state["train_config"])
    changed = [name for name, field in MODEL_OPTIONS.items()
               if name in overrides and getattr(model_cfg, field) != getattr(saved_model, field)]
    if "dataset" in overrides and cfg.dataset != saved.dataset:
        changed.append("dataset")
    if changed:
        names = ", ".join("--" + n.replace("_", "-") for n in changed)
        raise TrainingError(f"{names} cannot change when resuming; the run in this folder keeps its model and data.")
    new_rate = any(getattr(cfg, name) != getattr(saved, name) for name in overrides & {"lr", "lr_schedule"})
    for name in (overrides - set(MODEL_OPTIONS) - {"dataset"}) | ALWAYS_FROM_COMMAND:
        setattr(saved, name, getattr(cfg, name))
    if new_rate:
        # A new learning rate starts a new stage: its schedule runs from here to --epochs.
        # (The same command run again after an interruption goes on with its stage.)
        # The model card shows the command of every stage, one per line.
        saved.schedule_start = state["epoch"]
        saved.command = "\n".join(c for c in (saved.command, cfg.command) if c)
    elif not saved.command:
        saved.command = cfg.command
    if cfg.data_dir:
        saved.data_dir = cfg.data_dir
    return saved, saved_model


def check_more_epochs(state: dict, cfg: TrainConfig, out: Path) -> None:
    """A resume must ask for more epochs than the run holds."""
    if state["epoch"] >= cfg.epochs:
        raise TrainingError(
            f"{out} already holds {state['epoch']} epochs; pass --epochs above {state['epoch']} to train more."
        )
