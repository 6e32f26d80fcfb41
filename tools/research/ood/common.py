"""Shared pieces of the OOD study (issue 28): the image sets each model is
tested on, as that model sees them, and the detection metrics in numpy.

Run every script with the snapshot's code:
    PYTHONPATH=. .venv/bin/python <script>.py ...
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
WEIGHTS = Path(os.environ.get("VAEGEN_WEIGHTS", "weights"))
DATA_DIRS = {"mnist": "../shared/data/mnist", "fashion-mnist": "/usr/share/datasets/fashion-mnist"}
MODELS = ("fashion-mnist", "mnist")  # shipped bundles, named by their training dataset
OTHER = {"fashion-mnist": "mnist", "mnist": "fashion-mnist"}
N = 1000  # images per set
NOISE_SEED = 1234
CONST_SEED = 4321
CAL = slice(1000, 2000)  # calibration images: held-out (test) images disjoint from the evaluated ones
TAIL = slice(9000, 10000)  # the last 1,000 test images (MNIST: the harder NIST-test writers), a shifted held-out check


def model_path(model: str) -> Path:
    return WEIGHTS / model


def likelihood_of(model: str) -> str:
    return "bernoulli" if model == "mnist" else "logistic"


def load_uint8(dataset: str, split: str = "test") -> np.ndarray:
    """uint8 [N, 1, 28, 28] images of a named IDX dataset."""
    from vaegen.data.named import load_idx_dataset

    return load_idx_dataset(dataset, split, DATA_DIRS[dataset]).images


def raw_set(model: str, name: str) -> np.ndarray:
    """The uint8 images [1000, 1, 28, 28] of set `name` for `model`, before the
    model's own input transform (binarization for the Bernoulli model).

    in       the model's test split, first 1000 (the in-distribution set)
    cal      the model's test split, images 1000-1999 (the calibration set: the
             held-out images whose score quantiles the bundle would store)
    tail     the model's test split, images 9000-9999 (a second held-out set;
             MNIST's last 5,000 test images come from other, harder writers)
    other    the other shipped dataset's test split, first 1000
    vflip    in, flipped upside down
    hflip    in, mirrored left-right
    noise    uniform 8-bit noise (seed NOISE_SEED)
    const    constant images, one level each drawn uniformly from 0..255 (seed CONST_SEED)
    black    all-zero images (a single image repeated)
    """
    own = load_uint8(model)
    if name == "in":
        return own[:N]
    if name == "cal":
        return own[CAL]
    if name == "tail":
        return own[TAIL]
    if name == "other":
        return load_uint8(OTHER[model])[:N]
    if name == "vflip":
        return own[:N, :, ::-1, :].copy()
    if name == "hflip":
        return own[:N, :, :, ::-1].copy()
    if name == "noise":
        return np.random.default_rng(NOISE_SEED).integers(0, 256, (N, 1, 28, 28), dtype=np.uint8)
    if name == "const":
        levels = np.random.default_rng(CONST_SEED).integers(0, 256, N, dtype=np.uint8)
        return np.broadcast_to(levels[:, None, None, None], (N, 1, 28, 28)).copy()
    if name == "black":
        return np.zeros((N, 1, 28, 28), np.uint8)
    raise ValueError(name)


SETS = ("in", "cal", "tail", "other", "vflip", "hflip", "noise", "const", "black")
OOD_SETS = ("other", "vflip", "hflip", "noise", "const", "black")
SET_LABEL = {
    "fashion-mnist": {"other": "MNIST digits", "vflip": "F-MNIST upside down", "hflip": "F-MNIST mirrored",
                      "noise": "uniform noise", "const": "constant images", "black": "black images"},
    "mnist": {"other": "Fashion-MNIST", "vflip": "MNIST upside down", "hflip": "MNIST mirrored",
              "noise": "uniform noise", "const": "constant images", "black": "black images"},
}


def model_set(model: str, name: str) -> np.ndarray:
    """Set `name` as the model sees it (vaegen.data.load.model_input: the
    Bernoulli model's images binarized once with EVAL_SEED, the logistic
    model's as levels k/255), float32 [1000, 1, 28, 28]."""
    from vaegen.data.load import model_input

    return model_input(raw_set(model, name), likelihood_of(model))


# ------------------------------------------------------------------ metrics

def auroc(score_in: np.ndarray, score_out: np.ndarray) -> float:
    """P(score_out > score_in) + P(tie)/2: OOD is the positive class, higher = more OOD."""
    s = np.concatenate([score_in, score_out]).astype(np.float64)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    n_in, n_out = len(score_in), len(score_out)
    return float((ranks[n_in:].sum() - n_out * (n_out + 1) / 2.0) / (n_in * n_out))


def auprc(score_in: np.ndarray, score_out: np.ndarray) -> float:
    """Average precision with OOD as the positive class (AUPR-Out), ties grouped."""
    s = np.concatenate([score_in, score_out]).astype(np.float64)
    y = np.concatenate([np.zeros(len(score_in)), np.ones(len(score_out))])
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each tie group
    tp = np.cumsum(y)[distinct]
    fp = (distinct + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def fpr_at_tpr(score_in: np.ndarray, score_out: np.ndarray, tpr: float = 0.95) -> float:
    """Share of in-distribution images flagged at the threshold that flags `tpr`
    of the OOD images (threshold = the (1 - tpr) quantile of OOD scores, flag >= it)."""
    t = np.sort(score_out)[int(np.floor((1 - tpr) * len(score_out)))]
    return float(np.mean(score_in >= t))


def detection(score_in, score_out) -> dict:
    return {"auroc": auroc(score_in, score_out), "auprc": auprc(score_in, score_out),
            "fpr95": fpr_at_tpr(score_in, score_out)}


def percentile_of(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Percentile (0-100) of each value among the reference scores (mid-rank for ties)."""
    ref = np.sort(reference)
    lo = np.searchsorted(ref, values, side="left")
    hi = np.searchsorted(ref, values, side="right")
    return 100.0 * (lo + hi) / (2.0 * len(ref))
