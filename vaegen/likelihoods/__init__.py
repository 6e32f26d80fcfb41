"""The likelihoods p(x|z) a decoder can have, by name, and the rules that
tie them to data: which likelihood a dataset takes, and how its uint8 images
are prepared for it.

    base.py       Likelihood: what each one declares, and its two halves (torch, numpy)
    bernoulli.py  binarized pixels: logits, the picture their sigmoid
    logistic.py   8-bit values: the discretized logistic's loc and log_scale, the picture the clipped loc
    shared.py     8-bit values: the same with one scale per image and channel (a calibrated decoder)
    dual.py       8-bit values: the location trained as shared.py's, the per-value scale fitted to it

A new likelihood is a new file with a Likelihood subclass, and one line in
LIKELIHOODS below (docs/extending.md). Standard library only at import; the
halves import numpy and torch when they run.
"""

from __future__ import annotations

from vaegen.errors import ArgumentError
from vaegen.likelihoods.base import EVAL_SEED, PICTURE, Likelihood
from vaegen.likelihoods.bernoulli import Bernoulli
from vaegen.likelihoods.dual import DualLogistic
from vaegen.likelihoods.logistic import Logistic
from vaegen.likelihoods.shared import SharedLogistic

__all__ = ["EVAL_SEED", "LIKELIHOODS", "PICTURE", "Likelihood", "binarized_by_default", "get_likelihood",
           "likelihood_for", "model_input"]

LIKELIHOODS: dict[str, Likelihood] = {lik.name: lik for lik in (Bernoulli(), Logistic(), SharedLogistic(), DualLogistic())}
# The likelihood binarized data (True) and 8-bit data (False) take when none is named.
DEFAULT_FOR = {True: "bernoulli", False: "logistic"}


def get_likelihood(name: str) -> Likelihood:
    """The registered likelihood called `name`; an ArgumentError names the known ones."""
    try:
        return LIKELIHOODS[name]
    except (KeyError, TypeError):
        raise ArgumentError(f"unknown likelihood {name!r}; choose one of {', '.join(LIKELIHOODS)}",
                            argument="likelihood") from None


def binarized_by_default(dataset: str) -> bool:
    """MNIST is modelled binarized (the VAE literature's benchmark); every
    other dataset in its 256 grey or colour levels."""
    return dataset == "mnist"


def likelihood_for(dataset: str, binarized: bool | None = None, likelihood: str | None = None) -> str:
    """The likelihood a model of `dataset` is trained with: bernoulli for
    binarized pixels, logistic (discretized, 256 levels) for 8-bit values,
    unless another that models the same data is named. Either choice implies
    the other; both given must agree."""
    if binarized is None:
        binarized = binarized_by_default(dataset) if likelihood is None else get_likelihood(likelihood).binarized
    binarized = bool(binarized)
    wanted = DEFAULT_FOR[binarized]
    if likelihood is not None and get_likelihood(likelihood).binarized != binarized:
        raise ArgumentError(
            "a Bernoulli models binarized pixels and the logistic 8-bit ones: "
            f"{'binarized' if binarized else '8-bit'} data takes likelihood {wanted}, not {likelihood}."
        )
    return likelihood or wanted


def model_input(images, likelihood: str, seed: int = EVAL_SEED):
    """uint8 images (numpy) as a model of `likelihood` sees them, float32:
    binarized once with `seed` (bernoulli), or scaled to the levels k/255 (logistic)."""
    return get_likelihood(likelihood).prepare(images, seed)
