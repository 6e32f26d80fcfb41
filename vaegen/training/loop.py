"""Training: the epoch loop, checkpoints, resume, and the per-epoch report.

A run folder holds checkpoint.pt (model, optimizer, epoch, RNG states,
configs), metrics.jsonl (one line per epoch), samples/epoch_NNN.png, and the
exported bundle in model/. Everything is written atomically; a run stopped by
Ctrl-C, a kill or a NaN keeps its last complete epoch.

Randomness comes from torch.Generators that live in the checkpoint, so a
resumed run on the CPU ends with exactly the model of a run never stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from vaegen.data import ImageSet, binarize, load_dataset
from vaegen.errors import TrainingError
from vaegen.fileio import atomic_path, check_folder_target
from vaegen.images import make_grid, save_png
from vaegen.training.model import VAE, ModelConfig, bernoulli_nll, gaussian_kl, log_normal

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = 1
TEST_SEED = 0  # the fixed binarization of held-out images, shared with `vaegen evaluate`


@dataclass
class TrainConfig:
    dataset: str = "mnist"
    data_dir: str | None = None
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "cosine"  # cosine (to lr/100) or constant
    beta: float = 1.0
    kl_warmup: float = 0.0  # epochs over which the KL weight ramps from 0 to beta
    binarize: bool | None = None  # None: on for mnist and fashion-mnist
    iw_samples: int = 1  # >1 trains on the importance-weighted bound (Burda et al.)
    iw_estimator: str = "iwae"  # the encoder's gradient of that bound: iwae, or dreg (Tucker et al. 2018)
    schedule_start: int = 0  # the epoch the learning-rate schedule starts from (a resumed fine-tuning stage)
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # fp32, or bf16 autocast on CUDA
    threads: int | None = None
    command: str = ""  # the exact command line, for the model card
    extra: dict = field(default_factory=dict)

    def binarized(self) -> bool:
        return self.dataset in ("mnist", "fashion-mnist") if self.binarize is None else self.binarize


class Reporter:
    """Receives progress; the CLI's subclass draws it on stderr. Silent here."""

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None: ...
    def step(self, stats: dict) -> None: ...
    def epoch_end(self, metrics: dict) -> None: ...
    def message(self, text: str) -> None: ...


class Interrupted(Exception):
    """Ctrl-C during training; the last complete epoch's checkpoint is kept."""

    def __init__(self, epoch_done: int, out: Path):
        super().__init__(f"interrupted after epoch {epoch_done}")
        self.epoch_done = epoch_done
        self.out = out


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but torch sees no CUDA GPU; use --device cpu.")
    return torch.device(name)


def split_data(cfg: TrainConfig, model_cfg: ModelConfig) -> tuple[ImageSet, ImageSet]:
    """Train and held-out sets. An image folder keeps every 10th image apart."""
    kw = dict(channels=model_cfg.channels, size=(model_cfg.height, model_cfg.width))
    train = load_dataset(cfg.dataset, "train", cfg.data_dir, **kw)
    if cfg.dataset in ("mnist", "fashion-mnist"):
        return train, load_dataset(cfg.dataset, "test", cfg.data_dir, **kw)
    if len(train) < 2:
        raise TrainingError(f"{cfg.dataset} holds {len(train)} image; training needs at least 2.")
    held = np.zeros(len(train), dtype=bool)
    held[::10] = True
    part = lambda mask: ImageSet(train.images[mask], train.labels[mask], train.name)  # noqa: E731
    return part(~held), part(held)


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


