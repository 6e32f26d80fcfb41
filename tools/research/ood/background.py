"""Torch-free background models, fitted once on the model's training split,
that code the same representation as the model (bits for the Bernoulli
model, 8-bit levels for the logistic one). Each gives a code length per
image in bits/dim; the likelihood-ratio score is

    model bits/dim - background bits/dim        (Ren et al. 2019; Schirrmeister et al. 2020)

Models:
    pix      every pixel independent, its own marginal: a Bernoulli per
             pixel, or a 256-bin histogram per pixel (Dirichlet prior centred
             on the all-pixel histogram, strength 16)
    ctx10    binary: P(bit | JBIG's 10-pixel causal template), 1,024 contexts
    ctx16    binary: a 16-pixel causal template (JBIG2's template 0 shape), 65,536 contexts
    loco     8-bit: the LOCO-I/JPEG-LS median edge predictor; the residual
             (mod 256) is coded by its own 256-bin histogram in each of 9^3
             quantized-gradient contexts x 5 buckets of the predicted level
             (3,645 contexts); each histogram has a Dirichlet prior centred
             on the all-context residual histogram, strength 16
    *_mu20   the same, fitted on training images with Ren et al.'s
             perturbation: each pixel replaced by a uniform random level
             (0..255, before binarization) with probability 0.2

    python background.py          -> cache/background_<model>.npz and cache/background_tables_<model>.npz

Sizes, as a bundle would store them: ctx10 1,024 x 2 counts, ctx16 65,536 x 2,
loco 3,645 x 256 (3.7 MB as float32, 0.9 M counts), pix 784 x 256.
"""

from __future__ import annotations

import time

import numpy as np
from common import CACHE, MODELS, SETS, likelihood_of, load_uint8, model_set, raw_set
from compressors import JBIG_TEMPLATE

DIMS = 784
TEMPLATE16 = ((-2, -2), (-2, -1), (-2, 0), (-2, 1), (-2, 2), (-1, -3), (-1, -2), (-1, -1), (-1, 0), (-1, 1),
              (-1, 2), (-1, 3), (0, -4), (0, -3), (0, -2), (0, -1))
PRIOR_STRENGTH = 16.0
LOCO_T = (3, 7, 21)  # JPEG-LS default gradient thresholds for 8-bit data
PRED_BUCKETS = (1, 64, 128, 192)  # predicted level: 0 | 1-63 | 64-127 | 128-191 | 192-255


