"""Out-of-distribution detection, measured: how well each score of
vaegen.evaluation.scores tells a model's held-out images (in-distribution)
from another set (out), as AUROC, AUPRC and the false-positive rate at 95%
true-positive rate, with the out-of-distribution images as the positive
class and higher scores meaning "out". `vaegen evaluate --ood` runs it; the
shipped models' cards record its figures.

The metrics are numpy alone, with ties handled as the literature does: the
AUROC counts a tie as half (the Mann-Whitney statistic), the AUPRC is the
average precision over the distinct thresholds (a run of tied scores is one
step), and the FPR is read at the highest threshold that flags at least 95%
of the out-of-distribution images.

Besides a dataset or a folder, two sets are made from the held-out images
themselves: "upside-down" (each image flipped vertically, a near
out-of-distribution set) and "noise" (uniform 8-bit noise of their shape).
Imports numpy and vaegen's torch-free modules.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from vaegen.evaluation.scores import SCORES, Terms, available, measure

MADE_SETS = ("upside-down", "noise")  # the sets made from the held-out images, by name
TPR = 0.95  # the true-positive rate at which the false-positive rate is read


def auroc(score_in: np.ndarray, score_out: np.ndarray) -> float:
    """P(out > in) + P(out = in) / 2 for a random pair: the area under the ROC
    curve, out-of-distribution positive, from the mid-ranks of the pooled scores."""
    a, b = np.asarray(score_in, np.float64), np.asarray(score_out, np.float64)
    pooled = np.concatenate([a, b])
    order = np.argsort(pooled, kind="mergesort")
    _, first, counts = np.unique(pooled[order], return_index=True, return_counts=True)
    ranks = np.empty(len(pooled))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)  # 1-based mid-ranks of each run of ties
    n_in, n_out = len(a), len(b)
    return float((ranks[n_in:].sum() - n_out * (n_out + 1) / 2.0) / (n_in * n_out))


def _curve(score_in: np.ndarray, score_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true positives, false positives) flagged at each distinct threshold, highest first (flag: score >= t)."""
    pooled = np.concatenate([score_in, score_out]).astype(np.float64)
    positive = np.concatenate([np.zeros(len(score_in)), np.ones(len(score_out))])
    order = np.argsort(-pooled, kind="mergesort")
    pooled, positive = pooled[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(pooled)), len(pooled) - 1]  # the last of each run of equal scores
    tp = np.cumsum(positive)[last]
    return tp, (last + 1) - tp


def auprc(score_in: np.ndarray, score_out: np.ndarray) -> float:
    """Average precision, out-of-distribution positive: the sum over distinct
    thresholds of (recall gained) x precision there."""
    tp, fp = _curve(score_in, score_out)
    recall = tp / len(score_out)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * tp / (tp + fp)))


def fpr_at_tpr(score_in: np.ndarray, score_out: np.ndarray, tpr: float = TPR) -> float:
    """The share of in-distribution images flagged at the highest threshold
    that flags at least `tpr` of the out-of-distribution ones."""
    tp, fp = _curve(score_in, score_out)
    reached = np.flatnonzero(tp >= tpr * len(score_out) - 1e-9)
    return float(fp[reached[0]] / len(score_in))


def detection(score_in: np.ndarray, score_out: np.ndarray) -> dict[str, float]:
    """AUROC, AUPRC and the FPR at 95% TPR of one score."""
    return {"auroc": auroc(score_in, score_out), "auprc": auprc(score_in, score_out),
            "fpr_at_95_tpr": fpr_at_tpr(score_in, score_out)}


def made_set(name: str, held_out: np.ndarray, seed: int = 0) -> np.ndarray:
    """A set of MADE_SETS from the held-out uint8 images [N, C, H, W]."""
    if name == "upside-down":
        return np.ascontiguousarray(held_out[:, :, ::-1, :])
    return np.random.default_rng(seed).integers(0, 256, held_out.shape, dtype=np.uint8)


def ood_images(name: str, model, held_out: np.ndarray, *, data_dir: str | os.PathLike | None = None,
               limit: int | None = None, seed: int = 0, progress=None) -> np.ndarray:
    """The uint8 images [N, C, H, W] of the set `name` for `model`: one of
    MADE_SETS, a named dataset's held-out split, or an image folder (whole,
    unless it is the model's own: then its held-out tenth), in the model's shape."""
    from vaegen.data.load import load_for_model, model_split

    if name in MADE_SETS and not os.path.isdir(name):
        return made_set(name, held_out, seed)
    split = model_split(name, "test", model.bundle.meta)
    data = load_for_model(name, split, data_dir, model.image_shape, progress=progress)
    return np.asarray(data.images[:limit] if limit else data.images)


def compare(inside: Terms, outside: Terms) -> dict:
    """Each score's detection figures (those the terms allow: a prior, a
    calibration), with each set's mean bits/dim."""
    figures = {name: detection(score.compute(inside), score.compute(outside))
               for name, score in SCORES.items() if available(score, inside)}
    return {"images": len(outside), "mean_bits_per_dim": float(np.mean(outside.bits_per_dim)), "scores": figures}


def ood_report(model, held_out: np.ndarray, sets: dict[str, np.ndarray], *, k: int, seed: int = 0,
               calibration=None, progress: Callable[[int], None] | None = None) -> dict:
    """Detection figures of every score, the held-out uint8 images against
    each set of `sets` (name -> uint8 images), all scored at k and seed.
    `calibration`: the one the scores that sum percentiles read [default: the bundle's]."""
    calibration = calibration if calibration is not None else model.calibration
    options = {"k": k, "seed": seed, "prior": model.prior, "calibration": calibration, "progress": progress}
    inside = measure(model, held_out, **options)
    report = {"k": k, "seed": seed, "in": {"images": len(inside), "mean_bits_per_dim": float(np.mean(inside.bits_per_dim))},
              "sets": {}}
    for name, images in sets.items():
        report["sets"][name] = compare(inside, measure(model, images, **options))
    return report
