"""`make bench` section "training": seconds per 60,000-image epoch of the
model's step alone, the default `vaegen train` recipe, a conv model and the
shipped recipe's stages against the classic one (classic_vae.py: MLP
784-400-20, batch 128, Adam). Also the table's row names, which the report
looks up, and `shipped_recipe`, the shipped model's stages.

Imports timing, vaegen's bundle and, inside bench_training, torch,
classic_vae and vaegen.training.
"""

from __future__ import annotations

import time
from pathlib import Path

from timing import THREADS, alternate, median

from vaegen.bundle.read import load_bundle

CLASSIC_ROW = "classic MLP 784-400-20"
DEFAULT_ROW = "vaegen train default (mlp, batch 256)"
CONV_ROW = "conv (hidden 512)"
STAGE1_ROW = "shipped recipe, stage 1"


def stage2_row(iw_samples: int, estimator: str = "iwae") -> str:
    return f"shipped recipe, stage 2 (IW k={iw_samples}{', DReG' if estimator == 'dreg' else ''})"


def shipped_recipe(model_dir: Path) -> dict:
    """The shipped model's stages, as its vaegen.json records them (the Makefile's `make weights`)."""
    meta = load_bundle(model_dir).meta
    training = meta.get("training", {})
    epochs, start = int(training.get("epochs", 0)), int(training.get("schedule_start") or 0)
    return {"stage_epochs": [start, epochs - start] if start else [epochs],
            "iw_samples": int(training.get("iw_samples", 1)),
            "iw_estimator": str(training.get("iw_estimator", "iwae")),
            "architecture": meta["architecture"]}


def bench_training(steps: int, repeats: int, recipe: dict) -> dict:
    """recipe: shipped_recipe's dict."""
    import torch

    from vaegen.training.config import TrainConfig
    from vaegen.training.model import ModelConfig

    torch.set_num_threads(THREADS)
    data = torch.rand((steps * 256, 1, 28, 28), generator=torch.Generator().manual_seed(0)).bernoulli()

    def timer(make_step, batch=128):
        def run():
            step = make_step()
            for i in range(3):  # warm the allocator and the kernels
                step(data[i * batch : (i + 1) * batch])
            start = time.perf_counter()
            for i in range(steps):
                step(data[i * batch : (i + 1) * batch])
            return steps * batch / (time.perf_counter() - start)
        return run

    shipped = ModelConfig.from_dict(recipe["architecture"])
    contenders = {
        CLASSIC_ROW: timer(_classic_step),
        DEFAULT_ROW: timer(_vaegen_step(ModelConfig()), TrainConfig().batch_size),
        CONV_ROW: timer(_vaegen_step(ModelConfig(arch="conv", hidden=512))),
        STAGE1_ROW: timer(_vaegen_step(shipped)),
    }
    if len(recipe["stage_epochs"]) > 1:
        k, estimator = recipe["iw_samples"], recipe.get("iw_estimator", "iwae")
        contenders[stage2_row(k, estimator)] = timer(_vaegen_step(shipped, iw_samples=k, estimator=estimator))
    raw = alternate(contenders, repeats, warmup=0)
    out = {}
    for name, rates in raw.items():
        ips = median(rates)
        out[name] = {"images_per_s": ips, "s_per_epoch": 60000 / ips}
    base = out[CLASSIC_ROW]["s_per_epoch"]
    for name in out:
        out[name]["ratio_to_classic"] = out[name]["s_per_epoch"] / base
    return out


def _classic_step():
    """A fresh classic model's training step."""
    import torch
    from classic_vae import Classic  # pytorch/examples' VAE, as the time-to-quality section trains it

    model = Classic()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    noise = torch.Generator().manual_seed(1)

    def step(x):
        loss = model.loss(x, noise) / len(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def _vaegen_step(cfg, iw_samples=1, estimator="iwae"):
    """A maker of fresh vaegen models' training steps, the training loop's loss and optimizer."""
    import torch

    from vaegen.training.loop import adam
    from vaegen.training.model import VAE
    from vaegen.training.objective import batch_loss

    def make():
        model = VAE(cfg)
        opt = adam(model, 1e-3)
        noise = torch.Generator().manual_seed(1)

        def step(x):
            loss, _, _ = batch_loss(model, model, x, 1.0, iw_samples, noise, estimator=estimator)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step
    return make
