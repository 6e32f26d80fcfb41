"""Likelihood metrics over the ONNX graphs, in nats per image and in bits per
dimension: the negative ELBO (reconstruction + KL), the importance-weighted
NLL bound of Burda et al. (2015) with k samples, and the number of active
latent units. The likelihood is the bundle's: a Bernoulli per binarized pixel,
or the discretized logistic over 256 levels per 8-bit value (the same
formula as vaegen.training.objective, in numpy).

Imports numpy and vaegen.runtime (the graphs) only; the log-sum-exp is taken in float64.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from vaegen.runtime import OnnxVAE

LOG_2PI = math.log(2 * math.pi)
ACTIVE_THRESHOLD = 0.01  # Burda et al.: a unit is active when Cov_x(E_q[z_u]) > 0.01


def bernoulli_log_likelihood(logits: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log p(x|z) per row, summed over pixels: -softplus(-(2x-1) l), stable for any l.

    logits [K, P] float32, x [P] in {0, 1} -> [K] float64. Elementwise numpy
    only: a BLAS call here (logits @ x) wakes OpenBLAS's threads, which then
    spin against ONNX Runtime's and nearly doubled each decoder call.
    """
    t = logits * (1.0 - 2.0 * x).astype(np.float32)  # -(2x-1) l
    y = np.abs(t)
    np.negative(y, out=y)
    np.exp(y, out=y)
    np.log1p(y, out=y)  # log1p(exp(-|t|))
    y += np.maximum(t, 0, out=t)  # softplus(t)
    return -y.sum(axis=1, dtype=np.float64)


def _log_sigmoid(t: np.ndarray) -> np.ndarray:
    """log sigmoid(t) = -softplus(-t), stable for any t (float64)."""
    return -(np.maximum(-t, 0) + np.log1p(np.exp(-np.abs(t))))


def logistic_log_likelihood(loc: np.ndarray, log_scale: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log P(x|z) per row under the discretized logistic, summed over values.

    loc, log_scale [K, P], x [P] in levels k/255 -> [K] float64. Level k has
    the mass on [x - 1/510, x + 1/510], the first level all below, the last
    all above; sigmoid(a) - sigmoid(b) = sigmoid(a) sigmoid(-b) (1 - exp(b - a))
    keeps the log exact at any scale (vaegen.training.objective, the same in torch).
    """
    level = np.rint(np.asarray(x, np.float64) * 255.0)
    inv_s = np.exp(-log_scale.astype(np.float64))
    centered = level / 255.0 - loc
    a = inv_s * (centered + HALF_LEVEL)
    b = inv_s * (centered - HALF_LEVEL)
    low, high = level <= 0, level >= 255
    log_p = np.where(high, 0.0, _log_sigmoid(a)) + np.where(low, 0.0, _log_sigmoid(-b))
    log_p += np.where(low | high, 0.0, np.log(-np.expm1(-2.0 * HALF_LEVEL * inv_s)))
    return log_p.sum(axis=1)


HALF_LEVEL = 0.5 / 255


def reconstruction_log_likelihood(model: OnnxVAE, z: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log p(x|z_k) for latents z [K, D] and one image x [P] (flattened): [K] float64."""
    k = len(z)
    if model.bundle.likelihood == "bernoulli":
        logits = np.concatenate(list(model.decode_batches(z, output="logits"))).reshape(k, -1)
        return bernoulli_log_likelihood(logits, x)
    parts = list(model.decode_outputs(z, ["loc", "log_scale"]))
    loc = np.concatenate([p[0] for p in parts]).reshape(k, -1)
    log_scale = np.concatenate([p[1] for p in parts]).reshape(k, -1)
    return logistic_log_likelihood(loc, log_scale, x)


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
    (model_input: float32 0/1, or levels k/255): nats per image,
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
