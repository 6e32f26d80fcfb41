# ruff: noqa: B007, B023, E501
"""Throughput (images/s) of scoring at each k on this machine, ONNX Runtime on
the CPU, for each shipped model:

    loop      metrics.evaluate's way: one image at a time, its k latents in one decoder call
    batched   the k latents of many images stacked, decoded 1,024 rows a call
    extras    the per-image cost of the correction terms, once the IW bound is known:
              PNG / WebP / JBIG-style code lengths, the fitted context background,
              and -log p_GMM(mu) under the bundle's prior

    python bench.py --threads 2 --json bench.json

Numbers depend on what else runs: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from common import CACHE, MODELS, model_path, model_set, raw_set

KS = (0, 1, 10, 30, 100, 300)
IMAGES = {"fashion-mnist": {0: 400, 1: 400, 10: 200, 30: 100, 100: 40, 300: 15},
          "mnist": {0: 2000, 1: 2000, 10: 1000, 30: 500, 100: 200, 300: 100}}
ROWS = 1024


def iw_loop(model, x, k, seed=0):
    from vaegen.evaluation.metrics import log_importance_weights, logmeanexp

    mu, logvar = model.encode(x)
    rng = np.random.default_rng(seed)
    flat = x.reshape(len(x), -1)
    out = np.empty(len(x))
    for i in range(len(x)):
        eps = rng.standard_normal((k, mu.shape[1]), dtype=np.float32)
        log_w, _ = log_importance_weights(model, flat[i], mu[i], logvar[i], eps)
        out[i] = -logmeanexp(log_w)
    return out, mu


def iw_batched(model, x, k, seed=0):
    """The same bound, the k latents of ROWS // k images per decoder call (same draws as iw_loop)."""
    from vaegen.evaluation.metrics import LOG_2PI, bernoulli_log_likelihood, logistic_log_likelihood

    mu, logvar = model.encode(x)
    n, d = mu.shape
    rng = np.random.default_rng(seed)
    eps = np.stack([rng.standard_normal((k, d), dtype=np.float32) for _ in range(n)])  # [n, k, d]
    z = (mu[:, None] + np.exp(0.5 * logvar)[:, None] * eps).astype(np.float32)
    flat = x.reshape(n, -1)
    per = max(1, ROWS // k)
    log_px = np.empty((n, k))
    for s in range(0, n, per):
        zz = z[s : s + per].reshape(-1, d)
        xs = np.repeat(flat[s : s + per], k, axis=0)
        if model.bundle.likelihood == "bernoulli":
            logits = np.concatenate(list(model.decode_batches(zz, output="logits"))).reshape(len(zz), -1)
            log_px[s : s + per] = bernoulli_log_likelihood(logits, xs).reshape(-1, k)
        else:
            parts = list(model.decode_outputs(zz, ["loc", "log_scale"]))
            loc = np.concatenate([p[0] for p in parts]).reshape(len(zz), -1)
            ls = np.concatenate([p[1] for p in parts]).reshape(len(zz), -1)
            log_px[s : s + per] = logistic_log_likelihood(loc, ls, xs).reshape(-1, k)
    z64, e64 = z.astype(np.float64), eps.astype(np.float64)
    log_pz = -0.5 * (z64**2 + LOG_2PI).sum(axis=2)
    log_qz = -0.5 * (e64**2 + logvar.astype(np.float64)[:, None] + LOG_2PI).sum(axis=2)
    log_w = log_px + log_pz - log_qz
    top = log_w.max(axis=1, keepdims=True)
    return -(top[:, 0] + np.log(np.exp(log_w - top).mean(axis=1))), mu


def proxy(model, x):
    """k = 0: -log p(x | mu) + KL, one decode per image, batched."""
    from vaegen.evaluation.metrics import bernoulli_log_likelihood, logistic_log_likelihood

    mu, logvar = model.encode(x)
    flat = x.reshape(len(x), -1)
    if model.bundle.likelihood == "bernoulli":
        ll = bernoulli_log_likelihood(model.decode(mu, output="logits").reshape(len(x), -1), flat)
    else:
        parts = list(model.decode_outputs(mu, ["loc", "log_scale"]))
        loc = np.concatenate([p[0] for p in parts]).reshape(len(x), -1)
        ls = np.concatenate([p[1] for p in parts]).reshape(len(x), -1)
        ll = logistic_log_likelihood(loc, ls, flat)
    kl = 0.5 * (mu.astype(np.float64) ** 2 + np.exp(logvar.astype(np.float64)) - 1 - logvar).sum(axis=1)
    return kl - ll, mu


def timed(f, *a):
    t = time.perf_counter()
    r = f(*a)
    return time.perf_counter() - t, r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    args = ap.parse_args()

    from background import TEMPLATE16, score_binary_context, score_loco
    from compressors import adaptive_context_bits, png1, png8, webp8

    import vaegen

    results = {"load_average_start": os.getloadavg()}
    for name in args.models:
        model = vaegen.load_model(model_path(name), provider="cpu", threads=args.threads)
        images = model_set(name, "in")
        model.encode(images[:8])
        list(model.decode_batches(np.zeros((8, model.latent_dim), np.float32)))  # sessions made, warm
        res = {}
        for k in KS:
            n = IMAGES[name][k]
            x = images[:n]
            if k == 0:
                sec, _ = timed(proxy, model, x)
                res[k] = {"batched": n / sec}
                print(name, "k=0 (proxy)", f"{n / sec:.1f} img/s", flush=True)
                continue
            sec_loop, (a, _) = timed(iw_loop, model, x, k)
            sec_batch, (b, _) = timed(iw_batched, model, x, k)
            assert np.allclose(a, b, rtol=1e-5, atol=1e-3), (a[:3], b[:3])
            res[k] = {"loop": n / sec_loop, "batched": n / sec_batch}
            print(name, f"k={k}", f"loop {n / sec_loop:.1f} img/s, batched {n / sec_batch:.1f} img/s", flush=True)
        # the corrections, per image, on 1,000 images
        extra = {}
        mu, _ = model.encode(images)
        sec, _ = timed(model.prior.mixture.log_density, mu)
        extra["gmm"] = 1000 / sec
        if model.bundle.likelihood == "logistic":
            raw = raw_set(name, "in")[:, 0]
            extra["png8"] = 1000 / timed(lambda: [png8(a) for a in raw])[0]
            extra["webp8"] = 1000 / timed(lambda: [webp8(a) for a in raw])[0]
            tables = np.load(CACHE / f"background_tables_{name}.npz")
            extra["loco"] = 1000 / timed(score_loco, tables["loco_mu20"], raw)[0]
        else:
            bits = images[:, 0].astype(np.uint8)
            extra["png1"] = 1000 / timed(lambda: [png1(b) for b in bits])[0]
            extra["jbig1"] = 1000 / timed(adaptive_context_bits, bits)[0]
            tables = np.load(CACHE / f"background_tables_{name}.npz")
            extra["ctx16"] = 1000 / timed(score_binary_context, tables["ctx16_mu20"], bits, TEMPLATE16)[0]
        print(name, "extras img/s:", {k: round(v) for k, v in extra.items()}, flush=True)
        results[name] = {"iw": res, "extras": extra}
    results["load_average_end"] = os.getloadavg()
    print("load average", results["load_average_start"], "->", results["load_average_end"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
