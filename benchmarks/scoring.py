"""`make bench` section "score": `vaegen score`'s throughput (images/s) at the
default k on each shipped model, beside `vaegen evaluate`'s on the same
images at the same k. Both take the same importance-weighted bound
(vaegen.evaluation.metrics.importance_weighted); score adds the OOD score's
own cost (a compressor, the prior's density) and its percentiles.

Imports timing and vaegen's light path (bundle, runtime API, data, metrics, scores).
"""

from __future__ import annotations

import time

import numpy as np
from timing import ROOT, THREADS, alternate, median

from vaegen.api import Model
from vaegen.bundle.read import load_bundle

IMAGES = {"mnist": 2000, "fashion-mnist": 300}  # test images per run: a few seconds each on 2 cores, at k=10


def _rate(fn, *args, **kwargs):
    """A contender for timing.alternate: one call of fn(*args, **kwargs), as images/s (args[-1]: the images)."""
    def run() -> float:
        start = time.perf_counter()
        fn(*args, **kwargs)
        return len(args[-1]) / (time.perf_counter() - start)

    return run


def bench_score(repeats: int, data_dir: str | None = None, quick: bool = False) -> dict:
    """Per shipped model: images/s of Model.score (what `vaegen score` runs after reading
    the files) and of metrics.evaluate, at the default k, alternating run by run."""
    from vaegen.data.named import load_idx_dataset
    from vaegen.evaluation.metrics import evaluate
    from vaegen.evaluation.scores import DEFAULT_K, DEFAULT_SCORE
    from vaegen.likelihoods import model_input

    out = {"k": DEFAULT_K, "score": DEFAULT_SCORE, "models": {}}
    for name, count in IMAGES.items():
        n = max(5, count // 5) if quick else count
        model = Model(load_bundle(ROOT / "weights" / name), provider="cpu", threads=THREADS)
        levels = load_idx_dataset(name, "test", data_dir if name == "mnist" else None).images[:n]
        x, images = model_input(levels, model.bundle.likelihood), levels / np.float32(255)
        runs = alternate({"score": _rate(model.score, images, k=DEFAULT_K),
                          "evaluate": _rate(evaluate, model, x, k=DEFAULT_K)}, repeats)
        score, plain = median(runs["score"]), median(runs["evaluate"])
        out["models"][name] = {"images": n, "score_images_per_s": score, "evaluate_images_per_s": plain,
                               "ratio_score_over_evaluate": score / plain,
                               "calibrated": model.calibration is not None}
    return out
