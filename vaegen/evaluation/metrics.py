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


def importance_weighted(model: OnnxVAE, images: np.ndarray, *, k: int, seed: int = 0,
                        progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Each image's importance-weighted NLL bound with k samples (Burda et al.
    2015), in nats: images [N, C, H, W] as the bundle's likelihood models them
    -> {"nll" [N], "recon" [N] (-E_q log p(x|z) over the k draws), "mu", "logvar" [N, D]}.

    The noise comes from one generator seeded `seed`, k x D draws per image in
    the images' order, so an image's bound depends on its place in the batch,
    and the same images in the same order give the same numbers. `vaegen
    evaluate` (evaluate below) and `vaegen score` (vaegen.evaluation.scores)
    both run this. The k latents of several images go through the decoder in
    one call of about model.batch_size rows: the shipped MLP's bound at k=100
    then ran 1.5 times as fast as with a call per image, on 2 busy cores (the
    conv decoder's time is its arithmetic, and stayed the same)."""
    n = len(images)
    mu, logvar = model.encode(images)
    rng = np.random.default_rng(seed)
    flat = images.reshape(n, -1)
    nll, recon = np.empty(n), np.empty(n)
    per_call = max(1, model.batch_size // k)
    for start in range(0, n, per_call):
        stop = min(n, start + per_call)
        # One draw of (m k, D) is the same stream as m draws of (k, D) in turn.
        eps = rng.standard_normal(((stop - start) * k, mu.shape[1]), dtype=np.float32)
        log_w, log_px = log_importance_weights(model, flat[start:stop], mu[start:stop], logvar[start:stop],
                                               eps.reshape(stop - start, k, -1))
        top = log_w.max(axis=1, keepdims=True)
        nll[start:stop] = -(top[:, 0] + np.log(np.exp(log_w - top).mean(axis=1)))
        recon[start:stop] = -log_px.mean(axis=1)
        if progress:
            progress(stop - start)
    return {"nll": nll, "recon": recon, "mu": mu, "logvar": logvar}


def log_importance_weights(model: OnnxVAE, x: np.ndarray, mu: np.ndarray, logvar: np.ndarray,
                           eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), z_k = mu + exp(logvar / 2) eps_k,
    for m images at once: x [m, P], mu/logvar [m, D], eps [m, k, D] -> (log w [m, k], log p(x|z) [m, k]), float64."""
    m, k, d = eps.shape
    z = (mu[:, None] + np.exp(0.5 * logvar)[:, None] * eps).astype(np.float32)
    likelihood = get_likelihood(model.bundle.likelihood)
    names = list(likelihood.parameters)
    parts = list(model.decode_outputs(z.reshape(m * k, d), names))
    parameters = [np.concatenate([p[i] for p in parts]).reshape(m, k, -1) for i in range(len(names))]
    log_px = np.stack([likelihood.log_likelihood(*(p[j] for p in parameters), x[j]) for j in range(m)])
    z64, eps64 = z.astype(np.float64), eps.astype(np.float64)
    log_pz = -0.5 * (z64**2 + LOG_2PI).sum(axis=2)
    log_qz = -0.5 * (eps64**2 + logvar.astype(np.float64)[:, None] + LOG_2PI).sum(axis=2)
    return log_px + log_pz - log_qz, log_px


def bits_per_dim(nats: np.ndarray | float, dims: int) -> np.ndarray | float:
    """Nats per image -> bits per dimension (value): nats / (dims ln 2)."""
    return nats / (dims * math.log(2))


def evaluate(model: OnnxVAE, images: np.ndarray, *, k: int = 1000, seed: int = 0,
             progress: Callable[[int], None] | None = None) -> dict:
    """Evaluate images [N, C, H, W] as the bundle's likelihood models them
    (vaegen.likelihoods.model_input: float32 0/1, or levels k/255): nats per image,
    and the NLL in bits per dimension (nll / (C H W ln 2))."""
    n = len(images)
    start = time.perf_counter()
    bound = importance_weighted(model, images, k=k, seed=seed, progress=progress)
    seconds = time.perf_counter() - start
    mu, logvar, nll, recon = bound["mu"], bound["logvar"], bound["nll"], bound["recon"]
    kl = 0.5 * (mu.astype(np.float64) ** 2 + np.exp(logvar.astype(np.float64)) - 1 - logvar).sum(axis=1)
    variance = mu.astype(np.float64).var(axis=0) if n > 1 else np.zeros(mu.shape[1])
    dims = int(np.prod(images.shape[1:]))
    return {
        "images": n,
        "k": k,
        "nll": float(nll.mean()),
        "nll_bits_per_dim": float(bits_per_dim(nll.mean(), dims)) if n else float("nan"),
        "likelihood": model.bundle.likelihood,
        "neg_elbo": float((recon + kl).mean()),
        "recon": float(recon.mean()),
        "kl": float(kl.mean()),
        "active_units": int((variance > ACTIVE_THRESHOLD).sum()),
        "latent_dim": int(mu.shape[1]),
        "seconds": seconds,
        "images_per_s": n / seconds if seconds > 0 else float("inf"),
    }
