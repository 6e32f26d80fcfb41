"""Lossless code lengths per image, in bits/dim, of the representation the
model codes: the 8-bit image for the logistic model, the binarized bits for
the Bernoulli model. These are the "complexity" terms of input complexity
(Serra et al. 2020): score = model bits/dim - compressor bits/dim.

    python compressors.py            # every model, set and compressor -> cache/compress_<model>.npz (sets already there are kept)
    python compressors.py alc8       # add or redo one computed coder (alc8, jbig1) for every set

Compressors (8-bit images, 28x28 uint8):
    png8     PNG, mode L, Pillow optimize=True
    webp8    WebP lossless (Pillow, quality 100, method 6)
    j2k8     JPEG 2000, lossless (Pillow/OpenJPEG, reversible wavelet)
    zlib8    deflate level 9 of the 784 raw bytes
    bz2_8    bzip2 level 9 of the raw bytes
    lzma8    xz preset 9e of the raw bytes
Binarized images (28x28 bits):
    png1     PNG, mode "1" (1 bit per pixel), optimize=True
    pngL01   PNG, mode L holding 0/255 (the bits in an 8-bit container)
    webp01   WebP lossless of the 0/255 image
    zlib1    deflate 9 of np.packbits (98 bytes)
    bz2_1, lzma1   the same with bzip2, xz
    alc8     an adaptive LOCO coder (our numpy JPEG-LS analogue, no fitting): the
             median edge predictor; the residual coded by a two-sided geometric
             law whose scale is the running mean |residual| of its context
             (8 bins of local activity), counts halved at 64 as JPEG-LS does;
             the ideal code length, exact and platform-independent
    jbig1    an adaptive binary context coder, JBIG's 10-pixel template with
             Krichevsky-Trofimov counts started empty for every image (the
             ideal code length of the arithmetic coder JBIG would drive; no fitting)
    png8raw  PNG of the 8-bit image BEFORE binarization (what issue 28's
             "PNG-corrected" figure for weights/mnist compressed)
Fixed header bytes shift every image of a compressor alike (they do not move
AUROC), so they are left in.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib

import numpy as np
from common import CACHE, MODELS, SETS, likelihood_of, model_set, raw_set
from PIL import Image

DIMS = 28 * 28


def _pil_bytes(img: Image.Image, fmt: str, **kw) -> int:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return len(buf.getvalue())


def png8(a: np.ndarray) -> int:
    return _pil_bytes(Image.fromarray(a, "L"), "PNG", optimize=True)


def webp8(a: np.ndarray) -> int:
    return _pil_bytes(Image.fromarray(a, "L"), "WEBP", lossless=True, quality=100, method=6)


def j2k8(a: np.ndarray) -> int:
    return _pil_bytes(Image.fromarray(a, "L"), "JPEG2000", irreversible=False)


def png1(bits: np.ndarray) -> int:
    return _pil_bytes(Image.fromarray(bits.astype(bool)), "PNG", optimize=True)


def packed(bits: np.ndarray) -> bytes:
    return np.packbits(bits.astype(np.uint8).ravel()).tobytes()


COMPRESS_8BIT = {
    "png8": png8,
    "webp8": webp8,
    "j2k8": j2k8,
    "zlib8": lambda a: len(zlib.compress(a.tobytes(), 9)),
    "bz2_8": lambda a: len(bz2.compress(a.tobytes(), 9)),
    "lzma8": lambda a: len(lzma.compress(a.tobytes(), preset=9 | lzma.PRESET_EXTREME)),
}
COMPRESS_BITS = {
    "png1": png1,
    "pngL01": lambda b: png8((b * 255).astype(np.uint8)),
    "webp01": lambda b: webp8((b * 255).astype(np.uint8)),
    "zlib1": lambda b: len(zlib.compress(packed(b), 9)),
    "bz2_1": lambda b: len(bz2.compress(packed(b), 9)),
    "lzma1": lambda b: len(lzma.compress(packed(b), preset=9 | lzma.PRESET_EXTREME)),
}

# JBIG's three-line 10-pixel template (row offset, column offset), causal in raster order
JBIG_TEMPLATE = ((-2, -1), (-2, 0), (-2, 1), (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2), (0, -2), (0, -1))


def contexts(bits: np.ndarray, template=JBIG_TEMPLATE) -> np.ndarray:
    """Context index of every pixel: bits [N, H, W] in {0,1} -> int [N, H, W];
    pixels outside the image read as 0."""
    n, h, w = bits.shape
    pad = np.zeros((n, h + 2, w + 4), np.int64)
    pad[:, 2:, 2:-2] = bits
    ctx = np.zeros((n, h, w), np.int64)
    for j, (dy, dx) in enumerate(template):
        ctx |= pad[:, 2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w] << j
    return ctx


def adaptive_context_bits(bits: np.ndarray, template=JBIG_TEMPLATE, alpha: float = 0.5) -> np.ndarray:
    """Code length in bits of each binary image [N, H, W] under an adaptive
    context model started empty per image: P(1 | ctx) = (n1 + alpha) / (n + 2 alpha)."""
    n, h, w = bits.shape
    ctx = contexts(bits, template).reshape(n, -1)
    x = bits.reshape(n, -1).astype(np.int64)
    counts = np.zeros((n, 1 << len(template), 2))
    rows = np.arange(n)
    total = np.zeros(n)
    for p in range(h * w):
        c = counts[rows, ctx[:, p]]  # [n, 2]
        prob = (c[rows, x[:, p]] + alpha) / (c.sum(axis=1) + 2 * alpha)
        total -= np.log2(prob)
        counts[rows, ctx[:, p], x[:, p]] += 1
    return total


ACTIVITY_BINS = np.array([1, 3, 7, 15, 31, 63, 127])  # |d-b| + |b-c| + |c-a| -> 8 contexts


def adaptive_loco_bits(images: np.ndarray, a0: float = 4.0, reset: int = 64) -> np.ndarray:
    """Code length in bits of each uint8 image [N, H, W] under alc8 (see the module doc)."""
    n, h, w = images.shape
    pad = np.zeros((n, h + 1, w + 2), np.int64)
    pad[:, 1:, 1:-1] = images
    x = pad[:, 1:, 1:-1].reshape(n, -1)
    a = pad[:, 1:, :-2].reshape(n, -1)
    b = pad[:, :-1, 1:-1].reshape(n, -1)
    c = pad[:, :-1, :-2].reshape(n, -1)
    d = pad[:, :-1, 2:].reshape(n, -1)
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    pred = np.where(c >= hi, lo, np.where(c <= lo, hi, a + b - c))
    ctx = np.searchsorted(ACTIVITY_BINS, np.abs(d - b) + np.abs(b - c) + np.abs(c - a), side="right")
    err = x - pred
    count = np.ones((n, len(ACTIVITY_BINS) + 1))
    total_abs = np.full((n, len(ACTIVITY_BINS) + 1), a0)
    rows = np.arange(n)
    bits = np.zeros(n)
    for p in range(h * w):
        k = ctx[:, p]
        s = np.maximum(total_abs[rows, k] / count[rows, k], 0.05)  # mean |e| in this context
        theta = (np.sqrt(1 + s * s) - 1) / s  # two-sided geometric with E|e| = s
        up, down = 255 - pred[:, p], pred[:, p]  # the residuals x can still take: -down..up
        norm = (1 - theta ** (up + 1)) / (1 - theta) + theta * (1 - theta**down) / (1 - theta)
        e = np.abs(err[:, p])
        bits += -e * np.log2(theta) + np.log2(norm)
        count[rows, k] += 1
        total_abs[rows, k] += e
        full = count[rows, k] >= reset
        count[rows[full], k[full]] /= 2
        total_abs[rows[full], k[full]] /= 2
    return bits


def compress_set(model: str, name: str) -> dict[str, np.ndarray]:
    out = {}
    if likelihood_of(model) == "logistic":
        imgs = raw_set(model, name)[:, 0]  # uint8, exactly the levels the model codes
        for key, f in COMPRESS_8BIT.items():
            out[key] = np.array([f(a) for a in imgs]) * 8.0 / DIMS
        out["alc8"] = adaptive_loco_bits(imgs) / DIMS
    else:
        bits = model_set(model, name)[:, 0].astype(np.uint8)  # the bits the model codes
        for key, f in COMPRESS_BITS.items():
            out[key] = np.array([f(b) for b in bits]) * 8.0 / DIMS
        out["jbig1"] = adaptive_context_bits(bits) / DIMS
        raw = raw_set(model, name)[:, 0]
        out["png8raw"] = np.array([png8(a) for a in raw]) * 8.0 / DIMS
    return out


def main() -> None:
    import sys

    only = sys.argv[1:]  # compressor names to (re)compute for every set, e.g. alc8; none: every missing set
    for model in MODELS:
        path = CACHE / f"compress_{model}.npz"
        arrays = dict(np.load(path)) if path.exists() else {}
        done = {key.split("/")[0] for key in arrays}
        for name in SETS:
            if only:
                if likelihood_of(model) == "logistic" and "alc8" in only:
                    arrays[f"{name}/alc8"] = adaptive_loco_bits(raw_set(model, name)[:, 0]) / DIMS
                if likelihood_of(model) == "bernoulli" and "jbig1" in only:
                    arrays[f"{name}/jbig1"] = adaptive_context_bits(model_set(model, name)[:, 0].astype(np.uint8)) / DIMS
            elif name in done:
                continue
            else:
                for key, v in compress_set(model, name).items():
                    arrays[f"{name}/{key}"] = v
            print(model, name, {k.split("/")[1]: round(float(v.mean()), 3) for k, v in arrays.items()
                                if k.startswith(name + "/")}, flush=True)
        np.savez(path, **arrays)


if __name__ == "__main__":
    main()
