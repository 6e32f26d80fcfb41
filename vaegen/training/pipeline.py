"""The library's `train` (`vaegen.train`): a whole training run, the one
`vaegen train` makes.

It takes the dataset's recipe under the settings given (vaegen.recipes),
resumes a run where asked (the policy: config.py), runs the epoch loop
(loop.py), then builds the bundle (export.py) and fits its prior
(vaegen.latent.fit) in the bundle's build folder, so that each file of the
bundle is written once, and the bundle is moved into place whole. The
checkpoint is read once (by a resume; the export takes the state the loop
last wrote), the data is decoded once (the loop's sets go on to the prior
fit), and the device and the recipe are decided once.

Progress goes to a loop.Reporter; failures are vaegen's errors, and nothing
is printed. Imports torch (through the training modules) and vaegen's
torch-free modules; never the CLI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vaegen.api import Model, load_model
from vaegen.archs import SETTING_NAMES
from vaegen.bundle.write import add_records
from vaegen.choices import CHANNELS, DEVICES, IW_ESTIMATORS, LR_SCHEDULES, PRECISIONS
from vaegen.data.named import DATASETS
from vaegen.errors import ArgumentError, TrainingError
from vaegen.fileio import check_folder_target
from vaegen.latent.fit import fit_latents
from vaegen.likelihoods import likelihood_for
from vaegen.recipes import run_settings
from vaegen.training import loop
from vaegen.training.checkpoint import CHECKPOINT, load_checkpoint
from vaegen.training.config import OVERRIDABLE, TrainConfig, saved_settings
from vaegen.training.distributed import cuda_chosen, is_main_process
from vaegen.training.export import building_run_bundle
from vaegen.training.model import ModelConfig

# The settings train() takes by name: the model's, then the run's (each a
# `vaegen train` option). Left out or None, a setting takes the recipe's value.
MODEL_SETTINGS = ("arch", "latent_dim", *SETTING_NAMES, "image_size", "channels", "likelihood", "binarize")
RUN_SETTINGS = ("epochs", "batch_size", "lr", "lr_schedule", "beta", "kl_warmup", "iw_samples", "iw_estimator", "seed",
                "device", "precision", "threads", "flip", "skip_bad", "background")
CHOICES = {"lr_schedule": LR_SCHEDULES, "iw_estimator": IW_ESTIMATORS, "device": DEVICES, "precision": PRECISIONS,
           "channels": CHANNELS}
POSITIVE = ("latent_dim", "hidden", "decoder_layers", "conv_channels", "image_size", "epochs", "batch_size", "lr",
            "iw_samples", "threads")


def train(dataset: str | None = None, out: str | os.PathLike | None = None, *, resume: bool = False,
          fit_prior: bool = True, data_dir: str | os.PathLike | None = None, progress: loop.Reporter | None = None,
          command: str = "", **settings) -> Model | None:
    """Train a VAE on `dataset`, export it as a verified bundle in
    <out>/model with its fitted prior, and return it as a vaegen.Model.

    dataset: "mnist", "fashion-mnist" or a folder of images [default: mnist;
        a resume: the run's own].
    out: the run folder, for checkpoint.pt, metrics.jsonl, samples/ and the
        bundle in model/ [default: runs/<the dataset's name>].
    resume: continue the run in `out` with its saved settings, up to
        `epochs` [default: its own total]; settings given now win, and the
        model's must match the saved ones.
    fit_prior: fit the latent prior that Model.sample draws from (needs scikit-learn).
    data_dir: the folder of a named dataset's files (vaegen.data.named).
    progress: a vaegen.training.loop.Reporter that receives the progress.
    command: the command line that made the run, recorded on the model card.
    **settings: MODEL_SETTINGS and RUN_SETTINGS by name (latent_dim=2,
        epochs=1, ...); one left out or None takes the dataset's recipe (vaegen.recipes).

    Raises ArgumentError for a setting that cannot be, DataError, TrainingError,
    ExportError, OutputError, and loop.Interrupted on Ctrl-C (the last
    complete epoch's checkpoint is kept). Under torchrun every process calls
    this and trains; rank 0 alone exports, and the others return None.

    Example: vaegen.train("photos/", epochs=1).sample(16, seed=0)
    """
    _check_settings(settings)
    given = {name: value for name, value in settings.items() if value is not None}
    if dataset is not None:
        given["dataset"] = str(dataset)
    out = check_folder_target(out if out is not None else Path("runs") / Path(dataset or "mnist").name, "Run folder")
    if fit_prior:
        _require_sklearn()
    state = load_checkpoint(out / CHECKPOINT) if resume else None
    plan = plan_run(given, state, data_dir=data_dir, command=command)
    trained = loop.train_run(plan.cfg, plan.model_cfg, out, resume=resume, overrides=plan.overrides,
                             reporter=progress, state=state)
    if not is_main_process():
        return None
    return load_model(_export(trained, out, fit_prior=fit_prior, reporter=progress or loop.Reporter()))


@dataclass
class Plan:
    """What a run is asked to be, before the loop's resume policy has its say."""

    cfg: TrainConfig
    model_cfg: ModelConfig
    overrides: set[str]  # the settings given, which a resume takes over the saved ones


def plan_run(given: dict, state: dict | None = None, *, data_dir=None, command: str = "") -> Plan:
    """The configs of a run with the settings `given` (with "dataset"): a
    resume's saved shape and total epochs first (`state`: its checkpoint),
    then the dataset's recipe, on this machine's device, for the rest."""
    wanted = {**saved_settings(state), **given} if state is not None else given
    dataset = wanted.get("dataset", "mnist")
    device = "cuda" if cuda_chosen(given.get("device", "auto")) else "cpu"  # decided here, once
    s, on_gpu = run_settings(dataset, wanted, gpu=device == "cuda")
    if on_gpu and command and s["device"] == "auto":
        command += " --device cuda"  # the command as recorded must make this model anywhere: auto takes the CPU recipe
    size = 28 if dataset in DATASETS else s["image_size"]
    try:
        likelihood = likelihood_for(dataset, s.get("binarize"), s.get("likelihood"))
        model_cfg = ModelConfig(arch=s["arch"], channels=int(s["channels"]), height=size, width=size,
                                latent_dim=s["latent_dim"], likelihood=likelihood,
                                **{name: s.get(name) for name in SETTING_NAMES})
    except ValueError as exc:
        raise ArgumentError(str(exc)) from None
    run = {name: s[name] for name in RUN_SETTINGS}
    cfg = TrainConfig(**{**run, "device": device}, dataset=dataset, command=command,
                      data_dir=str(data_dir) if data_dir else None)
    return Plan(cfg, model_cfg, set(given) & OVERRIDABLE)


def _check_settings(settings: dict) -> None:
    """ArgumentError for a setting train() does not take, or a value it cannot have."""
    for name, value in settings.items():
        if name not in MODEL_SETTINGS + RUN_SETTINGS:
            raise ArgumentError(f"train() takes no setting {name!r}; it takes {', '.join(MODEL_SETTINGS + RUN_SETTINGS)}.")
        if value is None:
            continue
        if name in CHOICES and value not in CHOICES[name]:
            raise ArgumentError(f"{name}={value!r} is not one of {', '.join(map(str, CHOICES[name]))}.", argument=name)
        if name in POSITIVE and not value > 0:
            raise ArgumentError(f"{name}={value!r} must be positive.", argument=name)
        if name == "background" and value not in range(256):
            raise ArgumentError(f"background={value!r} must be a grey level from 0 to 255.", argument=name)


def _require_sklearn() -> None:
    import importlib.util

    if importlib.util.find_spec("sklearn") is None:
        raise TrainingError("Fitting the prior needs scikit-learn: pip install 'vaegen[train]', or pass fit_prior=False.")


def _export(trained: loop.Trained, out: Path, *, fit_prior: bool, reporter: loop.Reporter) -> Path:
    """Build the run's bundle in <out>/model from the state the loop ended
    with, its prior fitted on the data the loop loaded, each file written once."""
    cfg = trained.cfg
    data = trained.data
    if fit_prior and data is None:  # a resume that had only the export left loaded nothing
        data = loop.split_data(cfg, ModelConfig.from_dict(trained.state["model_config"]), progress=reporter.download)
    skipped = {"skipped_files": len(data[0].skipped)} if data is not None and data[0].skipped else {}
    with building_run_bundle(trained.state, out / "model", extra_training=skipped) as bundle:
        if fit_prior:
            model = Model(bundle, provider="cpu", threads=cfg.threads)
            fitted = fit_latents(model, data, cfg.dataset, {"seed": cfg.seed}, scoring=reporter.scoring)
            add_records(model, *fitted)
            facts = fitted.prior.facts
            reporter.message(f"Fitted a {facts['components']}-component prior in {facts['fit_seconds']} s"
                             + (f"; calibrated the scores on {fitted.calibration.facts['images']} held-out images in "
                                f"{fitted.calibration.facts['seconds']} s" if fitted.calibration else ""))
    return out / "model"