def perturb(images: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Ren et al. 2019: each pixel replaced by a uniform random level with probability `rate`."""
    rng = np.random.default_rng(seed)
    mask = rng.random(images.shape) < rate
    return np.where(mask, rng.integers(0, 256, images.shape, dtype=np.uint8), images)


# ----------------------------------------------------------------- binary

def contexts_wide(bits: np.ndarray, template) -> np.ndarray:
    """contexts() for templates reaching 4 columns left / 3 right."""
    n, h, w = bits.shape
    pad = np.zeros((n, h + 2, w + 8), np.int64)
    pad[:, 2:, 4:-4] = bits
    ctx = np.zeros((n, h, w), np.int64)
    for j, (dy, dx) in enumerate(template):
        ctx |= pad[:, 2 + dy : 2 + dy + h, 4 + dx : 4 + dx + w] << j
    return ctx


def fit_binary_context(bits: np.ndarray, template) -> np.ndarray:
    ctx = contexts_wide(bits, template).ravel()
    ones = np.bincount(ctx, weights=bits.ravel().astype(np.float64), minlength=1 << len(template))
    total = np.bincount(ctx, minlength=1 << len(template)).astype(np.float64)
    return np.stack([total - ones, ones], axis=1)  # [C, 2] counts


def score_binary_context(table: np.ndarray, bits: np.ndarray, template, alpha: float = 0.5) -> np.ndarray:
    n = len(bits)
    ctx = contexts_wide(bits, template).reshape(n, -1)
    x = bits.reshape(n, -1).astype(np.int64)
    p = (table[ctx, x] + alpha) / (table[ctx].sum(axis=-1) + 2 * alpha)
    return -np.log2(p).sum(axis=1) / DIMS


def fit_binary_pixels(bits: np.ndarray) -> np.ndarray:
    return (bits.reshape(len(bits), -1).sum(axis=0) + 0.5) / (len(bits) + 1.0)


def score_binary_pixels(p1: np.ndarray, bits: np.ndarray) -> np.ndarray:
    x = bits.reshape(len(bits), -1)
    return -np.where(x > 0, np.log2(p1), np.log2(1 - p1)).sum(axis=1) / DIMS


# ----------------------------------------------------------------- 8-bit

def loco_terms(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(context [N, P], residual mod 256 [N, P]) of uint8 images [N, H, W]."""
    n, h, w = images.shape
    pad = np.zeros((n, h + 1, w + 2), np.int64)
    pad[:, 1:, 1:-1] = images
    x = pad[:, 1:, 1:-1]
    a = pad[:, 1:, :-2]  # left
    b = pad[:, :-1, 1:-1]  # up
    c = pad[:, :-1, :-2]  # up-left
    d = pad[:, :-1, 2:]  # up-right
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    pred = np.where(c >= hi, lo, np.where(c <= lo, hi, a + b - c))

    def q(g):  # 9 levels: -4..4
        s = np.sign(g)
        m = np.abs(g)
        return s * ((m > 0).astype(np.int64) + (m >= LOCO_T[0]) + (m >= LOCO_T[1]) + (m >= LOCO_T[2]))

    ctx = (q(d - b) + 4) * 81 + (q(b - c) + 4) * 9 + (q(c - a) + 4)
    ctx = ctx * 5 + np.searchsorted(np.array(PRED_BUCKETS), pred, side="right")
    residual = (x - pred) % 256
    return ctx.reshape(n, -1), residual.reshape(n, -1)


LOCO_CONTEXTS = 729 * 5


def fit_loco(images: np.ndarray) -> np.ndarray:
    ctx, res = loco_terms(images)
    counts = np.bincount((ctx * 256 + res).ravel(), minlength=LOCO_CONTEXTS * 256).astype(np.float64)
    counts = counts.reshape(LOCO_CONTEXTS, 256)
    glob = counts.sum(axis=0) + 1.0
    glob /= glob.sum()
    probs = (counts + PRIOR_STRENGTH * glob) / (counts.sum(axis=1, keepdims=True) + PRIOR_STRENGTH)
    return probs  # [contexts, 256]


def score_loco(probs: np.ndarray, images: np.ndarray) -> np.ndarray:
    ctx, res = loco_terms(images)
    return -np.log2(probs[ctx, res]).sum(axis=1) / DIMS


def fit_pixels8(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.int64)
    counts = np.zeros((flat.shape[1], 256))
    for j in range(flat.shape[1]):
        counts[j] = np.bincount(flat[:, j], minlength=256)
    glob = counts.sum(axis=0) + 1.0
    glob /= glob.sum()
    return (counts + PRIOR_STRENGTH * glob) / (counts.sum(axis=1, keepdims=True) + PRIOR_STRENGTH)


def score_pixels8(probs: np.ndarray, images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.int64)
    return -np.log2(probs[np.arange(flat.shape[1]), flat]).sum(axis=1) / DIMS


# ----------------------------------------------------------------- driver

def fit_all(model: str) -> dict:
    from vaegen.data.load import binarize

    train = load_uint8(model, "train")
    tables = {}
    for suffix, data in (("", train), ("_mu20", perturb(train, 0.2, seed=7))):
        if likelihood_of(model) == "bernoulli":
            bits = binarize(data, seed=1)[:, 0].astype(np.uint8)
            tables["pix" + suffix] = fit_binary_pixels(bits)
            tables["ctx10" + suffix] = fit_binary_context(bits, JBIG_TEMPLATE)
            tables["ctx16" + suffix] = fit_binary_context(bits, TEMPLATE16)
        else:
            tables["pix" + suffix] = fit_pixels8(data[:, 0])
            tables["loco" + suffix] = fit_loco(data[:, 0])
    return tables


def score_all(model: str, tables: dict, name: str) -> dict:
    out = {}
    if likelihood_of(model) == "bernoulli":
        bits = model_set(model, name)[:, 0].astype(np.uint8)
        for key, t in tables.items():
            if key.startswith("pix"):
                out[key] = score_binary_pixels(t, bits)
            else:
                out[key] = score_binary_context(t, bits, JBIG_TEMPLATE if key.startswith("ctx10") else TEMPLATE16)
    else:
        imgs = raw_set(model, name)[:, 0]
        for key, t in tables.items():
            out[key] = (score_pixels8 if key.startswith("pix") else score_loco)(t, imgs)
    return out


def main() -> None:
    for model in MODELS:
        table_path = CACHE / f"background_tables_{model}.npz"
        if table_path.exists():
            tables = dict(np.load(table_path))
        else:
            start = time.perf_counter()
            tables = fit_all(model)
            print(model, "fitted in", round(time.perf_counter() - start, 1), "s", flush=True)
            np.savez(table_path, **tables)
        path = CACHE / f"background_{model}.npz"
        arrays = dict(np.load(path)) if path.exists() else {}
        done = {key.split("/")[0] for key in arrays}
        for name in SETS:
            if name in done:
                continue
            for key, v in score_all(model, tables, name).items():
                arrays[f"{name}/{key}"] = v
            print(model, name, {k.split("/")[1]: round(float(v.mean()), 3) for k, v in arrays.items()
                                if k.startswith(name + "/")}, flush=True)
        np.savez(path, **arrays)


if __name__ == "__main__":
    main()
