"""The values each argument with a fixed set of choices takes, written once:
the library checks its arguments against these, and the CLI offers them
(click.Choice). Architectures and likelihoods are not here: their lists are
the models' own. Standard library only: the CLI's --help reads it without
importing numpy, ONNX Runtime or torch.
"""

from __future__ import annotations

# Running a bundle (vaegen.runtime, vaegen.api, vaegen.latent.map).
PROVIDERS = ("auto", "cuda", "cpu")
PRIORS = ("auto", "fitted", "standard")
INTERPOLATIONS = ("slerp", "lerp")
PROJECTIONS = ("auto", "pca", "lda")
SPLITS = ("test", "train")  # a dataset's held-out and training images (vaegen.data.load)

# Scoring images (vaegen.evaluation.scores: SCORES registers one function per name, in this order).
SCORES = ("bits", "input-complexity", "latent-rarity", "complexity+latent")
SCORE_SORTS = ("ood_score", "bits_per_dim", "percentile", "path")  # the fields `vaegen score --sort` orders by

# Fitting a prior (vaegen.latent.fit).
PRIOR_CODES = ("means", "draws")
COVARIANCES = ("full", "diag")

# Training (vaegen.training); every other setting is a number.
LR_SCHEDULES = ("cosine", "constant")
IW_ESTIMATORS = ("iwae", "dreg")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16")
CHANNELS = (1, 3)
