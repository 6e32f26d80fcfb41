"""Ren et al. (2019)'s background model, made with vaegen's own CLI: a small
VAE trained on the model's training images after random pixel replacement
(rate mu = 0.2: each pixel replaced by a uniform random level, before any
binarization), exported as an ONNX bundle like any other.

    python ren_background.py prepare --model mnist          # writes ren_data/mnist/ (60,000 PNGs)
    vaegen train --dataset ren_data/mnist --likelihood bernoulli --arch mlp --latent-dim 16 --hidden 128 \
        --decoder-layers 2 --epochs 6 --batch-size 256 --lr 3e-3 --kl-warmup 1 --threads 2 --no-fit-prior \
        --out runs/ren-mnist --quiet
    python compute_density.py --model mnist --bundle runs/ren-mnist/model --tag ren-mnist --sets ... --k 100

(RESULTS.md gives the exact commands run and their times.) An image folder's
every 10th image is held out by `vaegen train`, so it trains on 54,000.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from background import perturb
from common import HERE, load_uint8
from PIL import Image

RATE = 0.2
SEED = 11


def prepare(model: str) -> Path:
    out = HERE / "ren_data" / model
    out.mkdir(parents=True, exist_ok=True)
    images = perturb(load_uint8(model, "train"), RATE, SEED)[:, 0]
    for i, a in enumerate(images):
        Image.fromarray(a, "L").save(out / f"{i:05d}.png")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("action", choices=["prepare"])
    ap.add_argument("--model", required=True)
    args = ap.parse_args()
    print(prepare(args.model))
