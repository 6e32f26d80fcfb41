"""A sweep of colour VAE recipes on a 64x64 RGB .npz (prep_emoji.py), judged by Frechet distance.

One process per config trains in parallel on one device; the main process trains the judge (a small
CNN on the training split only) meanwhile, then scores each config as it finishes and rewrites
OUTDIR/results.json, OUTDIR/montage.png and OUTDIR/log.txt; at the end OUTDIR/checkpoints.tar holds
the best configs' fp16 state_dicts that fit in 15.5 MB. Every stage is bounded by --budget-s.

  python3 colour_sweep.py --data emoji.npz --out OUT --budget-s 420 --device cuda
  python3 measure_cpu.py --threads 1 --configs anchor,base,mix5   # CPU img/s per config (dev machine)

Per-config files (JSON, log, images, checkpoint) go to a scratch folder outside OUTDIR, since at
most 8 files come back from the device machine. A config that fails (an exception, a non-finite
loss, a dead process) is reported in results.json with its error; the others go on.

Held-out rule: index % 10 == 0 (vaegen's folder rule). FD rows: floor (two interleaved halves of the
held-out set), reconstructions (posterior means decoded), fitted-GMM samples, N(0, I) samples, at
n = half the held-out set and at n = all of it. Standalone: imports torch, numpy, Pillow only.
"""

import argparse
import dataclasses
import io
import json
import lzma
import math
import os
import shutil
import tarfile
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MIN_LOG_SCALE, MAX_LOG_SCALE = -7.0, 3.0
HALF_LEVEL = 1.0 / 510.0  # half the width of one of 256 levels on [0, 1]


@dataclass
class Config:
    name: str
    arch: str = "resconv"  # resconv | vanilla (PyTorch-VAE's VanillaVAE, the anchor)
    channels: tuple = (32, 64, 128, 256)  # one per level; 64x64 -> 32, 16, 8, 4
    blocks: int = 1  # residual blocks per level
    latent_dim: int = 128
    beta: float = 0.3
    # logistic (per value) | shared (one scale per image and channel: a calibrated decoder, Rybkin et al. 2021)
    # | mix (coupled mixture, PixelCNN++) | mse (anchor)
    likelihood: str = "logistic"
    mixtures: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    kl_warmup: float = 0.1  # share of the steps over which beta ramps up from 0
    cpu_img_s: float = 0.0  # training img/s measured on 2 shared CPU cores (--measure-cpu)
    epochs: int = 0  # 0: --cpu-minutes of 2-core training at cpu_img_s
    inject: str = ""  # tests of the failure paths: "nan" (a non-finite loss), "exit" (the process dies)


# cpu_img_s: training img/s on the 2-core dev machine (shared; about +-15%): 2-thread wall speed in a
# quiet moment for base, mix5, wide and the anchor (100, 71, 30, 245); the rest scaled from them by
# --measure-cpu --measure-threads 1 (CPU-time ratios, stable under load); beta and D do not change it.
CONFIGS = {c.name: c for c in [
    Config("base", cpu_img_s=100),
    Config("mix5", likelihood="mix", cpu_img_s=71),
    Config("beta0.1", beta=0.1, cpu_img_s=100),
    Config("beta1", beta=1.0, cpu_img_s=100),
    Config("d64", latent_dim=64, cpu_img_s=100),
    Config("d256", latent_dim=256, cpu_img_s=100),
    Config("narrow", channels=(16, 32, 64, 128), cpu_img_s=250),
    Config("wide", channels=(64, 128, 256, 256), cpu_img_s=30),
    Config("deep", blocks=2, cpu_img_s=67),
    Config("wide-mix-b0.1", channels=(64, 128, 256, 256), likelihood="mix", beta=0.1, cpu_img_s=27),
    Config("anchor", arch="vanilla", likelihood="mse", batch_size=64, lr=0.005, cpu_img_s=245),
    # not in the default list
    Config("mix10", likelihood="mix", mixtures=10, cpu_img_s=44),
    Config("narrow-b0.1", channels=(16, 32, 64, 128), beta=0.1, cpu_img_s=250),
    Config("narrow-b0.1-d64", channels=(16, 32, 64, 128), beta=0.1, latent_dim=64, cpu_img_s=250),
    Config("shared-b0.1", channels=(16, 32, 64, 128), beta=0.1, latent_dim=64, likelihood="shared", cpu_img_s=250),
    Config("shared-b0.03", channels=(16, 32, 64, 128), beta=0.03, latent_dim=64, likelihood="shared", cpu_img_s=250),
    Config("shared-b0.3", channels=(16, 32, 64, 128), beta=0.3, latent_dim=64, likelihood="shared", cpu_img_s=250),
    Config("shared-d128", channels=(16, 32, 64, 128), beta=0.1, likelihood="shared", cpu_img_s=250),
    Config("shared-deep", channels=(16, 32, 64, 128), blocks=2, beta=0.1, latent_dim=64, likelihood="shared",
           cpu_img_s=167),
    Config("shared-lr2e-3", channels=(16, 32, 64, 128), beta=0.1, latent_dim=64, likelihood="shared", lr=2e-3,
           cpu_img_s=250),
    Config("nan-test", inject="nan", cpu_img_s=100),
    Config("exit-test", inject="exit", cpu_img_s=100),
]}
DEFAULT = "base,mix5,beta0.1,beta1,d64,d256,narrow,wide,deep,wide-mix-b0.1,anchor"


# ------------------------------------------------------------------------------------ models

def groups(c):
    return min(32, max(1, c // 8))


class ResBlock(nn.Module):
    """x + conv(silu(gn(conv(silu(gn(x)))))); the last conv starts at zero, so the block starts as identity."""

    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(groups(c), c), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1),
                                  nn.GroupNorm(groups(c), c), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1))
        nn.init.zeros_(self.body[-1].weight)

    def forward(self, x):
        return x + self.body(x)


def level_channels(channels, size, grid=4):
    """Channels per level so that size / 2**levels == grid (the last count repeated, or the list cut)."""
    levels = max(1, int(round(math.log2(size / grid))))
    return [channels[min(i, len(channels) - 1)] for i in range(levels)]


