"""The checkpoint format: what checkpoint.pt holds, how it is written, read
back and turned into a model again. The training loop and the exporter both
use it.

A checkpoint is a plain dict of tensors, numbers, strings and lists (model
and optimizer state, epoch, RNG states, the two configs as dicts, the
per-epoch history), so torch.load(weights_only=True) reads it without
unpickling any object. Imports torch and the model only.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch

from vaegen.errors import TrainingError
from vaegen.fileio import atomic_path
from vaegen.training.model import VAE, ModelConfig

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = 2  # 2: every setting is saved (the likelihood among them); earlier formats are refused


def checkpoint_state(*, model: VAE, optimizer: torch.optim.Optimizer, train_config: dict, epoch: int,
                     data_rng: torch.Tensor, noise_rngs: list[torch.Tensor], history: list[dict]) -> dict:
    """The dict a checkpoint holds after `epoch`; `noise_rngs` has one state per process."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model_config": model.cfg.to_dict(),
        "train_config": train_config,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        # "noise" alone is what a one-process run has always written; "noise_ranks" is added under torchrun.
        "rng": {"data": data_rng, "noise": noise_rngs[0].cpu(),
                **({"noise_ranks": [s.cpu() for s in noise_rngs]} if len(noise_rngs) > 1 else {})},
        "history": history,
    }


def noise_states(state: dict) -> list[torch.Tensor]:
    """The noise generator's state of each process that wrote `state`."""
    return state["rng"].get("noise_ranks") or [state["rng"]["noise"]]


def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint written by vaegen; weights_only=True, so nothing is unpickled."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"No checkpoint at {path}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on foreign pickle protocols
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):
            raise TrainingError(f"{path} holds objects vaegen did not write; refusing to unpickle it.") from exc
        raise TrainingError(f"{path} is not a readable vaegen checkpoint (not a torch checkpoint file).") from exc
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise TrainingError(f"{path} is not a readable vaegen checkpoint ({_first_line(exc)}).") from exc
    if isinstance(state, dict) and isinstance(state.get("format"), int) and 0 < state["format"] < CHECKPOINT_FORMAT:
        raise TrainingError(f"{path} was written by an earlier vaegen (checkpoint format {state['format']}); this one "
                            f"reads format {CHECKPOINT_FORMAT}: train the run again, or export it with the vaegen "
                            "that wrote it.")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or "model" not in state:
        raise TrainingError(f"{path} is not a vaegen checkpoint (format {CHECKPOINT_FORMAT}).")
    return state


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def model_from_checkpoint(state: dict) -> VAE:
    cfg = ModelConfig.from_dict(state["model_config"])
    model = VAE(cfg)
    model.load_state_dict(state["model"])
    model.eval()
    return model
