"""Per-image density terms of a bundle on the study's image sets, cached.

For each image: the encoder's mu and logvar, K importance log-weights
log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x) and the log p(x|z_k)
(vaegen.evaluation.metrics.log_importance_weights, the code `vaegen evaluate`
runs), log p(x | z = mu) (one decode at the posterior mean), and log p(mu)
under the bundle's fitted GMM prior. The noise is drawn exactly as
metrics.evaluate draws it (one generator seeded `seed`, K x D per image in
order), so with seed 0 and K = k the IW bound equals `vaegen evaluate --k k`.

    python compute_density.py --model fashion-mnist --sets in cal other --k 100
    python compute_density.py --model fashion-mnist --sets in --k 200 --seed 1   # extra draws, for k = 300
    python compute_density.py --bundle runs/bg-mnist/model --tag bg-mnist --model mnist ...  # a background model

Writes cache/<tag>/<set>_k<K>_s<seed>.npz.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from common import CACHE, model_path, model_set


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="which model's sets (fashion-mnist or mnist)")
    ap.add_argument("--bundle", help="bundle folder to score with [default: the shipped one of --model]")
    ap.add_argument("--tag", help="cache folder name [default: --model]")
    ap.add_argument("--sets", nargs="+", required=True)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import vaegen
    from vaegen.evaluation.metrics import log_importance_weights, reconstruction_log_likelihood

    model = vaegen.load_model(args.bundle or model_path(args.model), provider="cpu", threads=args.threads)
    prior = model.prior
    out_dir = CACHE / (args.tag or args.model)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in args.sets:
        out = out_dir / f"{name}_k{args.k}_s{args.seed}.npz"
        if out.exists():
            print(f"{out} exists, skipped", flush=True)
            continue
        images = model_set(args.model, name)[: args.limit]
        n = len(images)
        start = time.perf_counter()
        mu, logvar = model.encode(images)
        flat = images.reshape(n, -1)
        rng = np.random.default_rng(args.seed)
        log_w = np.empty((n, args.k))
        log_px = np.empty((n, args.k))
        log_px_mu = np.empty(n)
        for i in range(n):
            eps = rng.standard_normal((args.k, mu.shape[1]), dtype=np.float32)
            log_w[i], log_px[i] = log_importance_weights(model, flat[i], mu[i], logvar[i], eps)
            if i % 100 == 99:
                print(f"{name}: {i + 1}/{n} {(i + 1) / (time.perf_counter() - start):.2f} img/s", flush=True)
        for s in range(0, n, 100):  # log p(x | mu), batched by hand: one row per image
            for j in range(s, min(n, s + 100)):
                log_px_mu[j] = reconstruction_log_likelihood(model, mu[j : j + 1], flat[j])[0]
        seconds = time.perf_counter() - start
        gmm = prior.mixture.log_density(mu) if prior is not None else np.full(n, np.nan)
        np.savez(out, mu=mu, logvar=logvar, log_w=log_w, log_px=log_px, log_px_mu=log_px_mu, gmm=gmm,
                 dims=flat.shape[1], seconds=seconds)
        bpd = -(np.logaddexp.reduce(log_w, axis=1) - math.log(args.k)) / (flat.shape[1] * math.log(2))
        print(f"{out.name}: {n} images, mean IW bits/dim {bpd.mean():.4f}, {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