class ResConvVAE(nn.Module):
    """Encoder: pixel-unshuffle (lossless 2x down, no compute at full size), conv, then per level
    `blocks` residual blocks and a stride-2 conv to the next level, down to a 4x4 grid; GN, SiLU,
    a dense layer to (mu, logvar) [B, D]. Decoder mirrors it: dense to the grid, per level blocks
    then nearest 2x upsample + conv (no transposed conv: no checkerboard), then at full size a 3x3
    conv, GN, SiLU and a 1x1 conv to the likelihood's parameters. Plain ONNX ops only."""

    def __init__(self, cfg: Config, shape=(3, 64, 64)):
        super().__init__()
        self.cfg, self.shape = cfg, shape
        c_in, h, w = shape
        chs = level_channels(cfg.channels, h)
        self.grid = (h // 2 ** len(chs), w // 2 ** len(chs))
        enc = [nn.PixelUnshuffle(2), nn.Conv2d(4 * c_in, chs[0], 3, padding=1)]
        for i, c in enumerate(chs):
            enc += [ResBlock(c) for _ in range(cfg.blocks)]
            if i + 1 < len(chs):
                enc.append(nn.Conv2d(c, chs[i + 1], 3, stride=2, padding=1))
        enc += [nn.GroupNorm(groups(chs[-1]), chs[-1]), nn.SiLU(), nn.Flatten()]
        self.encoder = nn.Sequential(*enc)
        flat = chs[-1] * self.grid[0] * self.grid[1]
        self.to_latent = nn.Linear(flat, 2 * cfg.latent_dim)
        self.from_latent = nn.Linear(cfg.latent_dim, flat)
        dec = []
        for i in reversed(range(len(chs))):
            dec += [ResBlock(chs[i]) for _ in range(cfg.blocks)]
            out = chs[i - 1] if i > 0 else chs[0]
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(chs[i], out, 3, padding=1)]
        dec += [nn.GroupNorm(groups(chs[0]), chs[0]), nn.SiLU(), nn.Conv2d(chs[0], self.param_channels(), 1)]
        self.decoder = nn.Sequential(*dec)
        self.top = chs[-1]

    def param_channels(self):
        c = self.shape[0]
        return 2 * c if self.cfg.likelihood in ("logistic", "shared") else self.cfg.mixtures * (1 + 3 * c)

    def encode(self, x):  # x (B, C, H, W) in [0, 1] -> mu, logvar (B, D)
        mu, logvar = self.to_latent(self.encoder(2 * x - 1)).split(self.cfg.latent_dim, dim=1)
        return mu, logvar.clamp(-20.0, 10.0)

    def decode(self, z):  # z (B, D) -> params (B, P, H, W)
        return self.decoder(self.from_latent(z).reshape(-1, self.top, *self.grid))

    @torch.no_grad()
    def init_output_bias(self, mean_rgb):
        """Start every location at the data's mean colour with a scale of 0.1."""
        bias, c = self.decoder[-1].bias, self.shape[0]
        if self.cfg.likelihood in ("logistic", "shared"):
            bias.copy_(torch.cat([mean_rgb, torch.full((c,), math.log(0.1))]))
        else:
            k = self.cfg.mixtures
            bias.zero_()
            bias[k:].view(3, c, k).copy_(torch.stack([mean_rgb[:, None].expand(c, k),
                                                      torch.full((c, k), math.log(0.1)), torch.zeros(c, k)]))

    def log_prob(self, params, x):  # -> log p(x|z) (B,) in nats, float32
        params = params.float()
        if self.cfg.likelihood in ("logistic", "shared"):
            loc, log_scale = params.chunk(2, dim=1)
            if self.cfg.likelihood == "shared":
                log_scale = log_scale.mean((2, 3), keepdim=True).expand_as(loc)
            return logistic_log_prob(loc, log_scale, x).sum((1, 2, 3))
        return mixture_log_prob(params, x, self.cfg.mixtures)

    def pictures(self, params):  # -> {name: picture (B, C, H, W) in [0, 1]}
        params = params.float()
        if self.cfg.likelihood in ("logistic", "shared"):
            return {"loc": params[:, :self.shape[0]].clamp(0, 1)}
        return mixture_pictures(params, self.cfg.mixtures)


