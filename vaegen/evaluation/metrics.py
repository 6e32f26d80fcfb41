"""Likelihood metrics over the ONNX graphs, in nats per image and in bits per
dimension: the negative ELBO (reconstruction + KL), the importance-weighted
NLL bound of Burda et al. (2015) with k samples, and the number of active
latent units. The likelihood is the bundle's, scored by its numpy half
(vaegen.likelihoods: a Bernoulli per binarized pixel, or the discretized
logistic over 256 levels per 8-bit value).

Imports numpy, vaegen.runtime (the graphs) and vaegen.likelihoods only; the log-sum-exp is taken in float64.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from vaegen.likelihoods import get_likelihood
from vaegen.runtime import OnnxVAE

LOG_2PI = math.log(2 * math.pi)
ACTIVE_THRESHOLD = 0.01  # Burda et al.: a unit is active when Cov_x(E_q[z_u]) > 0.01


def reconstruction_log_likelihood(model: OnnxVAE, z: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log p(x|z_k) for latents z [K, D] and one image x [P] (flattened): [K] float64."""
    k = len(z)
    likelihood = get_likelihood(model.bundle.likelihood)
    names = list(likelihood.parameters)
    parts = list(model.decode_outputs(z, names))
    parameters = [np.concatenate([p[i] for p in parts]).reshape(k, -1) for i in range(len(names))]
    return likelihood.log_likelihood(*parameters, x)


def log_importance_weights(model: OnnxVAE, x: np.ndarray, mu: np.ndarray, logvar: np.ndarray,
                           eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x) for one image.

    x [P], mu/logvar [D], eps [K, D] -> (log w [K], log p(x|z) [K]), float64.
    """
    std = np.exp(0.5 * logvar)
    z = (mu + std * eps).astype(np.float32)
    log_px = reconstruction_log_likelihood(model, z, x)
    z64, eps64 = z.astype(np.float64), eps.astype(np.float64)
    log_pz = -0.5 * (z64**2 + LOG_2PI).sum(axis=1)
    log_qz = -0.5 * (eps64**2 + logvar.astype(np.float64) + LOG_2PI).sum(axis=1)
    return log_px + log_pz - log_qz, log_px


def logmeanexp(a: np.ndarray) -> float:
    top = float(np.max(a))
    return top + math.log(float(np.mean(np.exp(a - top))))


def evaluate(model: OnnxVAE, images: np.ndarray, *, k: int = 1000, seed: int = 0,
             progress: Callable[[int], None] | None = None) -> dict:
    """Evaluate images [N, C, H, W] as the bundle's likelihood models them
    (vaegen.likelihoods.model_input: float32 0/1, or levels k/255): nats per image,
    and the NLL in bits per dimension (nll / (C H W ln 2))."""
    n = len(images)
    start = time.perf_counter()
    mu, logvar = model.encode(images)
    rng = np.random.default_rng(seed)
    flat = images.reshape(n, -1)
    nll = np.empty(n)
    recon = np.empty(n)
    for i in range(n):
        eps = rng.standard_normal((k, mu.shape[1]), dtype=np.float32)
        log_w, log_px = log_importance_weights(model, flat[i], mu[i], logvar[i], eps)
        nll[i] = -logmeanexp(log_w)
        recon[i] = -float(np.mean(log_px))
        if progress:
            progress(1)
    seconds = time.perf_counter() - start
    kl = 0.5 * (mu.astype(np.float64) ** 2 + np.exp(logvar.astype(np.float64)) - 1 - logvar).sum(axis=1)
    variance = mu.astype(np.float64).var(axis=0) if n > 1 else np.zeros(mu.shape[1])
    return {
        "images": n,
        "k": k,
        "nll": float(nll.mean()),
        "nll_bits_per_dim": float(nll.mean()) / (flat.shape[1] * math.log(2)) if n else float("nan"),
        "likelihood": model.bundle.likelihood,
        "neg_elbo": float((recon + kl).mean()),
        "recon": float(recon.mean()),
        "kl": float(kl.mean()),
        "active_units": int((variance > ACTIVE_THRESHOLD).sum()),
        "latent_dim": int(mu.shape[1]),
        "seconds": seconds,
        "images_per_s": n / seconds if seconds > 0 else float("inf"),
    }