def batch_loss(model, x: torch.Tensor, beta: float, iw_samples: int, gen: torch.Generator,
               latent_dim: int, bf16: bool = False, estimator: str = "iwae"):
    """(loss to minimise, mean reconstruction nats, mean KL nats) for a batch x.

    `model` is the VAE or its DistributedDataParallel wrapper: the forward
    pass goes through model(...) so DDP can synchronise the gradients.

    With iw_samples > 1 the loss is the importance-weighted bound. Its
    decoder gradient is sum_i w_i grad log w_i (w normalised weights); for
    the encoder, `estimator="dreg"` gives the doubly reparameterized gradient
    (Tucker et al. 2018), sum_i w_i^2 d log w_i/dz_i dz_i/dphi, whose signal
    does not fade as k grows: q's parameters are cut out of log q(z|x), and a
    hook scales the gradient reaching each z_i by w_i once more.
    """
    b = x.shape[0]
    shape = (b, latent_dim) if iw_samples <= 1 else (iw_samples, b, latent_dim)
    eps = torch.randn(shape, generator=gen, device=x.device)
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=bf16):
        mu, logvar, z, logits = model(x, eps)
    dreg = iw_samples > 1 and estimator == "dreg" and z.requires_grad
    weights = []
    if dreg:
        z.register_hook(lambda grad: grad * weights[0].to(grad.dtype).unsqueeze(-1))
    mu, logvar, z, logits = mu.float(), logvar.float(), z.float(), logits.float()
    if iw_samples <= 1:
        recon, kl = bernoulli_nll(logits, x), gaussian_kl(mu, logvar)
        return (recon + beta * kl).mean(), recon.mean(), kl.mean()
    k = iw_samples
    recon = bernoulli_nll(logits, x.repeat(k, 1, 1, 1)).view(k, b)
    q_mu, q_logvar = (mu.detach(), logvar.detach()) if dreg else (mu, logvar)
    kl_terms = log_normal(z, q_mu, q_logvar) - log_normal(z)  # log q(z|x) - log p(z), (K, B)
    log_w = -recon - beta * kl_terms
    if dreg:
        weights.append(torch.softmax(log_w.detach(), dim=0))
    bound = torch.logsumexp(log_w, dim=0) - math.log(k)
    return -bound.mean(), recon.mean(), kl_terms.mean()


@torch.inference_mode()
def held_out_elbo(model: VAE, x_test: torch.Tensor, device: torch.device) -> dict:
    """Negative ELBO on held-out images with a fixed noise draw: nats per image."""
    model.eval()
    gen = torch.Generator(device=device).manual_seed(TEST_SEED)
    recon_sum = kl_sum = 0.0
    for start in range(0, len(x_test), 1000):
        x = x_test[start : start + 1000].to(device)
        mu, logvar = model.encode(x)
        eps = torch.randn(mu.shape, generator=gen, device=device)
        logits = model.decode(model.reparameterize(mu, logvar, eps))
        recon_sum += bernoulli_nll(logits, x).sum().item()
        kl_sum += gaussian_kl(mu, logvar).sum().item()
    model.train()
    n = len(x_test)
    return {"test_neg_elbo": (recon_sum + kl_sum) / n, "test_recon": recon_sum / n, "test_kl": kl_sum / n}


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