class VanillaVAE(nn.Module):
    """PyTorch-VAE's VanillaVAE as its users run it, written from the issue's description: five
    stride-2 3x3 convs 32..512 with BatchNorm and LeakyReLU, latent 128, a mirrored ConvTranspose
    decoder ending in Tanh; images in [-1, 1]; MSE + 0.00025 KL."""

    HIDDEN = (32, 64, 128, 256, 512)

    def __init__(self, cfg: Config, shape=(3, 64, 64)):
        super().__init__()
        self.cfg, self.shape = cfg, shape
        c, layers = shape[0], []
        for h in self.HIDDEN:
            layers += [nn.Conv2d(c, h, 3, stride=2, padding=1), nn.BatchNorm2d(h), nn.LeakyReLU()]
            c = h
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.side = shape[1] // 32
        flat = 512 * self.side * self.side
        self.fc_mu, self.fc_var = nn.Linear(flat, cfg.latent_dim), nn.Linear(flat, cfg.latent_dim)
        self.decoder_input = nn.Linear(cfg.latent_dim, flat)
        rev, layers = self.HIDDEN[::-1], []
        for a, b in zip(rev[:-1], rev[1:], strict=True):
            layers += [nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(b),
                       nn.LeakyReLU()]
        layers += [nn.ConvTranspose2d(32, 32, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(32),
                   nn.LeakyReLU(), nn.Conv2d(32, shape[0], 3, padding=1), nn.Tanh()]
        self.decoder = nn.Sequential(*layers)

    def encode(self, x):
        h = self.encoder(2 * x - 1)
        return self.fc_mu(h), self.fc_var(h).clamp(-20.0, 10.0)

    def decode(self, z):
        return self.decoder(self.decoder_input(z).reshape(-1, 512, self.side, self.side))

    def pictures(self, params):
        return {"mean": (params.float() + 1) / 2}


def build(cfg, shape=(3, 64, 64)):
    return VanillaVAE(cfg, shape) if cfg.arch == "vanilla" else ResConvVAE(cfg, shape)


# ------------------------------------------------------------------------------- likelihoods

def logistic_log_prob(loc, log_scale, x):
    """Discretized logistic log P(x) per value (Salimans et al. 2017), x = k/255:
    log P = [k<255] logsigmoid(a) + [k>0] logsigmoid(-b) + [0<k<255] log(-expm1(-1/(255 s))),
    a = (x + 1/510 - loc)/s, b = (x - 1/510 - loc)/s; log s clamped to [-7, 3]."""
    log_scale = log_scale.clamp(MIN_LOG_SCALE, MAX_LOG_SCALE)
    inv_s = torch.exp(-log_scale)
    a, b = (x + HALF_LEVEL - loc) * inv_s, (x - HALF_LEVEL - loc) * inv_s
    high, low = x > 1 - HALF_LEVEL, x < HALF_LEVEL
    log_p = torch.where(high, 0.0, F.logsigmoid(a)) + torch.where(low, 0.0, F.logsigmoid(-b))
    return log_p + torch.where(high | low, 0.0, torch.log(-torch.expm1(-2 * HALF_LEVEL * inv_s)))


def split_mixture(params, k):
    """(B, K(1+3C), H, W) -> logit_pi (B, K, H, W), loc, log_scale, coef (B, K, 3, H, W)."""
    b, _, h, w = params.shape
    logit_pi = params[:, :k]
    loc, log_scale, coef = params[:, k:].reshape(b, 3, 3, k, h, w).transpose(2, 3).unbind(1)
    return logit_pi, loc, log_scale, torch.tanh(coef)


def mixture_log_prob(params, x, k):
    """Mixture of K discretized logistics per pixel with the channels coupled (PixelCNN++):
    the means of G and B move with the observed R (and G) by tanh-bounded per-component coefficients."""
    logit_pi, loc, log_scale, coef = split_mixture(params, k)
    r, g = x[:, None, 0], x[:, None, 1]  # (B, 1, H, W)
    means = torch.stack([loc[:, :, 0], loc[:, :, 1] + coef[:, :, 0] * r,
                         loc[:, :, 2] + coef[:, :, 1] * r + coef[:, :, 2] * g], dim=2)
    lp = logistic_log_prob(means, log_scale, x[:, None]).sum(2)  # (B, K, H, W)
    return torch.logsumexp(lp + F.log_softmax(logit_pi, dim=1), dim=1).sum((1, 2))


def mixture_pictures(params, k):
    """Each component's location, its G and B moved by its own clipped R and G locations, clipped;
    "mean": those weighted by the mixture weights; "mode": the most probable component's."""
    logit_pi, loc, _, coef = split_mixture(params, k)
    r = loc[:, :, 0].clamp(0, 1)
    g = (loc[:, :, 1] + coef[:, :, 0] * r).clamp(0, 1)
    b = (loc[:, :, 2] + coef[:, :, 1] * r + coef[:, :, 2] * g).clamp(0, 1)
    comp = torch.stack([r, g, b], dim=2)  # (B, K, 3, H, W)
    pi = torch.softmax(logit_pi, dim=1)
    best = pi.argmax(dim=1, keepdim=True)[:, :, None].expand(-1, 1, 3, -1, -1)
    return {"mean": (pi[:, :, None] * comp).sum(1), "mode": comp.gather(1, best)[:, 0]}


def kl_normal(mu, logvar):  # KL(N(mu, var) || N(0, I)) per image, nats
    return 0.5 * (mu.float() ** 2 + logvar.float().exp() - 1 - logvar.float()).sum(1)


def log_normal(z, mu, logvar):
    return -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


# ------------------------------------------------------------------------- the fitted prior

def fit_gmm(z, k=50, iters=100, reg=1e-4, tol=1e-3, seed=0):
    """EM for a full-covariance Gaussian mixture in torch float64 on z's device (sklearn's
    GaussianMixture's model, init and stopping rule: k-means++ then Lloyd as the start, reg_covar
    on the diagonal, stop when the mean log-likelihood moves < tol). sklearn takes ~4 s an EM
    iteration at D=256 on one CPU core, too long for a budgeted sweep; test_sweep.py checks that
    the two reach the same held-out log-likelihood."""
    z = z.double()
    n, d = z.shape
    k = max(1, min(k, n // 2))
    gen = torch.Generator().manual_seed(seed)
    centers = [z[torch.randint(n, (1,), generator=gen)]]
    dist = ((z - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        c = z[torch.multinomial((dist / dist.sum()).cpu().float() + 1e-12, 1, generator=gen).to(z.device)]
        centers.append(c)
        dist = torch.minimum(dist, ((z - c) ** 2).sum(1))
    means = torch.cat(centers)
    for _ in range(10):
        assign = torch.cdist(z, means).argmin(1)
        counts = torch.bincount(assign, minlength=k).double()
        sums = torch.zeros_like(means).index_add_(0, assign, z)
        means = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], means)
    resp, prev, eye = F.one_hot(assign, k).double(), -math.inf, torch.eye(d, dtype=z.dtype, device=z.device)
    for it in range(iters):  # noqa: B007 (read after the loop)
        nk = resp.sum(0) + 1e-10
        weights, means = nk / n, (resp.T @ z) / nk[:, None]
        cov = torch.stack([((resp[:, j, None] * (z - means[j])).T @ (z - means[j])) / nk[j] for j in range(k)])
        chol = torch.linalg.cholesky(cov + reg * eye)
        log_p = gmm_log_joint(z, weights, means, chol)  # (N, K)
        ll = torch.logsumexp(log_p, 1).mean().item()
        resp = torch.softmax(log_p, 1)
        if abs(ll - prev) < tol:
            break
        prev = ll
    return {"weights": weights, "means": means, "chol": chol, "iters": it + 1, "train_ll": ll}


def gmm_log_joint(z, weights, means, chol):
    diff = (z[None] - means[:, None]).transpose(1, 2)  # (K, D, N)
    sol = torch.linalg.solve_triangular(chol, diff, upper=False)
    logdet = 2 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(1)
    return (torch.log(weights) - 0.5 * (z.shape[1] * math.log(2 * math.pi) + logdet)
            - 0.5 * (sol ** 2).sum(1).T)


def fitted_prior(codes, k, seed):
    """vaegen's fitted prior: a GMM over the active dimensions (variance > 0.01, Burda et al.);
    the inactive ones drawn from one diagonal Gaussian. Returns a sampler n -> z (n, D)."""
    var = codes.var(0)
    active = var > 0.01
    if not active.any():
        active[var.argmax()] = True
    gmm = fit_gmm(codes[:, active], k, seed=seed)

    def sample(n, gen):
        comp = torch.multinomial(gmm["weights"].cpu(), n, replacement=True, generator=gen).to(codes.device)
        eps = torch.randn(n, int(active.sum()), generator=gen, dtype=torch.float64).to(codes.device)
        z = codes.mean(0) + var.sqrt() * torch.randn(n, codes.shape[1], generator=gen, dtype=torch.float64).to(
            codes.device)
        z[:, active] = gmm["means"][comp] + (gmm["chol"][comp] @ eps[:, :, None])[:, :, 0]
        return z.float()

    return sample, {"components": len(gmm["weights"]), "active": int(active.sum()), "iters": gmm["iters"],
                    "train_ll": gmm["train_ll"]}


# --------------------------------------------------------------------------- one config

def train_step_loss(model, cfg, x, beta, amp):
    """The loss of one batch x (B, C, H, W) in [0, 1], per value (the sum objective / dims)."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        params = model.decode(z)
    kl = kl_normal(mu, logvar)
    if cfg.likelihood == "mse":  # PyTorch-VAE: mean-squared error + 0.00025 * batch-mean KL
        return F.mse_loss(params.float(), 2 * x - 1) + 0.00025 * kl.mean(), kl.mean()
    nll = -model.log_prob(params, x)
    return (nll + beta * kl).mean() / x[0].numel(), kl.mean()


@torch.no_grad()
def encode_all(model, x_u8, bs=256):
    out = [model.encode(x_u8[i:i + bs].float() / 255) for i in range(0, len(x_u8), bs)]
    return torch.cat([o[0] for o in out]).float(), torch.cat([o[1] for o in out]).float()


@torch.no_grad()
def decode_pictures(model, z, bs=256):
    parts = [model.pictures(model.decode(z[i:i + bs])) for i in range(0, len(z), bs)]
    return {name: to_u8(torch.cat([p[name] for p in parts])) for name in parts[0]}


def to_u8(pic):
    return (pic.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


@torch.no_grad()
def held_out_bits(model, x_u8, k=16, chunk=256, seed=1):
    """-ELBO (one z per image) and the importance-weighted bound (Burda et al., k samples), bits/dim."""
    gen = torch.Generator().manual_seed(seed)
    dims, nelbo, iw = x_u8[0].numel(), [], []
    per = max(1, chunk // k)
    for i in range(0, len(x_u8), per):
        x = x_u8[i:i + per].float() / 255
        mu, logvar = model.encode(x)
        eps = torch.randn(k, *mu.shape, generator=gen).to(x.device)
        z = mu + torch.exp(0.5 * logvar) * eps  # (k, B, D)
        lpx = model.log_prob(model.decode(z.reshape(-1, z.shape[-1])), x.repeat(k, 1, 1, 1)).reshape(k, -1)
        nelbo.append(-(lpx[0] - kl_normal(mu, logvar)))
        lw = lpx + log_normal(z, 0 * mu, 0 * logvar) - log_normal(z, mu, logvar)
        iw.append(-(torch.logsumexp(lw, 0) - math.log(k)))
    to_bits = dims * math.log(2)
    return torch.cat(nelbo).mean().item() / to_bits, torch.cat(iw).mean().item() / to_bits


def run_config(cfg_dict, opts, scratch):
    """Process body: train one config, evaluate it, write scratch/<name>.json (+ images .npz, .pt)."""
    cfg = Config(**cfg_dict)
    out = {"name": cfg.name, "config": cfg_dict, "status": "failed"}
    log_file = open(Path(scratch) / f"{cfg.name}.log", "a", buffering=1)
    log = lambda msg: log_file.write(f"[{time.strftime('%H:%M:%S')}] {cfg.name}: {msg}\n")
    try:
        torch.set_num_threads(opts["threads"])
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        dev = torch.device(opts["device"])
        torch.manual_seed(opts["seed"])
        train_u8, held_u8, _, _, _ = load_data(opts["data"], opts["subset"], dev)
        model = build(cfg, tuple(train_u8.shape[1:])).to(dev)
        if cfg.arch == "resconv":
            model.init_output_bias(train_u8[::4].float().mean((0, 2, 3)).cpu() / 255)  # strided: class-sorted
        if opts["channels_last"]:
            model = model.to(memory_format=torch.channels_last)
        out["params"] = sum(p.numel() for p in model.parameters())
        train_config(model, cfg, opts, train_u8, held_u8, out, log)
        t = time.time()
        evaluate_config(model, cfg, opts, train_u8, held_u8, out, scratch)
        out.update(status="ok", eval_s=time.time() - t)
        log(f"evaluated in {out['eval_s']:.0f} s")
    except Exception as err:  # any failure of one config is reported, never fatal to the sweep
        out["error"] = f"{type(err).__name__}: {err}"
        out["traceback"] = traceback.format_exc()[-3000:]
        log(out["error"])
    write_json(Path(scratch) / f"{cfg.name}.json", out)


def train_config(model, cfg, opts, train_u8, held_u8, out, log):
    """Adam; resconv: 2% linear LR warm-up then cosine to 1% and a KL warm-up; the anchor:
    ExponentialLR(0.95) per epoch and random flips. Stops at opts["train_deadline"] (truncated)."""
    dev, n = train_u8.device, len(train_u8)
    epochs = cfg.epochs or max(1, round(opts["cpu_minutes"] * 60 * cfg.cpu_img_s / n))
    steps_per_epoch = max(1, n // cfg.batch_size)
    total, warm = epochs * steps_per_epoch, max(1, epochs * steps_per_epoch // 50)
    if cfg.arch == "vanilla":
        lr_at = lambda step: cfg.lr * 0.95 ** (step // steps_per_epoch)
    else:
        def lr_at(step):  # linear warm-up, then cosine from the peak to 1% of it
            return cfg.lr * min(1, (step + 1) / warm) * (0.01 + 0.495 * (1 + math.cos(math.pi * step / total)))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator(device=dev).manual_seed(opts["seed"])
    step, curve, t0, truncated = 0, [], time.time(), False
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, device=dev, generator=gen)
        sums = torch.zeros(3, device=dev)  # loss, kl, gradient norm
        for s in range(steps_per_epoch):
            if time.time() > opts["train_deadline"]:
                truncated = True
                break
            x = train_u8[perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]].float() / 255
            if cfg.arch == "vanilla":  # random horizontal flips, as PyTorch-VAE's users train
                x = torch.where(torch.rand(len(x), 1, 1, 1, device=dev, generator=gen) < 0.5, x.flip(3), x)
            if opts["channels_last"]:
                x = x.contiguous(memory_format=torch.channels_last)
            beta = cfg.beta * min(1.0, step / max(1, cfg.kl_warmup * total))
            loss, kl = train_step_loss(model, cfg, x, beta, opts["amp"])
            if cfg.inject == "nan" and step == 1:
                loss = loss * float("nan")
            if cfg.inject == "exit":
                os._exit(3)
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.zeros((), device=dev)
            if cfg.arch != "vanilla":  # the anchor runs as its users run it: no clipping
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), opts["clip"])
            opt.step()
            sums += torch.stack([loss.detach(), kl.detach(), norm.detach()])
            step += 1
        done = s + (0 if truncated else 1)
        loss, kl, norm = (sums / max(1, done)).tolist()
        row = {"epoch": epoch + 1, "s": round(time.time() - t0, 1), "loss": loss, "kl": kl, "grad_norm": norm}
        if not math.isfinite(loss):
            raise FloatingPointError(f"non-finite loss in epoch {epoch + 1} (step {step})")
        if cfg.likelihood != "mse" and (epoch + 1) % max(1, epochs // 8) == 0 and not truncated:
            model.eval()
            row["held_nelbo_bpd"] = held_out_bits(model, held_u8[::3], k=1)[0]  # a third, every class in it
        curve.append(row)
        log(json.dumps(row))
        if truncated:
            break
    train_s = time.time() - t0
    out.update(epochs_planned=epochs, epochs_done=round(epoch + done / steps_per_epoch, 2), truncated=truncated,
               steps=step, train_s=train_s, device_img_s=step * cfg.batch_size / max(1e-9, train_s), curve=curve)
    log(f"trained {step} steps in {train_s:.0f} s (truncated: {truncated})")


def evaluate_config(model, cfg, opts, train_u8, held_u8, out, scratch):
    """Held-out bits/dim, the fitted prior, and the image sets the judge scores: reconstructions
    (posterior means), fitted-prior and N(0, I) samples, as many as held-out images, every picture."""
    dev = train_u8.device
    model.eval()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    codes, _ = encode_all(model, train_u8)
    mu_h, logvar_h = encode_all(model, held_u8)
    out["active_units"] = int((codes.var(0) > 0.01).sum())
    if cfg.likelihood != "mse":
        out["held_nelbo_bpd"], out[f"held_iw{opts['iw_k']}_bpd"] = held_out_bits(model, held_u8, k=opts["iw_k"])
        out["held_kl_nats"] = kl_normal(mu_h, logvar_h).mean().item()
    t = time.time()
    try:
        sample, out["gmm"] = fitted_prior(codes.double(), opts["gmm_components"], opts["seed"])
    except RuntimeError as err:  # e.g. a covariance's Cholesky fails: one Gaussian keeps the other rows
        out["gmm_error"] = f"{type(err).__name__}: {err}"
        sample, out["gmm"] = fitted_prior(codes.double(), 1, opts["seed"])
    out["gmm"]["fit_s"] = round(time.time() - t, 2)
    gen = torch.Generator().manual_seed(opts["seed"] + 7)
    m, images = len(held_u8), {}
    for name, z in [("recon", mu_h), ("gmm", sample(m, gen)),
                    ("normal", torch.randn(m, cfg.latent_dim, generator=gen).to(dev))]:
        images.update({f"{name}/{pic}": arr for pic, arr in decode_pictures(model, z).items()})
    np.savez(Path(scratch) / f"{cfg.name}_images.npz", **images)
    state = {k: (v.half() if v.is_floating_point() else v).cpu() for k, v in model.state_dict().items()}
    torch.save({"config": out["config"], "state_dict": state}, Path(scratch) / f"{cfg.name}.pt")


# ------------------------------------------------------------------------------------ data

def load_data(path, subset, dev):
    """-> train, held-out uint8 tensors (N, C, H, W) on dev, their labels (numpy), class names."""
    if str(path).endswith(".xz"):  # prep_emoji.py's smaller form: an uncompressed .npz inside xz
        with lzma.open(path) as f:
            path = io.BytesIO(f.read())
    d = np.load(path)
    images = d["images"]
    nhwc = str(d["layout"]) == "NHWC" if "layout" in d.files else images.shape[-1] in (1, 3)
    if nhwc:
        images = images.transpose(0, 3, 1, 2)
    labels, classes = d["labels"].astype(np.int64), [str(c) for c in d["classes"]]
    if subset and subset < len(images):  # an evenly spread subset keeps every class
        keep = np.linspace(0, len(images) - 1, subset).round().astype(int)
        images, labels = images[keep], labels[keep]
    held = np.arange(len(images)) % 10 == 0
    tensor = torch.from_numpy(np.ascontiguousarray(images))
    return tensor[~held].to(dev), tensor[held].to(dev), labels[~held], labels[held], classes


def write_json(path, obj):
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------- judge

class JudgeNet(nn.Module):
    """(N, 3, 64, 64) in [0, 1] -> logits (N, K), features (N, 128): four conv-ReLU-maxpool stages
    (32, 64, 128, 128 channels) to 4x4, a 128-wide ReLU layer (the features), dropout, linear."""

    def __init__(self, classes, c=3, size=64):
        super().__init__()
        layers, prev = [], c
        for ch in (32, 64, 128, 128):
            layers += [nn.Conv2d(prev, ch, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            prev = ch
        self.convs = nn.Sequential(*layers, nn.Flatten())
        self.dense = nn.Linear(128 * (size // 16) ** 2, 128)
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(128, classes))

    def forward(self, x):
        f = F.relu(self.dense(self.convs(2 * x - 1)))
        return self.head(f), f


def soften(x, gen):
    """What a VAE's picture looks like: a 3x3 binomial blur, contrast drawn from [0.6, 1] per image."""
    k = torch.tensor([1.0, 2.0, 1.0], device=x.device)
    k = (torch.outer(k, k) / 16).expand(x.shape[1], 1, 3, 3)
    soft = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=x.shape[1])
    mean = soft.mean((2, 3), keepdim=True)
    c = 0.6 + 0.4 * torch.rand(len(x), 1, 1, 1, device=x.device, generator=gen)
    return mean + c * (soft - mean)


def train_judge(train_u8, labels, classes, epochs, seed, bs=128):
    """Trained on the training split only (Adam, one-cycle), each image shown as it is or softened, at
    random, and flipped at random: the held-out images the FD rows use were never seen."""
    dev = train_u8.device
    torch.manual_seed(seed)
    net = JudgeNet(len(classes), train_u8.shape[1], train_u8.shape[2]).to(dev)
    y = torch.from_numpy(labels).to(dev)
    steps = len(train_u8) // bs
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=max(1, epochs * steps))
    gen = torch.Generator(device=dev).manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(train_u8), device=dev, generator=gen)
        for s in range(steps):
            idx = perm[s * bs:(s + 1) * bs]
            x = train_u8[idx].float() / 255
            x = torch.where(torch.rand(len(x), 1, 1, 1, device=dev, generator=gen) < 0.5, soften(x, gen), x)
            x = torch.where(torch.rand(len(x), 1, 1, 1, device=dev, generator=gen) < 0.5, x.flip(3), x)
            loss = F.cross_entropy(net(x)[0], y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


class OnnxJudge:
    """vaegen's exported judge of the folder (`vaegen judge`, weights/judges/emoji) in the place of this
    script's own: called on images in [0, 1] it gives (log-probabilities as logits, features), as JudgeNet does."""

    def __init__(self, folder):
        from vaegen.evaluation.judges import load_judge

        self.judge = load_judge(folder, provider="cpu")

    def __call__(self, x):
        probs, feats = self.judge.predict(x.cpu().numpy().astype(np.float32))
        return torch.from_numpy(np.log(np.maximum(probs, 1e-300))), torch.from_numpy(feats)


@torch.no_grad()
def judge_features(net, images_u8, dev, bs=500):
    """uint8 (N, C, H, W) numpy or tensor -> class probabilities, features (float64 numpy)."""
    x = torch.as_tensor(images_u8)
    probs, feats = [], []
    for i in range(0, len(x), bs):
        logits, f = net(x[i:i + bs].to(dev).float() / 255)
        probs.append(torch.softmax(logits.double(), 1).cpu())
        feats.append(f.double().cpu())
    return torch.cat(probs).numpy(), torch.cat(feats).numpy()


def frechet(f1, f2):
    """Squared Frechet distance between Gaussians fitted to feature sets (N, F) (the FID's formula),
    matrix roots from symmetric eigen-decompositions in float64."""
    m1, m2, s1, s2 = f1.mean(0), f2.mean(0), np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    return max(0.0, float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross))


