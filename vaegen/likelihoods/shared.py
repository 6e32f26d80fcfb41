"""The discretized logistic with one scale per image and channel, shared by
all its pixels: a calibrated decoder (Rybkin et al. 2021, the sigma-VAE),
over the same 256 levels as `logistic`.

Its decoder outputs a location per value and a log-scale map as `logistic`'s
does; the map's mean over the image's pixels is every pixel's log-scale. So
the scale is the decoder's estimate of how far this image's reconstruction
is off, and every pixel's error counts the same. The per-value scale lets
the decoder give up on the hard pixels (an edge, a face's features) with a
wide scale while the flat ground, predicted to a level, takes the fit: the
shared scale cannot. On colour folders it drew sharper pictures for more
bits/dim (docs/training.md, "Colour folders").

The exported decoder gives the shared log-scale at every pixel, so the numpy
half is `logistic`'s. Standard library at import, as every likelihood.
"""

from __future__ import annotations

from vaegen.likelihoods.logistic import MAX_LOG_SCALE, MIN_LOG_SCALE, Logistic


class SharedLogistic(Logistic):
    name = "logistic-shared"
    description = ("a discretized logistic decoder over the 256 levels of each value, one scale per image and channel "
                   "(a calibrated decoder, Rybkin et al. 2021)")
    scored_as = "256 levels, discretized logistic, one scale per image and channel"

    def split(self, params, channels):
        """(B, 2C, H, W) -> loc and log_scale (B, C, H, W), the log-scale shared_log_scale() of its map."""
        loc, log_scale = params.split(channels, dim=1)
        return loc, shared_log_scale(log_scale)


def shared_log_scale(log_scale_map):
    """(B, C, H, W) -> each image and channel's one log-scale, the map's mean over
    its pixels kept in [MIN_LOG_SCALE, MAX_LOG_SCALE], at every pixel (B, C, H, W)."""
    return log_scale_map.mean(dim=(2, 3), keepdim=True).clamp(MIN_LOG_SCALE, MAX_LOG_SCALE).expand_as(log_scale_map)
