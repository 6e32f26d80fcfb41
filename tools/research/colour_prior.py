"""How many components a colour model's fitted prior should have: for each
count K, a mixture fitted by vaegen's own fit (vaegen.latent.fit.fit_mixture)
to a bundle's training codes (posterior means), then

- its mean log-density of the training codes and of the held-out codes
  (the density's fit, and its overfit);
- the median distance from a draw to its nearest training code, beside the
  held-out codes' own (a draw nearer than a held-out code would be a copy);
- the Frechet distance of as many draws as held-out images, decoded, by the
  folder's judge against its reference images (as `vaegen evaluate --samples`).

The counts are fitted as asked, without fit_prior's cut to one component per
latent dimension's worth of codes. Prints one JSON line per K.

    python tools/research/colour_prior.py runs/R/model --dataset ../shared/data/emoji --components 20,50,100,200
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's vaegen

import numpy as np  # noqa: E402


def nearest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The distance from each row of `a` to its nearest row of `b`."""
    d = (a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None]
    return np.sqrt(np.maximum(d.min(axis=1), 0))


def main() -> None:
    from vaegen.api import load_model
    from vaegen.data.load import split_for_training
    from vaegen.data.sets import FolderOptions
    from vaegen.evaluation.judges import folder_judge, judging_data, load_judge, reference_statistics, sample_quality
    from vaegen.latent.fit import encode_codes, fit_mixture

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--dataset", required=True, help="the model's labelled folder")
    parser.add_argument("--components", default="20,50,100,200")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = load_model(args.model, provider="cpu", threads=args.threads)
    c, h, w = model.image_shape
    train, held = split_for_training(args.dataset, channels=c, size=(h, w),
                                     options=FolderOptions(False, model.bundle.background))
    train_codes = encode_codes(model, np.asarray(train.images), codes="means", seed=0)
    held_codes = encode_codes(model, np.asarray(held.images), codes="means", seed=0)
    judge = load_judge(folder_judge(args.dataset), provider="cpu", threads=args.threads)
    reference = reference_statistics(judge, judging_data(model, judge, args.dataset)["reference_images"])
    held_distance = float(np.median(nearest(held_codes, train_codes)))
    for k in (int(x) for x in args.components.split(",")):
        start = time.perf_counter()
        mixture = fit_mixture(train_codes, k, "full", 0)
        seconds = time.perf_counter() - start
        draws = mixture.sample(len(held_codes), np.random.default_rng(0))
        fd = sample_quality(judge, model.decode(draws.astype(np.float32)), reference)["frechet_distance"]
        print(json.dumps({"components": k, "fit_s": round(seconds, 1),
                          "train_log_density": round(float(mixture.log_density(train_codes).mean()), 2),
                          "held_log_density": round(float(mixture.log_density(held_codes).mean()), 2),
                          "draw_to_train": round(float(np.median(nearest(draws, train_codes))), 2),
                          "held_to_train": round(held_distance, 2), "frechet_distance": round(fd, 2)}), flush=True)


if __name__ == "__main__":
    main()
