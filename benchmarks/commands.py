"""`make bench` sections "explorer", "prior" and "evaluate": what three more
vaegen commands cost on the shipped model: `vaegen serve`'s interaction
latency, the prior fit that ends every `vaegen train`, and `vaegen evaluate`
at k=1000. Each needs MNIST or Chromium, so run.py lets them be skipped.

Imports timing and vaegen's light path (bundle, runtime API, data, metrics,
prior fit); bench_explorer imports tools.screenshots (Playwright).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from timing import THREADS

from vaegen.api import Model
from vaegen.bundle.read import load_bundle


def bench_explorer() -> dict:
    """`vaegen serve`'s interaction latency, pointer event to new pixels, as
    the page's own Performance API timings measure it in Chromium."""
    from tools.screenshots import explore

    with tempfile.TemporaryDirectory() as tmp:
        latencies = explore(str(Path(tmp) / "page.png"))
    return {"moves": len(latencies), "median_ms": statistics.median(latencies),
            "p90_ms": statistics.quantiles(latencies, n=10)[-1]}


def bench_prior_fit(model_dir: Path, data_dir: str | None) -> dict:
    """The prior fit that ends every `vaegen train`, with its default settings,
    on the shipped model's encoder: encoding the training set, then EM."""
    from vaegen.data.named import load_idx_dataset
    from vaegen.latent.fit import fit_prior

    train = load_idx_dataset("mnist", "train", data_dir)
    prior = fit_prior(Model(load_bundle(model_dir), provider="cpu", threads=THREADS), train)
    return {"encode_s": prior.facts["encode_seconds"], "fit_s": prior.facts["fit_seconds"],
            "components": prior.mixture.components, "classes": len(prior.classes), "fitted_on": prior.facts["fitted_on"]}


def bench_evaluate(model_dir: Path, images: int, data_dir: str | None) -> dict:
    """`vaegen evaluate` at k=1000 on the first `images` MNIST test images, and
    the full test set's time at that rate."""
    from vaegen.data.load import evaluation_images
    from vaegen.evaluation.metrics import evaluate

    bundle = load_bundle(model_dir)
    x = evaluation_images("mnist", "test", data_dir, (1, 28, 28), likelihood=bundle.likelihood, limit=images)
    runtime = Model(bundle, provider="cpu", threads=THREADS)
    evaluate(runtime, x[:5], k=1000)  # warm-up
    result = evaluate(runtime, x, k=1000)
    full = 10000 / result["images_per_s"]
    return {"images": images, "k": 1000, "images_per_s": result["images_per_s"], "full_test_set_s": full,
            "ratio_to_15_min_budget": full / 900}