def write_sample_grid(model: VAE, path: Path, device: torch.device, n: int = 64, seed: int = 0) -> None:
    """An 8x8 grid of the decoder's means for a fixed set of prior draws."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn((n, model.cfg.latent_dim), generator=gen).to(device)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        probs = torch.sigmoid(model.decode(z)).float().cpu().numpy()
    model.train(was_training)
    save_png(make_grid(probs, nrow=8), path)


@dataclass(frozen=True)
class Distributed:
    """Where this process sits in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> tuple[Distributed, torch.device]:
    """Join the torchrun job when WORLD_SIZE > 1: gloo on CPU, nccl on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(device_name)
    if world <= 1:
        return Distributed(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, world, local_rank), device


MODEL_OPTIONS = {"arch": "arch", "latent_dim": "latent_dim", "hidden": "hidden", "decoder_layers": "decoder_layers",
                 "image_size": "height",
                 "channels": "channels"}


def _resumed_config(state: dict, cfg: TrainConfig, model_cfg: ModelConfig,
                    overrides: set[str]) -> tuple[TrainConfig, ModelConfig]:
    """The run's saved settings; training options given explicitly this time
    win, and model options given explicitly must match the saved model."""
    saved_model = ModelConfig.from_dict(state["model_config"])
    saved = TrainConfig(**{**state["train_config"], "extra": dict(state["train_config"].get("extra", {}))})
    changed = [name for name, field in MODEL_OPTIONS.items()
               if name in overrides and getattr(model_cfg, field) != getattr(saved_model, field)]
    if "dataset" in overrides and cfg.dataset != saved.dataset:
        changed.append("dataset")
    if changed:
        names = ", ".join("--" + n.replace("_", "-") for n in changed)
        raise TrainingError(f"{names} cannot change when resuming; the run in this folder keeps its model and data.")
    new_rate = any(getattr(cfg, name) != getattr(saved, name) for name in overrides & {"lr", "lr_schedule"})
    for name in (overrides - set(MODEL_OPTIONS) - {"dataset"}) | {"epochs", "device", "threads"}:
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


def train(
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    out: Path,
    *,
    resume: bool = False,
    overrides: set[str] | None = None,
    reporter: Reporter | None = None,
) -> dict:
    """Train (or resume) a run in `out`; return the last epoch's metrics.

    Under torchrun (WORLD_SIZE > 1) every process runs this; --batch-size is
    the global batch, split evenly over the processes, so --lr means the same
    thing on one process or many. Rank 0 alone writes files and reports.
    """
    out = check_folder_target(out, "--out")
    ckpt_path = out / CHECKPOINT
    state = None
    if resume:
        state = load_checkpoint(ckpt_path)
        cfg, model_cfg = _resumed_config(state, cfg, model_cfg, overrides or set())
        if state["epoch"] == cfg.epochs and not (out / "model" / "vaegen.json").is_file():
            # Killed during the final export: the epochs are done, the bundle is what is missing.
            (reporter or Reporter()).message(f"All {cfg.epochs} epochs are done; exporting the missing bundle.")
            return dict(state.get("history", [{}])[-1])
        if state["epoch"] >= cfg.epochs:
            raise TrainingError(
                f"{out} already holds {state['epoch']} epochs; pass --epochs above {state['epoch']} to train more."
            )
    elif ckpt_path.exists():
        raise TrainingError(f"{out} already holds a run; pass --resume to continue it, or choose another --out.")

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ddp, device = init_distributed(cfg.device)
    reporter = (reporter or Reporter()) if ddp.is_main else Reporter()
    if cfg.precision == "bf16" and device.type != "cuda":
        raise TrainingError("--precision bf16 is for CUDA GPUs; use --precision fp32 on the CPU.")
    if cfg.batch_size % ddp.world:
        raise TrainingError(f"--batch-size {cfg.batch_size} does not split evenly over {ddp.world} processes.")
    if not ddp.is_main:
        dist.barrier()  # rank 0 downloads the data first
    train_set, test_set = split_data(cfg, model_cfg)
    if ddp.is_main and ddp.world > 1:
        dist.barrier()
    if tuple(train_set.images.shape[1:]) != model_cfg.image_shape:
        raise TrainingError(
            f"{cfg.dataset} images are {train_set.images.shape[1:]}, the model expects {model_cfg.image_shape}."
        )
    images = torch.from_numpy(np.array(train_set.images, copy=True))  # (N, C, H, W) uint8, writable
    if cfg.binarized():
        x_test = torch.from_numpy(binarize(test_set.images, TEST_SEED))
    else:
        x_test = torch.from_numpy(test_set.images.astype(np.float32) / 255.0)

    torch.manual_seed(cfg.seed)  # parameter initialisation, the same on every rank
    model = VAE(model_cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    data_gen = torch.Generator().manual_seed(cfg.seed)  # shuffling (CPU)
    # binarization and eps; each rank draws its own noise
    noise_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1 + 1000 * ddp.rank)
    start_epoch, history = 0, []
    if state is None:
        model.init_output_bias(images.float().mean(0).to(device) / 255.0)
    else:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        data_gen.set_state(state["rng"]["data"])
        noise_states = state["rng"].get("noise_ranks") or [state["rng"]["noise"]]
        if len(noise_states) != ddp.world:
            raise TrainingError(
                f"{out} was trained by {len(noise_states)} process(es); resume it with the same number ({ddp.world} now)."
            )
        noise_gen.set_state(noise_states[ddp.rank])
        start_epoch, history = state["epoch"], list(state.get("history", []))
    if ddp.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(exist_ok=True)
    wrapped = model
    if ddp.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    n = len(images)
    batch = min(cfg.batch_size, n - n % ddp.world)
    steps_per_epoch = n // batch  # drop the ragged last batch
    total_steps = steps_per_epoch * cfg.epochs
    metrics: dict = history[-1] if history else {}
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        try:
            metrics = _run_epoch(wrapped, model, optimizer, images, x_test, cfg, epoch, steps_per_epoch, batch,
                                 total_steps, data_gen, noise_gen, device, out, reporter, ddp)
        except KeyboardInterrupt:
            raise Interrupted(epoch - 1, out) from None
        noise_ranks = [noise_gen.get_state()]
        if ddp.world > 1:
            noise_ranks = [None] * ddp.world
            dist.all_gather_object(noise_ranks, noise_gen.get_state().cpu())
        if not ddp.is_main:
            continue
        history.append(metrics)
        write_sample_grid(model, out / "samples" / f"epoch_{epoch:03d}.png", device)
        state = {
            "format": CHECKPOINT_FORMAT,
            "model_config": model_cfg.to_dict(),
            "train_config": asdict(cfg),
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": {"data": data_gen.get_state(), "noise": noise_ranks[0].cpu(),
                    **({"noise_ranks": [s.cpu() for s in noise_ranks]} if ddp.world > 1 else {})},
            "history": history,
        }
        try:
            save_checkpoint(ckpt_path, state)
        except KeyboardInterrupt:  # the save is atomic: finish it, then stop
            save_checkpoint(ckpt_path, state)
            raise Interrupted(epoch, out) from None
        _write_metrics(out / "metrics.jsonl", history)
        reporter.epoch_end(metrics)
    if ddp.world > 1:
        _check_ranks_agree(model, ddp, reporter)
        dist.barrier()
        dist.destroy_process_group()
    return metrics


def _check_ranks_agree(model: VAE, ddp: Distributed, reporter: Reporter) -> None:
    """DDP keeps replicas identical; verify it rather than trust it."""
    flat = torch.cat([p.detach().float().reshape(-1).cpu() for p in model.parameters()])
    digest = hashlib.sha256(flat.numpy().tobytes()).hexdigest()
    digests = [None] * ddp.world
    dist.all_gather_object(digests, digest)
    if len(set(digests)) != 1:
        raise TrainingError(f"The {ddp.world} processes ended with different parameters; the run is not trustworthy.")
    reporter.message(f"parameters identical on all {ddp.world} processes (sha256 {digest[:12]})")


def _run_epoch(wrapped, model, optimizer, images, x_test, cfg, epoch, steps_per_epoch, batch, total_steps,
               data_gen, noise_gen, device, out, reporter, ddp: Distributed) -> dict:
    """One pass over the training images; returns the epoch's metrics (on rank 0)."""
    reporter.epoch_start(epoch, cfg.epochs, steps_per_epoch)
    wrapped.train()
    t0 = time.perf_counter()
    if ddp.world > 1:
        from torch.utils.data import DistributedSampler

        sampler = DistributedSampler(range(len(images)), num_replicas=ddp.world, rank=ddp.rank, shuffle=True,
                                     seed=cfg.seed, drop_last=True)
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))  # this rank's share of the epoch
    else:
        order = torch.randperm(len(images), generator=data_gen)
    local = batch // ddp.world
    sums = torch.zeros(3, dtype=torch.float64)
    lr = beta = 0.0
    for i in range(steps_per_epoch):
        step = (epoch - 1) * steps_per_epoch + i
        lr = _lr_at(cfg, step, total_steps, cfg.schedule_start * steps_per_epoch)
        beta = _beta_at(cfg, step, steps_per_epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x = images[order[i * local : (i + 1) * local]].to(device).float().div_(255.0)
        if cfg.binarized():
            x = torch.bernoulli(x, generator=noise_gen)
        loss, recon, kl = batch_loss(wrapped, x, beta, cfg.iw_samples, noise_gen, model.cfg.latent_dim,
                                     bf16=cfg.precision == "bf16", estimator=cfg.iw_estimator)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"The loss became {loss.item()} at epoch {epoch}, step {i + 1}; stopped. "
                f"The last good checkpoint (epoch {epoch - 1}) is kept in {out}; try a lower --lr."
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sums += torch.tensor([loss.item(), recon.item(), kl.item()], dtype=torch.float64)
        seconds = time.perf_counter() - t0
        reporter.step({
            "loss": sums[0].item() / (i + 1), "recon": sums[1].item() / (i + 1),
            "kl": sums[2].item() / (i + 1), "images_per_s": (i + 1) * batch / max(seconds, 1e-9),
        })
    if ddp.world > 1:
        dist.all_reduce(sums)  # gloo and nccl both reduce float64 on their device
        sums /= ddp.world
    seconds = time.perf_counter() - t0
    held_out = held_out_elbo(model, x_test, device) if ddp.is_main else {}
    return {
        "epoch": epoch,
        "train_loss": sums[0].item() / steps_per_epoch,
        "train_recon": sums[1].item() / steps_per_epoch,
        "train_kl": sums[2].item() / steps_per_epoch,
        **held_out,
        "lr": lr,
        "beta": beta,
        "seconds": seconds,
        "images_per_s": steps_per_epoch * batch / seconds,
        "processes": ddp.world,
    }


def _write_metrics(path: Path, history: list[dict]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(m) + "\n" for m in history))