def score_config(res, images, judge, ref):
    """FD rows of one config's image sets against the held-out reference (half A at n = half, all at n = all)."""
    half_a, feats_all = ref["half_a"], ref["all"]
    n = len(half_a)
    res["fd"], res["class_shares"], res["mean_rgb"] = {}, {}, {}
    for key, arr in images.items():
        set_name, pic = key.split("/")
        probs, feats = judge_features(judge, arr, ref["dev"])
        # recon rows: the reconstructions of half B (the floor's other half) against half A
        part = feats[ref["b_idx"]] if set_name == "recon" else feats[:n]
        row = res["fd"].setdefault(pic, {})
        row[f"{set_name}_n{n}"] = round(frechet(part, half_a), 3)
        row[f"{set_name}_n{len(feats_all)}"] = round(frechet(feats, feats_all), 3)
        res["class_shares"][key] = np.round(np.bincount(probs.argmax(1), minlength=probs.shape[1]) / len(probs), 3)
        res["mean_rgb"][key] = np.round(arr.reshape(len(arr), arr.shape[1], -1).mean((0, 2)), 1)
    best = min(res["fd"], key=lambda p: res["fd"][p].get(f"gmm_n{n}", math.inf))
    res["best_picture"], res["best_gmm_fd"] = best, res["fd"][best][f"gmm_n{n}"]


