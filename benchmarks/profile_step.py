"""Where a training step's time goes: torch.profiler over the steps of a recipe,
and the data path (gather, scale, binarize) timed apart from the model.

    python benchmarks/profile_step.py [--arch conv|mlp] [--hidden H] [--batch-size B] [--steps N]
                                      [--threads T] [--compile] [--channels-last]

Prints the profiler's table of the heaviest operators (self CPU time) and a
split of one step into data, forward, backward and the optimizer. Random
images stand in for MNIST: a step's cost does not depend on the pixels.
"""

from __future__ import annotations

import argparse
import time

import torch

from vaegen.likelihoods.bernoulli import binarize_batch
from vaegen.training.loop import adam
from vaegen.training.model import VAE, ModelConfig
from vaegen.training.objective import batch_loss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="conv", choices=["conv", "mlp"])
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--latent-dim", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rows", type=int, default=14, help="operators to list")
    ap.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's choice]")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (its compile time is shown)")
    ap.add_argument("--channels-last", action="store_true", help="conv: NHWC memory format")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ModelConfig(arch=args.arch, hidden=args.hidden, latent_dim=args.latent_dim)
    model = VAE(cfg)
    opt = adam(model, 1e-3)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if args.compile else model
    images = torch.randint(0, 256, (60000, 1, 28, 28), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(1)
    split = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}

    def step(timed: bool) -> None:
        t0 = time.perf_counter()
        idx = torch.randint(0, len(images), (args.batch_size,), generator=gen)
        with torch.profiler.record_function("data: gather, scale, binarize"):
            x = binarize_batch(images[idx], gen)
            if args.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        t1 = time.perf_counter()
        loss, _, _ = batch_loss(net, net, x, 1.0, 1, gen)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        if timed:
            for key, dt in zip(split, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                split[key] += dt

    start = time.perf_counter()
    step(False)
    if args.compile:
        print(f"first step (with torch.compile's compilation): {time.perf_counter() - start:.1f} s")
    for _ in range(10):  # warm-up: allocator, kernels chosen
        step(False)
    for _ in range(args.steps):
        step(True)
    total = sum(split.values())
    print(f"{args.arch} hidden {args.hidden}, batch {args.batch_size}, {torch.get_num_threads()} threads: "
          f"{1000 * total / args.steps:.1f} ms a step, {args.batch_size * args.steps / total:,.0f} images/s")
    print("  " + ", ".join(f"{k} {100 * v / total:.1f}%" for k, v in split.items()))

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step(False)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
