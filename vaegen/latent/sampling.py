"""Latent-space arithmetic in numpy: prior draws (N(0, I), and the fitted
prior: GaussianMixture, one mixture, and FittedPrior, the overall mixture
with one per class), lerp and slerp paths, traversals and the 2-D manifold
grid. numpy only.

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


class GaussianMixture:
    """A Gaussian mixture over latents, for sampling and density: weights
    [K] (summing to 1), means [K, D], and each covariance by its lower
    Cholesky factor scale_tril [K, D, D] (covariance = L L^T). Fitted by
    vaegen.latent.fit; sampled here with numpy alone. Keeping L, not the
    covariance, saves a factorisation at every start of `vaegen sample`."""

    def __init__(self, weights: np.ndarray, means: np.ndarray, scale_tril: np.ndarray):
        self.weights = np.asarray(weights, np.float64)
        # float32 as stored in prior.npy stays float32 (no copy at every start); other input becomes float64
        self.means, self.scale_tril = (a if isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64)
                                       else np.asarray(a, np.float64) for a in (means, scale_tril))
        k, d = self.means.shape
        if self.weights.shape != (k,) or self.scale_tril.shape != (k, d, d):
            raise ValueError(f"mixture arrays disagree: weights {self.weights.shape}, means {self.means.shape}, "
                             f"scale_tril {self.scale_tril.shape}")
        if not (np.isfinite(self.weights).all() and np.isfinite(self.means).all()
                and np.isfinite(self.scale_tril).all()):
            raise ValueError("mixture parameters are not all finite")
        if (self.weights < 0).any() or abs(self.weights.sum() - 1.0) > 1e-6:
            raise ValueError("mixture weights must be non-negative and sum to 1")
        diagonals = np.diagonal(self.scale_tril, axis1=1, axis2=2)
        if (diagonals <= 0).any() or np.triu(self.scale_tril, 1).any():
            raise ValueError("scale_tril must be lower triangular with a positive diagonal (a Cholesky factor)")

    @classmethod
    def from_covariances(cls, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray) -> GaussianMixture:
        """From full covariances [K, D, D]; LinAlgError when one is not positive definite."""
        return cls(weights, means, np.linalg.cholesky(np.asarray(covariances, np.float64)))

    @property
    def covariances(self) -> np.ndarray:
        """[K, D, D], L L^T."""
        return self.scale_tril @ self.scale_tril.transpose(0, 2, 1)

    @property
    def components(self) -> int:
        return len(self.weights)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, rng: np.random.Generator, temperature: float = 1.0) -> np.ndarray:
        """n draws, float32 [n, D]: a component by its weight, then
        mean + temperature * L eps. The temperature shrinks each draw towards
        its component's mean, so the mixture's modes stay where they are."""
        component = rng.choice(self.components, size=n, p=self.weights / self.weights.sum())
        eps = rng.standard_normal((n, self.dim))
        z = np.empty((n, self.dim))
        # L eps per draw, in chunks: einsum's own loops beat a BLAS call per
        # component for small n (no thread wake-ups), and a chunk bounds the
        # gathered factors to 256 x D x D floats for any n.
        for start in range(0, n, 256):
            rows = slice(start, start + 256)
            z[rows] = np.einsum("nij,nj->ni", self.scale_tril[component[rows]], eps[rows])
        z *= temperature
        z += self.means[component]
        return z.astype(np.float32)

    def log_density(self, z: np.ndarray) -> np.ndarray:
        """log p(z) under the mixture, float64 [N], for z [N, D]."""
        z = np.asarray(z, np.float64)
        per_component = np.empty((len(z), self.components))
        for k in range(self.components):
            solved = np.linalg.solve(self.scale_tril[k], (z - self.means[k]).T)  # L^-1 (z - m): [D, N]
            log_det = 2.0 * np.log(np.diag(self.scale_tril[k])).sum()
            per_component[:, k] = (np.log(self.weights[k]) - 0.5 * (solved**2).sum(axis=0)
                                   - 0.5 * (log_det + self.dim * np.log(2 * np.pi)))
        top = per_component.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(per_component - top).sum(axis=1, keepdims=True)))[:, 0]


class FittedPrior:
    """The prior a bundle's prior.npy holds: one mixture over the whole
    training set and, when the data had labels, one per class."""

    def __init__(self, mixture: GaussianMixture, classes: list[str] | None = None,
                 per_class=None, facts: dict | None = None):
        """`per_class` is a list of mixtures, or a function that makes it on
        first use (reading a bundle, `vaegen sample` without --label never
        pays for checking the class mixtures)."""
        self.mixture = mixture
        self.classes = list(classes or [])
        self._per_class = per_class if callable(per_class) else list(per_class or [])
        self.facts = dict(facts or {})
        if not callable(per_class) and len(self.classes) != len(self._per_class):
            raise ValueError(f"{len(self.classes)} class names for {len(self._per_class)} class mixtures")

    @property
    def per_class(self) -> list[GaussianMixture]:
        if callable(self._per_class):
            self._per_class = list(self._per_class())
        return self._per_class

    def class_index(self, label: int | str) -> int:
        """A class by index or by name; ValueError when there is no such class."""
        if not self.classes:
            raise ValueError("the prior has no classes")
        if isinstance(label, str) and label in self.classes:
            return self.classes.index(label)
        is_index = isinstance(label, (int, np.integer)) and not isinstance(label, bool)
        if is_index or (isinstance(label, str) and label.strip().isdigit()):
            index = int(label)
            if 0 <= index < len(self.classes):
                return index
        raise ValueError(f"no class {label!r}; the classes are {', '.join(self.classes)}")

    def sample(self, n: int, seed: int = 0, temperature: float = 1.0, label: int | str | None = None) -> np.ndarray:
        """n latents from the whole mixture, or from one class's; float32 [n, D]."""
        rng = np.random.default_rng(seed)
        mixture = self.mixture if label is None else self.per_class[self.class_index(label)]
        return mixture.sample(n, rng, temperature)

    def sample_per_class(self, n: int, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        """n latents of each class in turn: [len(classes) * n, D], a row per class in a grid."""
        rng = np.random.default_rng(seed)
        return np.concatenate([m.sample(n, rng, temperature) for m in self.per_class])
