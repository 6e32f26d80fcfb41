"""Per-image scores of a model's density, and their calibration: how likely
an image is (bits per dimension by the importance-weighted bound), how unlike
the training data it is (an out-of-distribution score), and where both fall
among the model's held-out images (a percentile, and a flag above a chosen
one). Model.score, `vaegen score`, `vaegen evaluate --ood`, the explorer and
the calibration a bundle keeps (calibration.npy, written when its prior is
fitted) all compute them here.

Raw bits/dim is a poor OOD score: a likelihood model rates simple images
(MNIST digits, for a Fashion-MNIST model) as more likely than its own data
(Nalisnick et al. 2019). The scores below correct for that; which one wins
where, measured, is docs/ood.md. Each score is a plain function of an
image's Terms, registered by name in SCORES; higher means less like the
training data.

An image is scored as the bundle's likelihood models it: a binarized model's
8-bit input is binarized once with the evaluation seed (EVAL_SEED), as
`vaegen evaluate` binarizes the held-out images, and the k latents of each
image are drawn from one generator seeded `seed`, image after image. So the
same images in the same order give the same scores, and the mean bits/dim of
the held-out images is `vaegen evaluate`'s at the same k and seed.

numpy, Pillow (the compressors) and vaegen's torch-free modules.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from vaegen.errors import ArgumentError
from vaegen.evaluation.metrics import bits_per_dim, importance_weighted
from vaegen.likelihoods import EVAL_SEED, get_likelihood, model_input
from vaegen.recipes import SCORING

DEFAULT_K = SCORING["k"]  # importance samples per image, where a bundle's calibration does not say
FLAG_ABOVE = SCORING["flag_above"]  # the percentile of the held-out OOD scores above which an image is flagged
CALIBRATION_IMAGES = SCORING["calibration_images"]  # held-out images a bundle's calibration scores, at most
DEFAULT_SCORE = SCORING["score"]
QUANTILES = 1001  # quantiles recorded per score: every 0.1 percentile, from 0 to 100


# ---------------------------------------------------------------- compressors

def _pil_bytes(image, **options) -> int:
    buffer = io.BytesIO()
    image.save(buffer, **options)
    return buffer.tell()


def _planes(coded: np.ndarray) -> np.ndarray:
    """An image [C, H, W] as one picture Pillow can hold: grey [H, W], RGB
    [H, W, 3], or the C planes stacked into one grey picture [C H, W]."""
    c, h, w = coded.shape
    if c == 1:
        return coded[0]
    return coded.transpose(1, 2, 0) if c == 3 else coded.reshape(c * h, w)


def png_bits(coded: np.ndarray, binarized: bool) -> np.ndarray:
    """PNG's code length of each image [N, C, H, W] (uint8: bits 0/1, or
    levels 0..255), in bits per value: binarized images as 1-bit PNGs, so
    that the compressor codes the bits the model codes, not a grey image."""
    from PIL import Image

    out = np.empty(len(coded))
    for i, image in enumerate(coded):
        plane = _planes(image)
        picture = Image.fromarray(plane.astype(bool)) if binarized else Image.fromarray(plane)
        out[i] = _pil_bytes(picture, format="PNG", optimize=True)
    return out * 8.0 / coded[0].size


def webp_bits(coded: np.ndarray, binarized: bool) -> np.ndarray:
    """Lossless WebP's code length of each image, in bits per value (levels
    0..255; binarized images as 0 and 255)."""
    from PIL import Image

    out = np.empty(len(coded))
    for i, image in enumerate(coded):
        plane = _planes(image * np.uint8(255) if binarized else image)
        out[i] = _pil_bytes(Image.fromarray(plane), format="WEBP", lossless=True, quality=100, method=6)
    return out * 8.0 / coded[0].size


# JBIG's three-line template of ten causal neighbours (row offset, column offset), in raster order.
CONTEXT_TEMPLATE = ((-2, -1), (-2, 0), (-2, 1), (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2), (0, -2), (0, -1))


def context_bits(coded: np.ndarray, binarized: bool) -> np.ndarray:
    """The ideal code length, in bits per value, of an adaptive context coder
    on binary images (JBIG's model: each bit coded given its ten causal
    neighbours, with Krichevsky-Trofimov counts started empty for every image
    and plane). 8-bit images are refused: it codes bits."""
    if not binarized:
        raise ArgumentError("the context coder codes binarized images; an 8-bit model takes png or webp.")
    n, c, h, w = coded.shape
    bits = coded.reshape(n * c, h, w).astype(np.int64)
    pad = np.zeros((n * c, h + 2, w + 4), np.int64)
    pad[:, 2:, 2:-2] = bits
    context = np.zeros_like(bits)
    for j, (dy, dx) in enumerate(CONTEXT_TEMPLATE):
        context |= pad[:, 2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w] << j
    context, bits = context.reshape(n * c, -1), bits.reshape(n * c, -1)
    counts = np.zeros((n * c, 1 << len(CONTEXT_TEMPLATE), 2))
    rows = np.arange(n * c)
    total = np.zeros(n * c)
    for p in range(h * w):  # raster order: each bit is coded, then counted
        seen = counts[rows, context[:, p]]
        total -= np.log2((seen[rows, bits[:, p]] + 0.5) / (seen.sum(axis=1) + 1.0))
        counts[rows, context[:, p], bits[:, p]] += 1
    return total.reshape(n, c).sum(axis=1) / coded[0].size


COMPRESSORS: dict[str, Callable[[np.ndarray, bool], np.ndarray]] = {
    "png": png_bits, "webp": webp_bits, "context": context_bits}
# The compressor of input complexity, by the data the model codes (binarized: True): of those measured, the
# best on the near-OOD sets (docs/ood.md). The context coder is numpy arithmetic, the same everywhere; WebP's
# code lengths move with the libwebp that Pillow carries, so a calibration records its version (compressor_version).
COMPRESSOR_FOR = {True: "context", False: "webp"}


def compressor_version(binarized: bool) -> str:
    """The compressor of input complexity for this kind of data, with the version of its library."""
    name = COMPRESSOR_FOR[binarized]
    if name == "context":
        return "context (numpy)"
    from PIL import features

    return f"{name} (libwebp {features.version('webp')})" if name == "webp" else f"{name} (zlib {features.version('zlib')})"


# ---------------------------------------------------------------- what scores are made of

class Terms:
    """What every score of a batch of images is computed from: each image's
    bits per dimension [N], posterior mean mu [N, D] and the values the
    likelihood codes (`coded`, uint8 [N, C, H, W]: bits 0/1 for a binarized
    model, else levels 0..255), with the bundle's prior (None without one)
    and calibration (None without one). Compressed lengths are computed on
    first use and kept."""

    def __init__(self, bits: np.ndarray, mu: np.ndarray, coded: np.ndarray, binarized: bool,
                 prior=None, calibration: Calibration | None = None):
        self.bits_per_dim, self.mu, self.coded, self.binarized = bits, mu, coded, binarized
        self.prior, self.calibration = prior, calibration
        self._compressed: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.bits_per_dim)

    def compressed(self, name: str) -> np.ndarray:
        """Bits per value of each image under the compressor `name` (COMPRESSORS)."""
        if name not in self._compressed:
            self._compressed[name] = COMPRESSORS[name](self.coded, self.binarized)
        return self._compressed[name]


def measure(model, levels: np.ndarray, *, k: int, seed: int = 0, prior=None, calibration=None,
            progress: Callable[[int], None] | None = None) -> Terms:
    """The Terms of uint8 images [N, C, H, W] (levels 0..255) under `model`,
    its bound taken with k importance samples drawn from `seed`."""
    likelihood = get_likelihood(model.bundle.likelihood)
    x = model_input(levels, likelihood.name, seed=EVAL_SEED)
    bound = importance_weighted(model, x, k=k, seed=seed, progress=progress)
    coded = x.astype(np.uint8) if likelihood.binarized else np.asarray(levels, np.uint8)
    bits = bits_per_dim(bound["nll"], int(np.prod(x.shape[1:])))
    return Terms(bits, bound["mu"], coded, likelihood.binarized, prior, calibration)


def to_levels(images: np.ndarray) -> np.ndarray:
    """Images float [N, C, H, W] in [0, 1] -> the uint8 levels a model's likelihood codes."""
    return np.rint(np.clip(np.asarray(images, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


# ---------------------------------------------------------------- the scores

class Score(NamedTuple):
    """An OOD score: a function of Terms -> [N], higher = less like the
    training data. `parts` names the scores it fuses through their
    calibration (it then needs one); `needs_prior`, that it reads the
    bundle's fitted prior."""

    name: str
    summary: str
    compute: Callable[[Terms], np.ndarray]
    parts: tuple[str, ...] = ()
    needs_prior: bool = False


def raw_bits(terms: Terms) -> np.ndarray:
    """The model's own code length: bits per dimension."""
    return terms.bits_per_dim


def input_complexity(terms: Terms) -> np.ndarray:
    """Serra et al. 2020: the model's code length minus a general-purpose
    lossless compressor's, of the same values (COMPRESSOR_FOR). A simple image
    is short under both, so what is left is what the model knows beyond
    simplicity."""
    return terms.bits_per_dim - terms.compressed(COMPRESSOR_FOR[terms.binarized])


def latent_rarity(terms: Terms) -> np.ndarray:
    """-log p(mu) under the bundle's fitted prior (the mixture over its training
    codes), in nats: how far from the training codes the image's code lies."""
    return -terms.prior.mixture.log_density(terms.mu)


def z_sum(terms: Terms, parts: tuple[str, ...]) -> np.ndarray:
    """The sum of the parts' robust z-scores among the held-out images:
    (value - median) / half the spread of their 16th to 84th percentiles (a
    standard deviation, for a normal distribution). Each part counts alike
    whatever its unit, and an image far beyond every held-out one stays
    ranked (a sum of percentiles would stop at 200)."""
    return sum(terms.calibration.z(name, SCORES[name].compute(terms)) for name in parts)


COMBINED_PARTS = ("input-complexity", "latent-rarity")
SCORES: dict[str, Score] = {s.name: s for s in (
    Score("bits", "raw bits/dim, the likelihood itself (fails on simpler images than the training data)", raw_bits),
    Score("input-complexity", "bits/dim minus a lossless compressor's bits/dim of the same values", input_complexity),
    Score("latent-rarity", "-log p(mu) under the fitted prior", latent_rarity, needs_prior=True),
    Score("complexity+latent", "the sum of the robust z-scores of input-complexity and latent-rarity",
          lambda terms: z_sum(terms, COMBINED_PARTS), parts=COMBINED_PARTS, needs_prior=True),
)}


def get_score(name: str | None) -> Score:
    """The registered score `name` (None: DEFAULT_SCORE); an ArgumentError names the known ones."""
    try:
        return SCORES[DEFAULT_SCORE if name is None else name]
    except KeyError:
        raise ArgumentError(f"unknown score {name!r}; choose one of {', '.join(SCORES)}.", argument="using") from None


def available(score: Score, terms: Terms) -> bool:
    """Whether `score` can be computed for these terms (a prior or a calibration it needs is there)."""
    if score.needs_prior and terms.prior is None:
        return False
    return not score.parts or (terms.calibration is not None and all(p in terms.calibration.quantiles
                                                                      for p in score.parts))


# ---------------------------------------------------------------- calibration

class Calibration:
    """The distribution of each score over a model's held-out images: its
    QUANTILES quantiles (from 0 to 100 percent), and the facts of how they were
    measured (k, seed, images, dataset). A bundle keeps it in calibration.npy
    (vaegen.bundle.records)."""

    def __init__(self, quantiles: dict[str, np.ndarray], facts: dict):
        self.quantiles, self.facts = quantiles, facts

    @property
    def k(self) -> int:
        return int(self.facts["k"])

    def percentile(self, name: str, values: np.ndarray) -> np.ndarray:
        """Each value's percentile (0 to 100) among the held-out images' scores `name`."""
        return percentile_among(self.quantiles[name], values)

    def z(self, name: str, values: np.ndarray) -> np.ndarray:
        """Each value's robust z-score among the held-out images' scores `name`:
        (value - q50) / ((q84 - q16) / 2)."""
        q = self.quantiles[name]
        q16, q50, q84 = np.interp([16.0, 50.0, 84.0], np.linspace(0.0, 100.0, len(q)), q)
        return (np.asarray(values, np.float64) - q50) / max((q84 - q16) / 2, np.finfo(np.float64).tiny)

    def threshold(self, name: str, flag_above: float = FLAG_ABOVE) -> float:
        """The score `name` above which an image is flagged at percentile `flag_above`."""
        q = self.quantiles[name]
        return float(np.interp(flag_above, np.linspace(0.0, 100.0, len(q)), q))


def percentile_among(quantiles: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The percentile (0 to 100) of each value in the distribution whose
    evenly spaced quantiles (0 to 100 percent, non-decreasing) are
    `quantiles`: linear between two neighbouring quantiles, the middle of a
    run of equal ones (a value many held-out images share), 0 below the
    least and 100 above the greatest. NaN stays NaN."""
    q = np.asarray(quantiles, np.float64)
    v = np.asarray(values, np.float64)
    levels = np.linspace(0.0, 100.0, len(q))
    low, high = np.searchsorted(q, v, "left"), np.searchsorted(q, v, "right")
    tied = high > low
    inside = ~tied & (low > 0) & (low < len(q))
    lo, hi = np.clip(low - 1, 0, len(q) - 1), np.clip(low, 0, len(q) - 1)
    gap = np.where(inside, q[hi] - q[lo], 1.0)
    between = levels[lo] + (v - q[lo]) / gap * (levels[hi] - levels[lo])
    out = np.where(low >= len(q), 100.0, 0.0)
    out = np.where(inside, between, out)
    out = np.where(tied, (levels[np.clip(low, 0, len(q) - 1)] + levels[np.clip(high - 1, 0, len(q) - 1)]) / 2, out)
    return np.where(np.isnan(v), np.nan, out)


def calibration_rows(count: int, most: int = CALIBRATION_IMAGES) -> np.ndarray:
    """Which of `count` held-out images a calibration scores: all, or `most`
    spread evenly over them (a split's order can follow its source: MNIST's
    last 5,000 test digits are by other writers than its first)."""
    if count <= most:
        return np.arange(count)
    return np.linspace(0, count - 1, most).round().astype(np.int64)


def calibrate(model, levels: np.ndarray, *, prior=None, k: int = DEFAULT_K, seed: int = 0, facts: dict | None = None,
              progress: Callable[[int], None] | None = None) -> Calibration:
    """The calibration of `model` on held-out uint8 images [N, C, H, W]:
    every registered score's quantiles (a score needing a prior is left out
    without one). A score that fuses others is measured against the
    quantiles of its parts from these same images."""
    start = time.perf_counter()
    terms = measure(model, levels, k=k, seed=seed, prior=prior, progress=progress)
    grid = np.linspace(0.0, 1.0, QUANTILES)
    terms.calibration = Calibration({}, {})
    for score in sorted(SCORES.values(), key=lambda s: bool(s.parts)):  # the parts first
        if available(score, terms):
            terms.calibration.quantiles[score.name] = np.quantile(score.compute(terms), grid)
    facts = {**(facts or {}), "images": len(levels), "k": k, "seed": seed, "binarized_with": EVAL_SEED
             if terms.binarized else None, "compressor": compressor_version(terms.binarized),
             "scores": list(terms.calibration.quantiles), "seconds": round(time.perf_counter() - start, 1)}
    return Calibration(terms.calibration.quantiles, facts)


# ---------------------------------------------------------------- scoring

def score_terms(terms: Terms, using: str | None = None, flag_above: float = FLAG_ABOVE) -> list[dict]:
    """Each image's record: bits_per_dim, the OOD score `using` (its name as
    `score`), its percentile among the held-out images and whether it is
    flagged (percentile above `flag_above`). Without a calibration the
    percentile and flag are None, and so is an OOD score that needs one."""
    score = get_score(using)
    if not 0 <= flag_above <= 100:
        raise ArgumentError(f"flag_above must be a percentile from 0 to 100, not {flag_above}.", argument="flag_above")
    values = score.compute(terms) if available(score, terms) else np.full(len(terms), np.nan)
    calibrated = terms.calibration is not None and score.name in terms.calibration.quantiles
    percentiles = terms.calibration.percentile(score.name, values) if calibrated else np.full(len(terms), np.nan)
    return [{"bits_per_dim": float(bits), "score": score.name, "ood_score": _number(value),
             "percentile": _number(pct), "flagged": None if np.isnan(pct) else bool(pct > flag_above)}
            for bits, value, pct in zip(terms.bits_per_dim, values, percentiles, strict=True)]


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
