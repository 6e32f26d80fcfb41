"""The training settings (TrainConfig) and the resume policy: which settings a
`train --resume` takes from the saved run and which it may change.

TrainConfig is saved in every checkpoint as a dict and read back with
`from_dict`. Imports the model's config only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from vaegen.errors import TrainingError
from vaegen.training.model import ModelConfig


@dataclass
class TrainConfig:
    dataset: str = "mnist"
    data_dir: str | None = None
    epochs: int = 26
    batch_size: int = 256
    lr: float = 3e-3
    lr_schedule: str = "cosine"  # cosine (to lr/100) or constant
    beta: float = 1.0
    kl_warmup: float = 2.0  # epochs over which the KL weight ramps from 0 to beta
    binarize: bool | None = None  # None: as vaegen.data.likelihood_for decides (on for mnist)
    iw_samples: int = 1  # >1 trains on the importance-weighted bound (Burda et al.)
    iw_estimator: str = "iwae"  # the encoder's gradient of that bound: iwae, or dreg (Tucker et al. 2018)
    schedule_start: int = 0  # the epoch the learning-rate schedule starts from (a resumed fine-tuning stage)
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # fp32, or bf16 autocast on CUDA
    threads: int | None = None
    command: str = ""  # the exact command line, for the model card

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# The train options that name a model setting (option name -> ModelConfig field):
# a resume may repeat them but not change them.
MODEL_OPTIONS = {"arch": "arch", "latent_dim": "latent_dim", "hidden": "hidden", "decoder_layers": "decoder_layers",
                 "conv_channels": "conv_channels", "conv_blocks": "conv_blocks",
                 "image_size": "height", "channels": "channels", "likelihood": "likelihood", "binarize": "likelihood"}
# What every resume takes from this command, given or not: how long and where
# to run. (`vaegen train --resume` without --epochs puts the run's own total in
# the command: an interrupted run finishes as planned, whatever today's default.)
ALWAYS_FROM_COMMAND = {"epochs", "device", "threads"}


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
