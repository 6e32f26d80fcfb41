"""Latent-density variants beyond the bundle's overall mixture, from the cached
posterior means: the best class mixture (-max_c log p_c(mu), the bundle's
per-class GMMs) and a single full-covariance Gaussian fitted to `cal` codes
(Mahalanobis distance). Prints AUROC against each OOD set.

    python latent_extra.py
"""

from __future__ import annotations

import numpy as np
from common import CACHE, OOD_SETS, SET_LABEL, auroc, model_path


def main() -> None:
    import vaegen

    for model in ("fashion-mnist", "mnist"):
        m = vaegen.load_model(model_path(model))
        prior = m.prior
        mus = {n: np.load(CACHE / model / f"{n}_k100_s0.npz")["mu"] for n in ("in", "cal", *OOD_SETS)}
        overall = {n: -prior.mixture.log_density(mu) for n, mu in mus.items()}
        per_class = {n: -np.max(np.stack([c.log_density(mu) for c in prior.per_class]), axis=0) for n, mu in mus.items()}
        mean = mus["cal"].mean(axis=0)
        prec = np.linalg.inv(np.cov(mus["cal"].T) + 1e-6 * np.eye(mus["cal"].shape[1]))
        maha = {n: np.einsum("ni,ij,nj->n", mu - mean, prec, mu - mean) for n, mu in mus.items()}
        print(f"weights/{model}")
        for label, s in (("-log p_GMM(mu), overall mixture", overall), ("-max_c log p_c(mu), class mixtures", per_class),
                         ("Mahalanobis, one Gaussian fitted to cal", maha)):
            print(f"  {label:42s}", "  ".join(f"{SET_LABEL[model][o]}: {auroc(s['in'], s[o]):.3f}" for o in OOD_SETS))


if __name__ == "__main__":
    main()
