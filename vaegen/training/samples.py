"""The prior-sample grid that training draws after each epoch
(samples/epoch_NNN.png in the run folder; a bundle's own grids are
vaegen.bundle.write's).

It takes any decoder from numpy z to pictures (the torch VAE's `probs`) and
draws z from N(0, I) with vaegen.latent.sampling.sample_prior, as `vaegen sample
--prior standard --seed 0` does. Imports numpy and vaegen's image, latent
and bundle-writing helpers only.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from vaegen.bundle.write import NROW, SAMPLES  # the same grid as a bundle's samples.png
from vaegen.images import make_grid, save_image
from vaegen.latent.sampling import sample_prior


def save_prior_grid(decode: Callable[[np.ndarray], np.ndarray], latent_dim: int, path: str | os.PathLike, *,
                    seed: int = 0, scale: int = 1) -> None:
    """An 8x8 grid of the decoder's means for a fixed set of prior draws."""
    save_image(make_grid(decode(sample_prior(SAMPLES, latent_dim, seed=seed)), nrow=NROW), path, scale=scale)
