"""Latent-space arithmetic in numpy: prior draws, lerp and slerp paths,
traversals and the 2-D manifold grid. numpy only.

The graphs hold no random op: all noise is drawn here from seeded generators,
so the same seed gives the same images on every provider and every run.
"""

from __future__ import annotations

import numpy as np


def sample_prior(n: int, latent_dim: int, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
    """n draws from N(0, temperature^2 I): float32 [n, latent_dim]."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, latent_dim), dtype=np.float32) * np.float32(temperature)).astype(np.float32)


def lerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """`steps` points on the straight line from a to b, ends included: [steps, D]."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float64)[:, None]
    return ((1 - t) * a[None].astype(np.float64) + t * b[None].astype(np.float64)).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Spherical interpolation (White 2016): the path keeps a typical norm
    under a Gaussian prior. Falls back to lerp when a and b are parallel."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    if na == 0 or nb == 0:
        return lerp(a, b, steps)
    cos = np.clip(np.dot(a64 / na, b64 / nb), -1.0, 1.0)
    omega = np.arccos(cos)
    if np.sin(omega) < 1e-6:
        return lerp(a, b, steps)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    path = (np.sin((1 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega)
    return path.astype(np.float32)


def traversal(base: np.ndarray, steps: int, span: float = 3.0, dims: list[int] | None = None) -> np.ndarray:
    """Vary each latent dimension of `base` in turn over [-span, span]:
    [len(dims) * steps, D], one row of `steps` per dimension."""
    dims = list(range(base.shape[0])) if dims is None else dims
    values = np.linspace(-span, span, steps, dtype=np.float32)
    out = np.repeat(base[None].astype(np.float32), len(dims) * steps, axis=0)
    for row, d in enumerate(dims):
        out[row * steps : (row + 1) * steps, d] = values
    return out


def manifold_2d(steps: int, edge: float = 0.05) -> np.ndarray:
    """Kingma & Welling's figure: a steps x steps grid of 2-D latents placed at
    Gaussian quantiles, so equal areas of prior mass get equal room."""
    from statistics import NormalDist  # imported here: it costs the other commands' start-up

    quantiles = np.linspace(edge, 1 - edge, steps)
    values = np.array([NormalDist().inv_cdf(q) for q in quantiles], dtype=np.float32)
    ys, xs = np.meshgrid(values[::-1], values, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
