"""The VAE: a Gaussian encoder q(z|x) and a decoder p(x|z) that is a
Bernoulli per pixel (binarized images) or a discretized logistic over the 256
levels of each value (8-bit images; Kingma et al. 2016, Salimans et al. 2017).

The hyper-parameters live in ModelConfig, which is saved in the checkpoint
and in the bundle and rebuilds the model. The loss it is trained on is in
objective.py. EncoderGraph and DecoderGraph are what the two ONNX files
compute. Imports torch, numpy and the recipes (its defaults) only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from vaegen.recipes import COMMON, GENERIC

ARCHS = ("conv", "mlp")
LIKELIHOODS = ("bernoulli", "logistic")
MIN_LOG_SCALE = -7.0  # the logistic's scale floor (Salimans et al. 2017), far below a level's width 1/255
# ...and its ceiling: a scale of e^3 ~ 20 already spreads a value's mass far past [0, 1]. Beyond it a level's
# probability underflows to 0 in float32 (log -inf, a NaN loss), as a wide early-training decoder reached.
MAX_LOG_SCALE = 3.0
MLP_DECODER_LAYERS = GENERIC["decoder_layers"]  # the mlp decoder's depth by default (vaegen.recipes says why)


@dataclass(frozen=True)
class ModelConfig:
    arch: str = GENERIC["arch"]  # mlp: dense layers; conv: strided convolutions
    channels: int = COMMON["channels"]
    height: int = COMMON["image_size"]
    width: int = COMMON["image_size"]
    latent_dim: int = GENERIC["latent_dim"]
    hidden: int = GENERIC["hidden"]  # width of the dense layers (the mlp's outer layers are 2x this)
    conv_channels: int = GENERIC["conv_channels"]  # conv: channels after the first stride-2 convolution
    # conv: 3x3 convolutions (stride 1) added at each resolution of the encoder and the decoder; 0: none
    conv_blocks: int = GENERIC["conv_blocks"]
    # mlp: hidden layers of the decoder, `hidden` wide, the last one 2x; None: MLP_DECODER_LAYERS
    # (the conv's decoder has its own fixed layout and holds 2 here)
    decoder_layers: int | None = None
    likelihood: str = "bernoulli"  # bernoulli (logits), or logistic (loc and log_scale per value)

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {self.likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")
        if self.decoder_layers is None:
            object.__setattr__(self, "decoder_layers", MLP_DECODER_LAYERS if self.arch == "mlp" else 2)
        if self.decoder_layers < 1:
            raise ValueError("the decoder needs at least one hidden layer")
        if self.arch != "mlp" and self.decoder_layers != 2:
            raise ValueError("--decoder-layers applies to the mlp arch only")
        if self.conv_blocks < 0:
            raise ValueError("--conv-blocks cannot be negative")
        if self.arch != "conv" and self.conv_blocks:
            raise ValueError("--conv-blocks applies to the conv arch only")
        if self.arch == "conv" and (self.height % 4 or self.width % 4):
            raise ValueError("the conv arch needs image sides divisible by 4")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    @property
    def pixels(self) -> int:
        return self.channels * self.height * self.width

    @property
    def outputs_per_value(self) -> int:
        """Decoder outputs per image value: a logit, or a location and a log-scale."""
        return 2 if self.likelihood == "logistic" else 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """A saved config (a checkpoint's, or a bundle's architecture)."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def _encoder(cfg: ModelConfig) -> nn.Module:
    h, c, d = cfg.hidden, cfg.conv_channels, cfg.latent_dim
    if cfg.arch == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(cfg.pixels, 2 * h), nn.ELU(),
            nn.Linear(2 * h, h), nn.ELU(),
            nn.Linear(h, 2 * d),
        )
    flat = 2 * c * (cfg.height // 4) * (cfg.width // 4)
    return nn.Sequential(
        nn.Conv2d(cfg.channels, c, 4, 2, 1), nn.ELU(),  # (B, c, H/2, W/2)
        *_blocks(c, cfg.conv_blocks),
        nn.Conv2d(c, 2 * c, 4, 2, 1), nn.ELU(),  # (B, 2c, H/4, W/4)
        *_blocks(2 * c, cfg.conv_blocks),
        nn.Flatten(),
        nn.Linear(flat, h), nn.ELU(),
        nn.Linear(h, 2 * d),
    )


def _blocks(channels: int, n: int) -> list[nn.Module]:
    """n 3x3 convolutions that keep the resolution and the channels, each with its ELU."""
    return [m for _ in range(n) for m in (nn.Conv2d(channels, channels, 3, 1, 1), nn.ELU())]


def _decoder(cfg: ModelConfig) -> nn.Module:
    h, c, d = cfg.hidden, cfg.conv_channels, cfg.latent_dim
    if cfg.arch == "mlp":
        widths = [d] + [h] * (cfg.decoder_layers - 1) + [2 * h]  # 2 layers: d-h-2h-pixels
        layers = []
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), nn.ELU()]
        out = cfg.outputs_per_value
        return nn.Sequential(*layers, nn.Linear(2 * h, out * cfg.pixels),
                             nn.Unflatten(1, (out * cfg.channels, cfg.height, cfg.width)))
    out = cfg.outputs_per_value * cfg.channels
    n = cfg.conv_blocks
    # With blocks, the last upsampling keeps c channels, and 3x3 layers at full
    # resolution end in a 3x3 output layer; without, it is the output layer.
    top = ([nn.ConvTranspose2d(c, c, 4, 2, 1), nn.ELU(), *_blocks(c, n - 1), nn.Conv2d(c, out, 3, 1, 1)] if n
           else [nn.ConvTranspose2d(c, out, 4, 2, 1)])
    return nn.Sequential(
        nn.Linear(d, h), nn.ELU(),
        nn.Linear(h, 2 * c * (cfg.height // 4) * (cfg.width // 4)), nn.ELU(),
        nn.Unflatten(1, (2 * c, cfg.height // 4, cfg.width // 4)),
        *_blocks(2 * c, n),
        nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.ELU(),  # (B, c, H/2, W/2)
        *_blocks(c, n),
        *top,  # (B, C or 2C, H, W)
    )


class VAE(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = _encoder(cfg)
        self.decoder = _decoder(cfg)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) in [0, 1] -> mu, logvar (B, D)."""
        mu, logvar = self.encoder(x).split(self.cfg.latent_dim, dim=1)  # static sizes keep [N, D] in ONNX
        # A bounded log-variance keeps exp() finite early in training.
        return mu, logvar.clamp(-20.0, 10.0)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, D) -> the likelihood's parameters (B, C, H, W): Bernoulli
        logits; or (B, 2C, H, W): the logistic's locations, then its raw
        log-scales (see `split_logistic`)."""
        if self.cfg.arch == "mlp":
            # One constant-shape Reshape in ONNX, where nn.Unflatten exports a
            # Shape/Slice/Concat chain that costs time at small batch sizes.
            c, h, w = self.cfg.image_shape
            return self.decoder[:-1](z).reshape(-1, self.cfg.outputs_per_value * c, h, w)
        return self.decoder(z)

    def split_logistic(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 2C, H, W) decoder output -> loc, log_scale (B, C, H, W), the scale kept in [MIN_LOG_SCALE, MAX_LOG_SCALE]."""
        loc, log_scale = params.split(self.cfg.channels, dim=1)
        return loc, log_scale.clamp(MIN_LOG_SCALE, MAX_LOG_SCALE)

    def outputs(self, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """decoder.onnx's outputs from a decoder output, as bundle.DECODER_OUTPUTS
        names them: the likelihood's parameters, then the picture in [0, 1]:
        (logits, probs), or (loc, log_scale, probs). A logistic model's picture
        is its location clipped to [0, 1] (its median, and its most probable
        level), not its mean: judged on 10,000 fitted-prior draws of a
        Fashion-MNIST model, the location scored a Frechet distance of 52.9
        where the mean scored 78.0 (a wide scale pulls the mean of a clipped
        value toward grey)."""
        if self.cfg.likelihood == "bernoulli":
            return params, torch.sigmoid(params)
        loc, log_scale = self.split_logistic(params)
        return loc, log_scale, loc.clamp(0.0, 1.0)

    def image(self, params: torch.Tensor) -> torch.Tensor:
        """The picture a decoder output shows, in [0, 1] (the last of `outputs`)."""
        return self.outputs(params)[-1]

    def forward(self, x: torch.Tensor, eps: torch.Tensor):
        """x (B, C, H, W), eps (B, D) or (K, B, D) -> mu, logvar (B, D), z and logits.

        With K samples per image, z is (K, B, D) and logits (K*B, C, H, W).
        """
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, eps)
        return mu, logvar, z, self.decode(z.reshape(-1, z.shape[-1]))

    def probs(self, z: np.ndarray) -> np.ndarray:
        """Numpy z (N, D) -> pixel probabilities (N, C, H, W), float32 numpy: what
        decoder.onnx's `probs` gives, so a picture can be drawn from either."""
        was_training = self.training
        self.eval()
        with torch.inference_mode():
            z_t = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).to(next(self.parameters()).device)
            probs = self.image(self.decode(z_t)).float().cpu().numpy()
        self.train(was_training)
        return probs

    @torch.no_grad()
    def init_output_bias(self, mean_image: torch.Tensor) -> None:
        """Start the decoder at the data's mean image (C, H, W): logits =
        logit(mean), or the logistic's locations at the mean with a scale of 0.1."""
        last = self.decoder[-2] if self.cfg.arch == "mlp" else self.decoder[-1]
        if self.cfg.likelihood == "bernoulli":
            p = mean_image.clamp(1e-3, 1 - 1e-3)
            start = torch.log(p) - torch.log1p(-p)
        else:
            start = torch.cat([mean_image, torch.full_like(mean_image, math.log(0.1))])
        if self.cfg.arch == "mlp":
            last.bias.copy_(start.reshape(-1))
        else:
            last.bias.copy_(start.mean(dim=(1, 2)))


class EncoderGraph(nn.Module):
    """What encoder.onnx computes: image -> (mu, logvar)."""

    def __init__(self, vae: VAE):
        super().__init__()
        self.vae = vae

    def forward(self, image: torch.Tensor):
        return self.vae.encode(image)


class DecoderGraph(nn.Module):
    """What decoder.onnx computes: z -> VAE.outputs, (logits, probs) for a
    Bernoulli decoder, (loc, log_scale, probs) for a logistic one, float32 at
    both ends.

    With `half`, the layers run in float16 (the VAE passed in must already be
    .half()); the graph still takes and returns float32.
    """

    def __init__(self, vae: VAE, half: bool = False):
        super().__init__()
        self.vae = vae
        self.half = half

    def forward(self, z: torch.Tensor):
        params = self.vae.decode(z.half()).float() if self.half else self.vae.decode(z)
        return self.vae.outputs(params)
