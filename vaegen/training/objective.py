"""The objective the VAE is trained on, beside the model it scores.

- The negative ELBO (Kingma & Welling 2014, eq. 10 and Appendix B): the
  reconstruction term (the model's likelihood, vaegen.likelihoods: a
  Bernoulli per binarized pixel, or a discretized logistic per 8-bit value)
  plus the Gaussian KL in closed form, summed over pixels and latent
  dimensions, in nats per image. `beta` weights the KL.
- The importance-weighted bound (Burda et al. 2015, eq. 8) with k samples per
  image, log (1/k) sum_i w_i, w_i = p(x, z_i) / q(z_i|x).
- Its doubly reparameterized gradient for the encoder (DReG, Tucker et al.
  2018, eq. 5), whose signal does not fade as k grows.
- The held-out negative ELBO reported after every epoch.

Imports torch, the model's types and the likelihoods' constants only.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vaegen.likelihoods import EVAL_SEED
from vaegen.training.model import VAE


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per image, summed over dimensions: (B,).

    Kingma & Welling (2014), Appendix B: -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def log_normal(z: torch.Tensor, mu: torch.Tensor | float = 0.0, logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed over the last dimension."""
    logvar = torch.as_tensor(logvar, dtype=z.dtype, device=z.device)
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(dim=-1)


def negative_elbo(nll, mu, logvar, params, x, beta: float = 1.0):
    """(loss, mean reconstruction nats, mean KL nats): the beta-weighted negative
    ELBO, one sample per image; nll(params, x) is -log p(x|z) per image (B,)."""
    recon, kl = nll(params, x), gaussian_kl(mu, logvar)
    return (recon + beta * kl).mean(), recon.mean(), kl.mean()


def importance_weighted_bound(nll, mu, logvar, z, params, x, beta: float = 1.0, dreg: bool = False):
    """(loss, mean reconstruction nats, mean log q - log p, log_w (K, B)) for z (K, B, D).

    The loss is minus the bound, log (1/K) sum_i w_i, averaged over the batch
    (Burda et al. 2015). With `dreg`, q's parameters are cut out of
    log q(z_i|x), so only the path through z_i reaches the encoder (Tucker et
    al. 2018); the caller scales that path by w_i (see `batch_loss`).
    """
    k, b = z.shape[0], z.shape[1]
    recon = nll(params, x.repeat(k, 1, 1, 1)).view(k, b)
    q_mu, q_logvar = (mu.detach(), logvar.detach()) if dreg else (mu, logvar)
    kl_terms = log_normal(z, q_mu, q_logvar) - log_normal(z)  # log q(z|x) - log p(z), (K, B)
    log_w = -recon - beta * kl_terms
    bound = torch.logsumexp(log_w, dim=0) - math.log(k)
    return -bound.mean(), recon.mean(), kl_terms.mean(), log_w


def batch_loss(model, vae: VAE, x: torch.Tensor, beta: float, iw_samples: int, gen: torch.Generator,
               bf16: bool = False, estimator: str = "iwae"):
    """(loss to minimise, mean reconstruction nats, mean KL nats) for a batch x.

    `model` is the VAE `vae` or its DistributedDataParallel wrapper: the
    forward pass goes through model(...) so DDP can synchronise the gradients.

    With iw_samples > 1 the loss is the importance-weighted bound. Its
    decoder gradient is sum_i w_i grad log w_i (w normalised weights); for
    the encoder, `estimator="dreg"` gives the doubly reparameterized gradient
    (Tucker et al. 2018), sum_i w_i^2 d log w_i/dz_i dz_i/dphi: q's
    parameters are cut out of log q(z|x), and a hook scales the gradient
    reaching each z_i by w_i once more.
    """
    b = x.shape[0]
    latent_dim = vae.cfg.latent_dim
    nll = vae.likelihood.training_nll
    shape = (b, latent_dim) if iw_samples <= 1 else (iw_samples, b, latent_dim)
    eps = torch.randn(shape, generator=gen, device=x.device)
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=bf16):
        mu, logvar, z, logits = model(x, eps)
    if iw_samples <= 1:
        return negative_elbo(nll, mu.float(), logvar.float(), logits.float(), x, beta)
    dreg = estimator == "dreg" and z.requires_grad
    weights = []  # filled once the forward pass has them; read by the hook during backward
    if dreg:
        z.register_hook(lambda grad: grad * weights[0].to(grad.dtype).unsqueeze(-1))
    loss, recon, kl, log_w = importance_weighted_bound(nll, mu.float(), logvar.float(), z.float(), logits.float(), x,
                                                       beta, dreg=dreg)
    if dreg:
        weights.append(torch.softmax(log_w.detach(), dim=0))  # normalised w_i, (K, B)
    return loss, recon, kl


# Held-out images scored at a time: the likelihood's temporaries are several floats per value, so a chunk
# of 64x64 RGB images costs ~0.2 MB an image; 256 of them keep the epoch's end within the training step's memory.
HELD_OUT_CHUNK = 256


@torch.inference_mode()
def held_out_elbo(model: VAE, images, device: torch.device) -> dict:
    """Negative ELBO on held-out uint8 images with a fixed noise draw: nats per image.

    The images (an array, or a split of a memory-mapped folder) are prepared
    HELD_OUT_CHUNK at a time from one Generator, the same values as in one piece,
    so a large held-out set costs one float chunk, not a float copy of itself."""
    model.eval()
    gen = torch.Generator(device=device).manual_seed(EVAL_SEED)  # the same eps after every epoch
    rng = np.random.default_rng(EVAL_SEED)  # the same binarization after every epoch
    recon_sum = kl_sum = 0.0
    for start in range(0, len(images), HELD_OUT_CHUNK):
        x = torch.from_numpy(model.likelihood.prepare(np.asarray(images[start : start + HELD_OUT_CHUNK]), rng)).to(device)
        mu, logvar = model.encode(x)
        eps = torch.randn(mu.shape, generator=gen, device=device)
        logits = model.decode(model.reparameterize(mu, logvar, eps))
        recon_sum += model.likelihood.nll(logits, x).sum().item()
        kl_sum += gaussian_kl(mu, logvar).sum().item()
    model.train()
    n = len(images)
    return {"test_neg_elbo": (recon_sum + kl_sum) / n, "test_recon": recon_sum / n, "test_kl": kl_sum / n}
