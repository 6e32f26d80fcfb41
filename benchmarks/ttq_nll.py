"""The time-to-quality measure shared by the benchmark's children: test NLL by
the importance-weighted bound (k=100) on the first 2,000 MNIST test images,
binarized as `vaegen evaluate` binarizes them, so the last point of a curve
can be checked against `vaegen evaluate --k 100 --limit 2000`.

A curve's clock stops while a point is measured: `Clock` counts the seconds of
the command itself, not of its evaluations.
"""

from __future__ import annotations

import time

import torch

K, IMAGES = 100, 2000


class Clock:
    """Seconds since the child started, less the seconds spent in `pause()`."""

    def __init__(self):
        self.start = time.perf_counter()
        self.paused = 0.0

    def now(self) -> float:
        return time.perf_counter() - self.start - self.paused

    def pause(self):
        clock = self

        class _Pause:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                clock.paused += time.perf_counter() - self.t
        return _Pause()


def test_images(data_dir: str | None) -> torch.Tensor:
    from vaegen.data.load import evaluation_images

    return torch.from_numpy(evaluation_images("mnist", "test", data_dir, (1, 28, 28), limit=IMAGES))


@torch.inference_mode()
def iw_nll(encode, decode, x: torch.Tensor, k: int = K, chunk: int = 100) -> float:
    """-log p(x) estimated with k importance samples (the training loop's
    importance_weighted_bound), nats per image.
    encode: x (B, 1, 28, 28) -> mu, logvar (B, D); decode: z (N, D) -> logits of N images."""
    from vaegen.likelihoods import get_likelihood
    from vaegen.training.objective import importance_weighted_bound

    nll = get_likelihood("bernoulli").nll

    gen = torch.Generator().manual_seed(0)
    total = 0.0
    for s in range(0, len(x), chunk):
        xb = x[s : s + chunk]
        mu, logvar = encode(xb)
        z = mu + torch.exp(0.5 * logvar) * torch.randn((k, *mu.shape), generator=gen)
        logits = decode(z.reshape(-1, z.shape[-1])).reshape(-1, *xb.shape[1:])
        loss = importance_weighted_bound(nll, mu, logvar, z, logits, xb)[0]  # minus the bound, averaged over xb
        total += loss.item() * len(xb)
    return total / len(x)