# --------------------------------------------------------------------------------- outputs

def write_montage(path, results, scratch, held_u8):
    """Per finished config: a label, 16 fitted-prior samples, 8 held-out originals each beside its reconstruction."""
    from PIL import Image, ImageDraw
    done = [r for r in results.values() if r.get("status") == "ok" and "best_picture" in r]
    if not done:
        return
    h, w = held_u8.shape[2:]
    label_h = 14
    canvas = Image.new("RGB", (16 * w, len(done) * (2 * h + label_h)), "white")
    draw = ImageDraw.Draw(canvas)
    pick = np.linspace(0, len(held_u8) - 1, 8).round().astype(int)  # spread: the held-out set is class-sorted
    orig = held_u8[torch.from_numpy(pick).to(held_u8.device)].cpu().numpy()
    for row, res in enumerate(done):
        y = row * (2 * h + label_h)
        pic = res["best_picture"]
        bpd = f", bpd {res['held_nelbo_bpd']:.3f}" if "held_nelbo_bpd" in res else ""
        draw.text((2, y + 1), f"{res['name']} ({pic}): fitted-prior FD {res['best_gmm_fd']:.1f}{bpd}; "
                              "16 samples, then 8 held-out images each beside its reconstruction", fill="black")
        with np.load(Path(scratch) / f"{res['name']}_images.npz") as imgs:
            samples, recons = imgs[f"gmm/{pic}"][:16], imgs[f"recon/{pic}"][pick]
        tiles = list(samples) + [t for pair in zip(orig, recons, strict=True) for t in pair]
        for i, t in enumerate(tiles):
            canvas.paste(Image.fromarray(t.transpose(1, 2, 0)), ((i % 16) * w, y + label_h + (i // 16) * h))
    canvas.save(path)


def write_checkpoints(path, results, scratch, limit=15.5e6):
    """A tar of fp16 checkpoints, best fitted-prior FD first, as many as fit under `limit` bytes."""
    ranked = sorted((r for r in results.values() if r.get("status") == "ok"),
                    key=lambda r: r.get("best_gmm_fd", math.inf))
    total, kept = 0, []
    for r in ranked:
        size = (Path(scratch) / f"{r['name']}.pt").stat().st_size
        if total + size <= limit:
            total, kept = total + size, kept + [r["name"]]
    if kept:
        with tarfile.open(path, "w") as tar:
            for name in kept:
                tar.add(Path(scratch) / f"{name}.pt", arcname=f"{name}.pt")
    return kept


def training_step(cfg, dev, amp=False, channels_last=False, shape=(3, 64, 64)):
    """A closure running one training step of cfg on a fixed batch of random 8-bit data."""
    model = build(cfg, shape).to(dev)
    x = (torch.rand(cfg.batch_size, *shape, device=dev) * 255).round() / 255
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-4)

    def step():
        loss = train_step_loss(model, cfg, x, cfg.beta, amp)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def time_steps(step, steps, batch, dev):
    """Images/s of `steps` calls of `step`: (by wall clock, by this process's CPU time)."""
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    t, cpu = time.time(), time.process_time()
    for _ in range(steps):
        step()
    sync()
    return steps * batch / (time.time() - t), steps * batch / max(1e-9, time.process_time() - cpu)


# ------------------------------------------------------------------------------------ main

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="emoji.npz")
    p.add_argument("--out", default="sweep_out")
    p.add_argument("--configs", default=DEFAULT, help=f"comma-separated names of {list(CONFIGS)}")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--budget-s", type=float, default=420, help="wall-clock limit for everything")
    p.add_argument("--cpu-minutes", type=float, default=25, help="epochs = this much 2-core CPU training")
    p.add_argument("--epochs", type=int, default=0, help="override every config's epochs (0: CPU budget)")
    p.add_argument("--subset", type=int, default=0, help="use this many images (evenly spread), 0: all")
    p.add_argument("--parallel", type=int, default=0, help="processes at once (0: one per config)")
    p.add_argument("--judge-epochs", type=int, default=15)
    p.add_argument("--onnx-judge", default="", help="a vaegen judge folder to score with, instead of training one")
    p.add_argument("--reuse", action="store_true", help="score configs already trained into --scratch, not retrain")
    p.add_argument("--gmm-components", type=int, default=50)
    p.add_argument("--iw-k", type=int, default=16)
    p.add_argument("--amp", action="store_true", help="bf16 autocast for the networks")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--probe-steps", type=int, default=30, help="steps of the precision probe (0: skip)")
    p.add_argument("--clip", type=float, default=50.0, help="gradient norm clip")
    p.add_argument("--eval-reserve-s", type=float, default=60, help="a config's time kept for evaluation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scratch", default="", help="per-config files, kept (default: a temp folder, removed at the end)")
    args = p.parse_args()
    names = [n for n in args.configs.split(",") if n]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        p.error(f"unknown configs {unknown}; known: {list(CONFIGS)}")

    start = time.time()
    final_reserve = 20.0  # the last montage, tar and results.json
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="colour_scratch_"))  # never under OUT: 8 files come back
    scratch.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "log.txt"

    def log(msg):
        line = f"[{time.time() - start:6.1f}s] {msg}"
        print(line, flush=True)
        with open(log_path, "a") as f:
            f.write(line + "\n")

    dev = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    train_u8, held_u8, train_y, held_y, classes = load_data(args.data, args.subset, dev)
    meta = {"args": vars(args), "torch": torch.__version__, "device": str(dev),
            "device_name": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
            "n_train": len(train_u8), "n_held": len(held_u8), "classes": classes,
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    results = {}
    save = lambda: write_json(out_dir / "results.json", {"meta": meta, "configs": results})
    log(f"{meta['device_name']}: {len(train_u8)} train, {len(held_u8)} held out; configs {names}")
    if args.probe_steps and dev.type == "cuda":
        try:
            probe = {}  # the base config alone on the device, before the sweep starts
            for amp in (False, True):
                for cl in (False, True):
                    step = training_step(CONFIGS["base"], dev, amp, cl, tuple(train_u8.shape[1:]))
                    step(), step(), step()
                    probe[("bf16" if amp else "fp32") + ("_cl" if cl else "")] = round(
                        time_steps(step, args.probe_steps, CONFIGS["base"].batch_size, dev)[0])
            meta["precision_probe_img_s"] = probe
            log(f"precision probe (base, img/s): {meta['precision_probe_img_s']}")
        except Exception as err:
            meta["precision_probe_img_s"] = f"{type(err).__name__}: {err}"
        torch.cuda.empty_cache()
    save()

    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    parallel = args.parallel or len(names)
    cores = os.cpu_count() or 2
    opts = {"data": args.data, "subset": args.subset, "device": args.device, "seed": args.seed,
            "cpu_minutes": args.cpu_minutes, "amp": args.amp, "channels_last": args.channels_last,
            "clip": args.clip, "iw_k": args.iw_k, "gmm_components": args.gmm_components,
            "threads": 1 if dev.type == "cuda" else max(1, cores // parallel),
            "train_deadline": start + args.budget_s - final_reserve - args.eval_reserve_s}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(opts["threads"])
    cfgs = []
    for name in names:
        cfg = dataclasses.replace(CONFIGS[name], epochs=args.epochs or CONFIGS[name].epochs)
        cfgs.append(dataclasses.asdict(cfg))
        results[name] = {"name": name, "config": cfgs[-1], "status": "waiting"}
    queue, running = list(cfgs), {}
    if args.reuse:  # configs already trained into --scratch are scored again, not trained again
        for c in list(queue):
            if (scratch / f"{c['name']}.json").exists() and (scratch / f"{c['name']}_images.npz").exists():
                queue.remove(c)
                running[c["name"]] = None

    def launch():
        while queue and len(running) < parallel and time.time() < opts["train_deadline"] - 30:
            c = queue.pop(0)
            proc = ctx.Process(target=run_config, args=(c, opts, str(scratch)), daemon=True)
            proc.start()
            running[c["name"]] = proc
            results[c["name"]]["status"] = "running"

    if dev.type == "cuda":
        launch()  # on a CPU the judge trains first: alongside a config, both crawl on two cores
    judge = None
    try:
        t = time.time()
        judge = (OnnxJudge(args.onnx_judge) if args.onnx_judge else
                 train_judge(train_u8, train_y, classes, args.judge_epochs, args.seed))
        probs, feats_held = judge_features(judge, held_u8, dev)
        a_idx = np.arange(0, len(held_u8), 2)[: len(held_u8) // 2]  # interleaved: the held-out set is class-sorted
        b_idx = np.arange(1, len(held_u8), 2)[: len(held_u8) // 2]
        ref = {"half_a": feats_held[a_idx], "all": feats_held, "b_idx": b_idx, "dev": dev}
        soft_probs = judge_features(judge, to_u8(soften(held_u8.float() / 255, None)), dev)[0]
        meta["judge"] = {"epochs": args.judge_epochs, "train_s": round(time.time() - t, 1),
                         "held_accuracy": float((probs.argmax(1) == held_y).mean()),
                         "held_accuracy_softened": float((soft_probs.argmax(1) == held_y).mean()),
                         "floor_fd": {f"n{len(a_idx)}": round(frechet(feats_held[b_idx], ref["half_a"]), 3)},
                         "held_class_shares": np.round(np.bincount(held_y, minlength=len(classes)) / len(held_y), 3)}
        log(f"judge: {meta['judge']}")
    except Exception as err:
        meta["judge_error"] = traceback.format_exc()[-3000:]
        log(f"judge failed: {err}")
    save()

    launch()
    hard_deadline = start + args.budget_s - final_reserve
    while (running or queue) and time.time() < hard_deadline:
        for name, proc in list(running.items()):
            res_path = scratch / f"{name}.json"
            if proc is None or res_path.exists() or not proc.is_alive():
                if proc is not None:
                    proc.join(timeout=10)
                if res_path.exists():
                    res = json.loads(res_path.read_text())
                else:
                    res = {"name": name, "config": results[name]["config"], "status": "crashed",
                           "error": f"process exited with code {proc.exitcode} and no result"}
                if res["status"] == "ok" and judge is not None:
                    try:
                        with np.load(scratch / f"{name}_images.npz") as imgs:
                            score_config(res, {k: imgs[k] for k in imgs.files}, judge, ref)
                    except Exception:
                        res["score_error"] = traceback.format_exc()[-2000:]
                results[name] = res
                del running[name]
                summary = {k: res.get(k) for k in ("status", "epochs_done", "train_s", "held_nelbo_bpd",
                                                   "best_picture", "best_gmm_fd", "error")}
                log(f"{name}: {summary}")
                save()
                try:
                    write_montage(out_dir / "montage.png", results, scratch, held_u8)
                except Exception as err:
                    log(f"montage failed: {err}")
        launch()
        time.sleep(1.0)
    for name, proc in running.items():
        if proc is not None:
            proc.terminate()
        results[name].update(status="killed at budget", error=f"not finished by {args.budget_s} s")
    for c in queue:
        results[c["name"]].update(status="not started (budget)")
    meta["checkpoints_in_tar"] = write_checkpoints(out_dir / "checkpoints.tar", results, scratch)
    with open(log_path, "a") as f:
        for name in names:
            part = scratch / f"{name}.log"
            if part.exists():
                f.write(part.read_text())
    meta["wall_s"] = round(time.time() - start, 1)
    save()
    n = len(held_u8) // 2
    log(f"{'config':16s} {'status':8s} {'ep':>5s} {'bpd':>6s} {'iw':>6s} {'recon':>7s} {'gmm':>7s} {'N(0,I)':>7s}  pic")
    for name, r in results.items():
        fd = r.get("fd", {}).get(r.get("best_picture"), {})
        f = lambda v, w=7, d=1: f"{v:{w}.{d}f}" if isinstance(v, (int, float)) else " " * (w - 1) + "-"
        log(f"{name:16s} {r['status'][:8]:8s} {f(r.get('epochs_done'), 5)} {f(r.get('held_nelbo_bpd'), 6, 3)} "
            f"{f(r.get(f'held_iw{args.iw_k}_bpd'), 6, 3)} {f(fd.get(f'recon_n{n}'))} {f(fd.get(f'gmm_n{n}'))} "
            f"{f(fd.get(f'normal_n{n}'))}  {r.get('best_picture', '')}")
    log(f"floor {meta.get('judge', {}).get('floor_fd')}; done in {meta['wall_s']} s")
    if not args.scratch:  # a folder of its own in the temp dir: everything that matters is in OUT now
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
