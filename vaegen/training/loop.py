"""Training: the epoch loop, and what it writes after each epoch.

A run folder holds checkpoint.pt (model, optimizer, epoch, RNG states,
configs), metrics.jsonl (one line per epoch), samples/epoch_NNN.png, and the
exported bundle in model/. Everything is written atomically; a run stopped by
Ctrl-C, a kill or a NaN keeps its last complete epoch.

Randomness comes from torch.Generators that live in the checkpoint, so a
resumed run on the CPU ends with exactly the model of a run never stopped.

The settings and resume policy are in config.py, the checkpoint format in
checkpoint.py, the loss in objective.py, the torchrun plumbing in
distributed.py. Imports torch and those modules; never the CLI.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from vaegen.data.cache import first_few
from vaegen.data.load import check_image_shape, split_for_training
from vaegen.data.sets import FolderOptions, ImageSet, Rows
from vaegen.errors import TrainingError
from vaegen.fileio import atomic_path, check_folder_target
from vaegen.runtime import describe_cpu
from vaegen.training.checkpoint import CHECKPOINT, checkpoint_state, load_checkpoint, noise_states, save_checkpoint
from vaegen.training.config import TrainConfig, check_more_epochs, resumed_config
from vaegen.training.distributed import (
    Distributed,
    check_ranks_agree,
    gather_states,
    init_distributed,
    main_first,
    mean_over_ranks,
    shard_order,
    wrap_model,
)
from vaegen.training.model import VAE, ModelConfig
from vaegen.training.objective import batch_loss, held_out_elbo
from vaegen.training.samples import save_prior_grid


class Reporter:
    """Receives progress; the CLI's subclass draws it on stderr. Silent here."""

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None: ...
    def step(self, stats: dict) -> None: ...
    def epoch_end(self, metrics: dict) -> None: ...
    def message(self, text: str) -> None: ...
    def download(self, done: int, total: int | None) -> None: ...  # loading or downloading the data
    def scoring(self, done: int, total: int | None) -> None: ...  # the held-out images scored for the calibration


# Called as hook(run, epoch, metrics) after each epoch's checkpoint is written,
# in the process that trains: benchmarks/ttq_train.py measures the curve here.
epoch_hooks: list = []


class Interrupted(Exception):
    """Ctrl-C during training; the last complete epoch's checkpoint is kept."""

    def __init__(self, epoch_done: int, out: Path):
        super().__init__(f"interrupted after epoch {epoch_done}")
        self.epoch_done = epoch_done
        self.out = out


@dataclass
class Run:
    """One process's training run: what every epoch reads and updates."""

    cfg: TrainConfig
    out: Path
    ddp: Distributed
    device: torch.device
    reporter: Reporter
    model: VAE
    wrapped: torch.nn.Module  # what the forward pass goes through: DDP under torchrun, else the model
    optimizer: torch.optim.Optimizer
    images: np.ndarray | Rows  # (N, C, H, W) uint8, the training set; a folder's is memory-mapped, read a batch at a time
    held_out: np.ndarray | Rows  # (M, C, H, W) uint8, the held-out set, prepared a chunk at a time when scored
    data_gen: torch.Generator  # shuffling (CPU)
    noise_gen: torch.Generator  # binarization and eps, one stream per rank
    batch: int  # the global batch; each rank takes batch // world of it
    steps_per_epoch: int
    epochs_done: int
    history: list[dict]
    data: tuple[ImageSet, ImageSet]  # the training and held-out sets as loaded, for the prior fit after the run
    saved: dict | None = None  # the last checkpoint written (rank 0), for the export after the run

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.cfg.epochs

    @functools.cached_property
    def device_name(self) -> str:
        """What the run trains on, as each epoch records it: the GPU's name, or the CPU's cores and model."""
        return torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else describe_cpu()


def split_data(cfg: TrainConfig, model_cfg: ModelConfig, progress=None) -> tuple[ImageSet, ImageSet]:
    """Train and held-out sets (vaegen.data.split_for_training)."""
    return split_for_training(cfg.dataset, cfg.data_dir, channels=model_cfg.channels,
                              size=(model_cfg.height, model_cfg.width), progress=progress,
                              options=FolderOptions(cfg.skip_bad, cfg.background))


def _lr_at(cfg: TrainConfig, step: int, total: int, start: int = 0) -> float:
    """The learning rate at `step` of a schedule that runs from step `start` to `total`."""
    if cfg.lr_schedule == "constant" or total - start <= 1:
        return cfg.lr
    floor = cfg.lr / 100
    done = min(max(step - start, 0), total - start) / (total - start)
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * done))


