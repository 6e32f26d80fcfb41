"""Reference implementation of the recommended default OOD score, numpy only,
end to end on the study's sets: what `vaegen fit-prior` would fit and store,
and what `vaegen score` would compute.

    ood_score = z(pixel) + z(latent)
    pixel  = model bits/dim (IW bound, k samples)  -  bits/dim of a local context coder
             fitted on the training images with Ren et al.'s perturbation (rate 0.2):
               Bernoulli model: a 16-pixel causal binary context (background.ctx16_mu20)
               logistic model:  LOCO-I's predictor, residual histograms in 3,645 contexts (background.loco_mu20)
    latent = -log p_GMM(mu), the bundle's fitted prior at the posterior mean
    z(v)   = (v - q50) / ((q84 - q16) / 2), quantiles of v over the held-out images

Flag: ood_score above the 99th percentile of the held-out images' ood_score.
Percentiles: linear interpolation in quantiles stored every 0.1% (1,001 values a term).

    python recommended.py --k 10        # AUROC / AUPRC / FPR95 and flagged shares, from the cached IW weights
"""

from __future__ import annotations

import argparse

import numpy as np
from background import TEMPLATE16, fit_binary_context, fit_loco, perturb, score_binary_context, score_loco
from common import CACHE, OOD_SETS, SET_LABEL, detection, likelihood_of, load_uint8, model_set, raw_set
from scores import _density, iw_bpd

LEVELS = np.linspace(0.0, 100.0, 1001)
RATE, PERTURB_SEED, BINARIZE_SEED = 0.2, 7, 1


def fit_coder(model: str) -> np.ndarray:
    """The background table, fitted on the training split (what fit-prior would store)."""
    train = perturb(load_uint8(model, "train"), RATE, PERTURB_SEED)
    if likelihood_of(model) == "bernoulli":
        from vaegen.data.load import binarize

        return fit_binary_context(binarize(train, seed=BINARIZE_SEED)[:, 0].astype(np.uint8), TEMPLATE16)
    return fit_loco(train[:, 0])


def coder_bits(model: str, table: np.ndarray, name: str) -> np.ndarray:
    if likelihood_of(model) == "bernoulli":
        return score_binary_context(table, model_set(model, name)[:, 0].astype(np.uint8), TEMPLATE16)
    return score_loco(table, raw_set(model, name)[:, 0])


def fitted_coder(model: str) -> np.ndarray:
    """fit_coder's table; background.py fitted the same (same data, rate and seeds) into the cache."""
    path = CACHE / f"background_tables_{model}.npz"
    if path.exists():
        return np.load(path)["ctx16_mu20" if likelihood_of(model) == "bernoulli" else "loco_mu20"]
    return fit_coder(model)


def terms(model: str, table: np.ndarray, name: str, k: int) -> dict[str, np.ndarray] | None:
    d = _density(model, name, k)
    if d is None:
        return None
    bpd = iw_bpd(d["log_w"])
    return {"bits_per_dim": bpd, "pixel": bpd - coder_bits(model, table, name)[: len(bpd)], "latent": -d["gmm"]}


def calibrate(held_out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the bundle stores: quantiles every 0.1% of each term and of the fused score."""
    cal = {key: np.quantile(v, LEVELS / 100) for key, v in held_out.items()}
    cal["ood_score"] = np.quantile(fuse(cal, held_out), LEVELS / 100)
    return cal


def z(quantiles: np.ndarray, v: np.ndarray) -> np.ndarray:
    q16, q50, q84 = np.interp([16.0, 50.0, 84.0], LEVELS, quantiles)
    return (v - q50) / ((q84 - q16) / 2)


def fuse(cal: dict, t: dict) -> np.ndarray:
    return z(cal["pixel"], t["pixel"]) + z(cal["latent"], t["latent"])


def score(cal: dict, t: dict) -> dict[str, np.ndarray]:
    ood = fuse(cal, t)
    return {"bits_per_dim": t["bits_per_dim"],
            "percentile": np.interp(t["bits_per_dim"], cal["bits_per_dim"], LEVELS),
            "ood_score": ood,
            "ood_percentile": np.interp(ood, cal["ood_score"], LEVELS),
            "flagged": ood > np.interp(99.0, LEVELS, cal["ood_score"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    for model in ("fashion-mnist", "mnist"):
        table = fitted_coder(model)
        held_out = terms(model, table, "cal", args.k)
        if held_out is None:
            print(f"weights/{model}: no cached draws for k = {args.k}")
            continue
        cal = calibrate(held_out)
        res = {}
        for name in ("in", "tail", *OOD_SETS):
            t = terms(model, table, name, args.k)
            if t is not None:
                res[name] = score(cal, t)
        print(f"weights/{model}, k = {args.k}: flagged {100 * res['in']['flagged'].mean():.1f}% of `in`"
              + (f", {100 * res['tail']['flagged'].mean():.1f}% of `tail`" if "tail" in res else ""))
        for name in OOD_SETS:
            if name in res:
                d = detection(res["in"]["ood_score"], res[name]["ood_score"])
                print(f"  {SET_LABEL[model][name]:22s} AUROC {d['auroc']:.3f}  AUPRC {d['auprc']:.3f}  "
                      f"FPR95 {d['fpr95']:.3f}  flagged {100 * res[name]['flagged'].mean():.1f}%")


if __name__ == "__main__":
    main()
