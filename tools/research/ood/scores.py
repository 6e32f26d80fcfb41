# ruff: noqa: B007, B023, E501
"""Every candidate OOD score of the study, per image, from the cached terms
(compute_density.py, compressors.py, background.py, and a Ren background's
compute_density.py run). Higher = more out-of-distribution.

    load_scores(model, k=100) -> {set: {score_name: values [n]}}
"""

from __future__ import annotations

import math

import numpy as np
from common import CACHE, SETS, percentile_of

LN2 = math.log(2)
DIMS = 784


def _density(tag: str, name: str, k: int) -> dict | None:
    """IW terms of one set with k samples: the first k of seed 0's draws, then seed 1's."""
    parts = []
    for path in sorted((CACHE / tag).glob(f"{name}_k*_s*.npz"), key=lambda p: p.name.split("_s")[1]):
        parts.append(np.load(path))
    if not parts:
        return None
    log_w = np.concatenate([p["log_w"] for p in parts], axis=1)
    log_px = np.concatenate([p["log_px"] for p in parts], axis=1)
    if log_w.shape[1] < k:
        return None
    log_w, log_px = log_w[:, :k], log_px[:, :k]
    first = parts[0]
    return {"log_w": log_w, "log_px": log_px, "mu": first["mu"], "logvar": first["logvar"],
            "log_px_mu": first["log_px_mu"], "gmm": first["gmm"]}


def bits(nats: np.ndarray) -> np.ndarray:
    return nats / (DIMS * LN2)


def iw_bpd(log_w: np.ndarray) -> np.ndarray:
    k = log_w.shape[1]
    return bits(-(np.logaddexp.reduce(log_w, axis=1) - math.log(k)))


def base_terms(model: str, k: int, tag: str | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Per set: the model's own terms (bits/dim unless noted). k = 0: "bpd" is
    the deterministic proxy -log p(x | mu) + KL (one decode, no noise)."""
    out = {}
    for name in SETS:
        d = _density(tag or model, name, max(k, 1))
        if d is None:
            continue
        mu, logvar = d["mu"].astype(np.float64), d["logvar"].astype(np.float64)
        kl = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).sum(axis=1)
        out[name] = {
            "bpd": iw_bpd(d["log_w"]) if k > 0 else bits(kl - d["log_px_mu"]),
            "elbo": bits(-d["log_w"].mean(axis=1)),
            "kl": bits(kl),
            "recon_q": bits(-d["log_px"].mean(axis=1)),
            "recon_mu": bits(-d["log_px_mu"]),
            "gmm_nll": -d["gmm"],  # nats, -log p_GMM(mu)
            "mu_norm": 0.5 * (mu**2).sum(axis=1),  # -log N(mu; 0, I) + const
            "post_logvar": -logvar.sum(axis=1),  # posterior sharpness
        }
    return out


def load_scores(model: str, k: int = 100, ren_tags: tuple[str, ...] = ()) -> dict[str, dict[str, np.ndarray]]:
    """Every candidate score per set at k importance samples (k = 0: the
    deterministic proxy stands in for the IW bound, the background VAE's too)."""
    terms = base_terms(model, k)
    comp = np.load(CACHE / f"compress_{model}.npz")
    back = np.load(CACHE / f"background_{model}.npz")
    ren = {tag: base_terms(model, k, tag) for tag in ren_tags}
    scores: dict[str, dict[str, np.ndarray]] = {}
    for name, t in terms.items():
        n = len(t["bpd"])
        s = {"raw bpd": t["bpd"], "ELBO bpd": t["elbo"], "KL": t["kl"], "recon E_q": t["recon_q"],
             "recon at mu": t["recon_mu"], "-log p_GMM(mu)": t["gmm_nll"], "|mu|^2/2": t["mu_norm"],
             "-sum logvar": t["post_logvar"]}
        for key in comp.files:
            set_name, c = key.split("/")
            if set_name == name:
                s[f"IC {c}"] = t["bpd"] - comp[key][:n]
        for key in back.files:
            set_name, b = key.split("/")
            if set_name == name:
                s[f"LR {b}"] = t["bpd"] - back[key][:n]
        for tag, rt in ren.items():
            if name in rt:
                s[f"LR {tag}"] = t["bpd"] - rt[name]["bpd"][:n]
        scores[name] = s
    return scores


def add_derived(scores: dict[str, dict[str, np.ndarray]], ref: str = "cal",
                typical: tuple[str, ...] = (), combos: tuple[tuple[str, str], ...] = ()) -> None:
    """Typicality (|score - mean over the calibration set|) and combinations of
    two scores calibrated on the calibration set (sum or max of their
    percentiles, sum of their robust z-scores), in place."""
    cal = scores[ref]
    for name, s in scores.items():
        for key in typical:
            s[f"typ |{key}|"] = np.abs(s[key] - cal[key].mean())
        for a, b in combos:
            pa, pb = percentile_of(cal[a], s[a]), percentile_of(cal[b], s[b])
            s[f"pct({a}) + pct({b})"] = pa + pb
            s[f"max(pct({a}), pct({b}))"] = np.maximum(pa, pb)
            s[f"z({a}) + z({b})"] = robust_z(cal[a], s[a]) + robust_z(cal[b], s[b])


def robust_z(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(value - median) / half the 16-84% spread of the reference: a z-score that needs 3 stored quantiles."""
    q16, q50, q84 = np.quantile(reference, [0.16, 0.5, 0.84])
    return (values - q50) / ((q84 - q16) / 2)