def _beta_at(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    if cfg.kl_warmup <= 0:
        return cfg.beta
    return cfg.beta * min(1.0, step / (cfg.kl_warmup * steps_per_epoch))


@dataclass
class Trained:
    """What a finished run hands on, so that its export and prior fit read
    and decode nothing again."""

    metrics: dict  # the last epoch's
    state: dict | None  # the last checkpoint as written (or as read, where every epoch was done); None off rank 0
    data: tuple[ImageSet, ImageSet] | None  # the training and held-out sets as loaded; None where no epoch ran
    cfg: TrainConfig  # the settings it ran with (a resume's, as resumed_config made them)


def train(
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    out: Path,
    *,
    resume: bool = False,
    overrides: set[str] | None = None,
    reporter: Reporter | None = None,
) -> dict:
    """Train (or resume) a run in `out`; return the last epoch's metrics (train_run: all it ends with).

    Under torchrun (WORLD_SIZE > 1) every process runs this; --batch-size is
    the global batch, split evenly over the processes, so --lr means the same
    thing on one process or many. Rank 0 alone writes files and reports.
    """
    return train_run(cfg, model_cfg, out, resume=resume, overrides=overrides, reporter=reporter).metrics


def train_run(cfg: TrainConfig, model_cfg: ModelConfig, out: Path, *, resume: bool = False,
              overrides: set[str] | None = None, reporter: Reporter | None = None,
              state: dict | None = None) -> Trained:
    """train(), returning what the run ends with. `state` is the run's
    checkpoint when the caller has read it already (a resume reads it once)."""
    out = check_folder_target(out, "Run folder")
    if resume:
        state = state if state is not None else load_checkpoint(out / CHECKPOINT)
        cfg, model_cfg = resumed_config(state, cfg, model_cfg, overrides or set())
        if state["epoch"] == cfg.epochs and not (out / "model" / "vaegen.json").is_file():
            # Killed during the final export: the epochs are done, the bundle is what is missing.
            (reporter or Reporter()).message(f"All {cfg.epochs} epochs are done; exporting the missing bundle.")
            return Trained(dict(state.get("history", [{}])[-1]), state, None, cfg)
        check_more_epochs(state, cfg, out)
    elif (out / CHECKPOINT).exists():
        raise TrainingError(f"{out} already holds a run; pass --resume to continue it, or choose another --out.")
    else:
        state = None  # a new run

    run = _start_run(cfg, model_cfg, out, state, reporter)
    metrics: dict = run.history[-1] if run.history else {}
    for epoch in range(run.epochs_done + 1, cfg.epochs + 1):
        try:
            metrics = _run_epoch(run, epoch)
        except KeyboardInterrupt:
            raise Interrupted(epoch - 1, out) from None
        _end_epoch(run, epoch, metrics)
        for hook in epoch_hooks:
            hook(run, epoch, metrics)
    if run.ddp.world > 1:
        digest = check_ranks_agree(run.model, run.ddp)
        run.reporter.message(f"parameters identical on all {run.ddp.world} processes (sha256 {digest[:12]})")
        dist.barrier()
        dist.destroy_process_group()
    return Trained(metrics, run.saved, run.data, cfg)


def channels_last(model_cfg: ModelConfig, device: torch.device) -> bool:
    """Whether the model trains in NHWC memory: on a CPU, where its architecture gains by it (the conv)."""
    return model_cfg.architecture.channels_last_on_cpu and device.type == "cpu"


def adam(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam with its fused kernel, one pass over all parameters: 7x faster than
    the default per-tensor loop on a CPU, where the optimizer took ~20% of an
    mlp step (benchmarks/profile_step.py). Torch has it for CPU and CUDA tensors
    (and checks only at the first step), so other devices get the default."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=_fusable(model))


def _fusable(model: torch.nn.Module) -> bool:
    return all(p.device.type in ("cpu", "cuda") for p in model.parameters())


def _restore_optimizer(optimizer: torch.optim.Optimizer, model: torch.nn.Module, saved: dict) -> None:
    """Load a saved Adam state so that it matches this run: each moment in its
    parameter's memory layout and device (the fused kernels read raw memory: a
    conv saved in one layout, resumed in channels_last, would pair the wrong
    moments), and the fused kernel wherever it applies (a checkpoint of an
    older vaegen saved the per-tensor loop)."""
    optimizer.load_state_dict(saved)
    fused = _fusable(model)
    for param in model.parameters():
        state = optimizer.state.get(param, {})
        for key, value in state.items():
            if torch.is_tensor(value) and value.shape == param.shape:
                state[key] = torch.empty_like(param).copy_(value)
            elif key == "step" and fused and torch.is_tensor(value):  # the fused kernel's step lives by its parameter
                state[key] = value.to(device=param.device, dtype=torch.float32)
    for group in optimizer.param_groups:
        group["fused"], group["foreach"] = fused, None if fused else group.get("foreach")


def _start_run(cfg: TrainConfig, model_cfg: ModelConfig, out: Path, state: dict | None,
               reporter: Reporter | None) -> Run:
    """Join the job, load the data, build (or restore) the model and optimizer."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ddp, device = init_distributed(cfg.device)
    reporter = (reporter or Reporter()) if ddp.is_main else Reporter()
    if cfg.precision == "bf16" and device.type != "cuda":
        raise TrainingError("--precision bf16 is for CUDA GPUs; use --precision fp32 on the CPU.")
    if cfg.batch_size % ddp.world:
        raise TrainingError(f"--batch-size {cfg.batch_size} does not split evenly over {ddp.world} processes.")
    images, held_out, data = _load_images(cfg, model_cfg, ddp, reporter)

    torch.manual_seed(cfg.seed)  # parameter initialisation, the same on every rank
    model = VAE(model_cfg).to(device)
    if channels_last(model_cfg, device):
        model = model.to(memory_format=torch.channels_last)
    n = len(images)
    batch = min(cfg.batch_size, n - n % ddp.world)
    run = Run(
        cfg=cfg, out=out, ddp=ddp, device=device, reporter=reporter, model=model, wrapped=model,
        optimizer=adam(model, cfg.lr), images=images, held_out=held_out,
        data_gen=torch.Generator().manual_seed(cfg.seed),
        noise_gen=torch.Generator(device=device).manual_seed(cfg.seed + 1 + 1000 * ddp.rank),
        batch=batch, steps_per_epoch=n // batch,  # drop the ragged last batch
        epochs_done=0, history=[], data=data,
    )
    if run.steps_per_epoch < FEW_STEPS and ddp.is_main:
        reporter.message(few_steps_warning(n, cfg.batch_size))
    if state is None:
        model.init_output_bias(torch.from_numpy(mean_image(images)).to(device))
    else:
        _restore(run, state)
    if ddp.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(exist_ok=True)
    run.wrapped = wrap_model(model, ddp, device)
    return run


FEW_STEPS = 20  # an epoch of fewer optimizer steps than this learns little, however many epochs are asked for


def few_steps_warning(images: int, batch_size: int) -> str:
    """The warning for a dataset too small for its batch size, with a batch size that gives FEW_STEPS steps."""
    steps = max(1, images // min(batch_size, images))
    better = max(1, 2 ** int(math.log2(max(1, images // FEW_STEPS))))
    return (f"warning: {images} training images at batch size {batch_size} make {steps} optimizer "
            f"step{'s' if steps != 1 else ''} an epoch, too few to learn from; try --batch-size {better} "
            f"({images // better} steps an epoch) or more --epochs.")


def _load_images(cfg: TrainConfig, model_cfg: ModelConfig, ddp: Distributed,
                 reporter: Reporter) -> tuple[np.ndarray | Rows, np.ndarray | Rows, tuple[ImageSet, ImageSet]]:
    """The training and held-out images (N, C, H, W) uint8, as loaded (a folder's
    memory-mapped, never copied whole), and both sets, for the prior fit after the run."""
    with main_first(ddp):  # rank 0 decodes or downloads the data first
        train_set, test_set = split_data(cfg, model_cfg, progress=reporter.download if ddp.is_main else None)
    check_image_shape(train_set, model_cfg.image_shape, cfg.dataset)
    if train_set.skipped and ddp.is_main:
        reporter.message(skipped_note(train_set.skipped))
    return train_set.images, test_set.images, (train_set, test_set)


def skipped_note(skipped: tuple[str, ...]) -> str:
    """The line that names the files a skip_bad run left out, as the error without skip_bad names them."""
    return (f"Skipped {len(skipped)} file{'s' if len(skipped) != 1 else ''} that cannot be read as images: "
            f"{first_few(list(skipped), ', ')}.")


def mean_image(images: np.ndarray | Rows, chunk: int = 4096) -> np.ndarray:
    """The mean image (C, H, W) in [0, 1], float32, summed a chunk at a time (in float64)."""
    total = np.zeros(images.shape[1:], np.float64)
    for start in range(0, len(images), chunk):
        total += np.asarray(images[start : start + chunk]).sum(axis=0, dtype=np.float64)
    return (total / (255.0 * max(len(images), 1))).astype(np.float32)


def gather_batch(images: np.ndarray | Rows, indices: torch.Tensor, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """The uint8 images at `indices`, copied from wherever they live (a memory map reads just these
    pages); with `flip`, each mirrored left to right with probability 1/2 (a draw of `gen`)."""
    batch = torch.from_numpy(np.ascontiguousarray(images[indices.numpy()]))
    if flip:
        mirrored = torch.rand(len(batch), generator=gen) < 0.5
        batch[mirrored] = batch[mirrored].flip(-1)
    return batch


def _restore(run: Run, state: dict) -> None:
    """Put the checkpoint's weights, optimizer and generator states into `run`."""
    run.model.load_state_dict(state["model"])
    _restore_optimizer(run.optimizer, run.model, state["optimizer"])
    run.data_gen.set_state(state["rng"]["data"])
    saved = noise_states(state)
    if len(saved) != run.ddp.world:
        raise TrainingError(
            f"{run.out} was trained by {len(saved)} process(es); resume it with the same number ({run.ddp.world} now)."
        )
    run.noise_gen.set_state(saved[run.ddp.rank])
    run.epochs_done, run.history = state["epoch"], list(state.get("history", []))


def _run_epoch(run: Run, epoch: int) -> dict:
    """One pass over the training images; returns the epoch's metrics (on rank 0)."""
    cfg, ddp = run.cfg, run.ddp
    run.reporter.epoch_start(epoch, cfg.epochs, run.steps_per_epoch)
    run.wrapped.train()
    t0 = time.perf_counter()
    if ddp.world > 1:
        order = shard_order(ddp, len(run.images), cfg.seed, epoch)
    else:
        order = torch.randperm(len(run.images), generator=run.data_gen)
    local = run.batch // ddp.world
    sums = torch.zeros(3, dtype=torch.float64)  # loss, recon, kl
    lr = beta = 0.0
    for i in range(run.steps_per_epoch):
        lr, beta, losses = _step(run, epoch, i, order[i * local : (i + 1) * local])
        sums += losses
        seconds = time.perf_counter() - t0
        run.reporter.step({
            "loss": sums[0].item() / (i + 1), "recon": sums[1].item() / (i + 1),
            "kl": sums[2].item() / (i + 1), "images_per_s": (i + 1) * run.batch / max(seconds, 1e-9),
        })
    mean_over_ranks(ddp, sums)
    seconds = time.perf_counter() - t0
    held_out = held_out_elbo(run.model, run.held_out, run.device) if ddp.is_main else {}
    steps = run.steps_per_epoch
    return {
        "epoch": epoch,
        "train_loss": sums[0].item() / steps,
        "train_recon": sums[1].item() / steps,
        "train_kl": sums[2].item() / steps,
        **held_out,
        "lr": lr,
        "beta": beta,
        "seconds": seconds,
        "images_per_s": steps * run.batch / seconds,
        "processes": ddp.world,
        "device": run.device_name,
    }


def _step(run: Run, epoch: int, i: int, indices: torch.Tensor) -> tuple[float, float, torch.Tensor]:
    """One optimizer step on the images at `indices`: (lr, beta, [loss, recon, kl] as float64)."""
    cfg = run.cfg
    step = (epoch - 1) * run.steps_per_epoch + i
    lr = _lr_at(cfg, step, run.total_steps, cfg.schedule_start * run.steps_per_epoch)
    beta = _beta_at(cfg, step, run.steps_per_epoch)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    batch = gather_batch(run.images, indices, cfg.flip, run.data_gen)
    x = run.model.likelihood.prepare_batch(batch.to(run.device), run.noise_gen)
    if channels_last(run.model.cfg, run.device):
        x = x.contiguous(memory_format=torch.channels_last)
    loss, recon, kl = batch_loss(run.wrapped, run.model, x, beta, cfg.iw_samples, run.noise_gen,
                                 bf16=cfg.precision == "bf16", estimator=cfg.iw_estimator)
    if not torch.isfinite(loss):
        raise TrainingError(
            f"The loss became {loss.item()} at epoch {epoch}, step {i + 1}; stopped. "
            f"The last good checkpoint (epoch {epoch - 1}) is kept in {run.out}; try a lower --lr."
        )
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    return lr, beta, torch.tensor([loss.item(), recon.item(), kl.item()], dtype=torch.float64)


def _end_epoch(run: Run, epoch: int, metrics: dict) -> None:
    """Rank 0 writes the epoch's sample grid, checkpoint and metrics line, then reports."""
    noise_rngs = gather_states(run.ddp, run.noise_gen.get_state())
    if not run.ddp.is_main:
        return
    run.history.append(metrics)
    save_prior_grid(run.model.probs, run.model.cfg.latent_dim, run.out / "samples" / f"epoch_{epoch:03d}.png")
    state = checkpoint_state(model=run.model, optimizer=run.optimizer, train_config=asdict(run.cfg), epoch=epoch,
                             data_rng=run.data_gen.get_state(), noise_rngs=noise_rngs, history=run.history)
    path = run.out / CHECKPOINT
    try:
        save_checkpoint(path, state)
    except KeyboardInterrupt:  # the save is atomic: finish it, then stop
        save_checkpoint(path, state)
        raise Interrupted(epoch, run.out) from None
    run.saved = state
    _write_metrics(run.out / "metrics.jsonl", run.history)
    run.reporter.epoch_end(metrics)


def _write_metrics(path: Path, history: list[dict]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(m) + "\n" for m in history))
