#!/bin/sh
# The whole study, in the order it was run (about 2 h of 2 shared CPU cores; the
# Fashion-MNIST conv decoder's importance sampling is nearly all of it).
# Every step caches under cache/ and skips work already there.
set -e
cd "$(dirname "$0")"
export PYTHONPATH=. OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
PY=.venv/bin/python
ALL="in cal tail other vflip hflip noise const black"

# 1. IW log-weights, log p(x|mu), GMM density: k = 100 with seed 0, then 200 more draws with seed 1 (k up to 300)
$PY compute_density.py --model mnist --sets $ALL --k 100
$PY compute_density.py --model mnist --sets $ALL --k 200 --seed 1
$PY compute_density.py --model fashion-mnist --sets in cal tail other vflip hflip noise const --k 100
$PY compute_density.py --model fashion-mnist --sets black --limit 200 --k 100
$PY compute_density.py --model fashion-mnist --sets in cal other vflip --k 200 --seed 1

# 2. compressors and fitted background coders
$PY compressors.py
$PY compressors.py alc8
$PY background.py

# 3. Ren et al.'s VAE background, trained with vaegen's own CLI on perturbed training images
$PY ren_background.py prepare --model mnist
$PY ren_background.py prepare --model fashion-mnist
$PY -m vaegen train --dataset ren_data/mnist --likelihood bernoulli --arch mlp --latent-dim 16 --hidden 128 \
    --decoder-layers 2 --epochs 6 --batch-size 256 --lr 3e-3 --kl-warmup 1 --threads 2 --no-fit-prior --out runs/ren-mnist
$PY -m vaegen train --dataset ren_data/fashion-mnist --likelihood logistic --arch mlp --latent-dim 16 --hidden 128 \
    --decoder-layers 2 --epochs 6 --batch-size 256 --lr 3e-3 --kl-warmup 1 --beta 1 --threads 2 --no-fit-prior \
    --out runs/ren-fashion-mnist
$PY compute_density.py --model mnist --bundle runs/ren-mnist/model --tag ren-mnist --sets $ALL --k 100
$PY compute_density.py --model mnist --bundle runs/ren-mnist/model --tag ren-mnist --sets $ALL --k 200 --seed 1
$PY compute_density.py --model fashion-mnist --bundle runs/ren-fashion-mnist/model --tag ren-fashion-mnist \
    --sets in cal other vflip tail hflip noise const --k 100
$PY compute_density.py --model fashion-mnist --bundle runs/ren-fashion-mnist/model --tag ren-fashion-mnist \
    --sets black --limit 200 --k 100
$PY compute_density.py --model fashion-mnist --bundle runs/ren-fashion-mnist/model --tag ren-fashion-mnist \
    --sets in cal other vflip tail hflip noise const --k 200 --seed 1
$PY compute_density.py --model fashion-mnist --bundle runs/ren-fashion-mnist/model --tag ren-fashion-mnist \
    --sets black --limit 200 --k 200 --seed 1

# 4. tables
$PY analyze.py --k 100 --json results_k100.json > tables_k100.md
$PY analyze.py --k 10 --json results_k10.json > tables_k10.md
$PY summary.py --k 100 --json summary_k100.json > summary_k100.md
$PY summary.py --k 10 --json summary_k10.json > summary_k10.md
$PY kscan.py --json kscan.json > kscan.md
$PY calibration.py > calibration.md
$PY latent_extra.py > latent_extra.txt
for k in 1 10 30 100 300; do $PY recommended.py --k $k; done > recommended.txt
$PY bench.py --threads 2 --json bench.json > bench.txt
