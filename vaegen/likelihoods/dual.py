"""The discretized logistic with two scales: the picture trained with one
scale per image and channel (as `logistic-shared`), the density scored with
a scale per value (as `logistic`).

The decoder gives three maps per channel: the location, the log-scale of
each value, and a log-scale map whose mean over the image's pixels is the
shared scale. Training follows the gradient of two terms, summed:

- -log p(x|z) under the shared scale: every pixel's error counts the same,
  so the location (the picture) is drawn as sharp as `logistic-shared`'s;
  with the KL this is the ELBO the encoder and the picture are trained on;
- -log p(x|z) under the per-value scale with the location held fixed
  (detached): the per-value scales are fitted to the picture's own errors,
  so the flat ground, predicted to a level, is scored as sharply as
  `logistic`'s.

The model a bundle holds, and every figure it reports (bits/dim, `vaegen
score`), is the second: the location with the per-value scale, the same
distribution as `logistic`'s, so its bounds are true bounds of that model.
The shared scale is training's alone and not exported. On the emoji folder,
each the whole default run, it drew the sharpest pictures of the three
(fitted-prior FD 18.7 at 20 components, against 35.4 for `logistic-shared`
and 51.2 for `logistic`) at 5.03 bits/dim, between their 5.91 and 4.34
(docs/training.md, "Colour folders").

Standard library at import, as every likelihood.
"""

from __future__ import annotations

import math

from vaegen.likelihoods.logistic import MAX_LOG_SCALE, MIN_LOG_SCALE, Logistic
from vaegen.likelihoods.shared import shared_log_scale


class DualLogistic(Logistic):
    name = "logistic-dual"
    description = ("a discretized logistic decoder over the 256 levels of each value, its location trained with one "
                   "scale per image and channel (a calibrated decoder, Rybkin et al. 2021) and its scale per value "
                   "fitted to that location")
    scored_as = "256 levels, discretized logistic (the per-value scale)"

    @property
    def outputs_per_value(self) -> int:
        """The location, the per-value log-scale and the shared log-scale's map."""
        return 3

    def split(self, params, channels):
        """(B, 3C, H, W) -> loc, log_scale (B, C, H, W): the model the bundle holds (the shared map is training's)."""
        loc, log_scale, _ = params.split(channels, dim=1)
        return loc, log_scale.clamp(MIN_LOG_SCALE, MAX_LOG_SCALE)

    def training_nll(self, params, x):
        """(B,): the gradient of the shared scale's -log p(x|z) plus the per-value
        scale's with the location detached; the value the per-value scale's alone,
        the -log p(x|z) of the model the bundle holds, so a run's training
        figures compare with its held-out ones (a non-finite term still shows)."""
        channels = x.shape[1]
        loc, log_scale = self.split(params, channels)
        fitted = self.discretized_nll(loc.detach(), log_scale, x)
        picture = self.discretized_nll(loc, shared_log_scale(params[:, 2 * channels :]), x)
        return fitted + (picture - picture.detach())

    def output_bias(self, mean_image):
        """The locations at the mean, both scales 0.1."""
        import torch

        return torch.cat([mean_image, torch.full_like(mean_image, math.log(0.1)), torch.full_like(mean_image, math.log(0.1))])
