"""The VAE: a Gaussian encoder q(z|x) and a decoder p(x|z) whose networks
come from a registered architecture (vaegen.training.architectures) and
whose likelihood is a registered one (vaegen.likelihoods).

The hyper-parameters live in ModelConfig, which is saved in the checkpoint
and in the bundle and rebuilds the model. The loss it is trained on is in
objective.py. EncoderGraph and DecoderGraph are what the two ONNX files
compute. Imports torch, numpy, the recipes (its defaults), the architectures and the likelihoods.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

from vaegen.likelihoods import get_likelihood
from vaegen.recipes import COMMON, GENERIC
from vaegen.training.architectures import ARCHITECTURES, Architecture, Settings, get_architecture


@dataclass(frozen=True, init=False)
class ModelConfig:
    """The shared fields, and the architecture's own settings: its Settings
    dataclass (vaegen.training.architectures).

    Saved flat (to_dict, from_dict): the shared fields and the settings side
    by side. Built flat too, as the train options give them:
    ModelConfig(arch="conv", conv_blocks=1), where a setting of another
    architecture is refused unless it is None or its default; and read flat:
    cfg.conv_blocks is the conv's setting, or its default on another arch.
    """

    arch: str
    channels: int
    height: int
    width: int
    latent_dim: int
    likelihood: str  # a name in vaegen.likelihoods.LIKELIHOODS
    settings: Settings  # the architecture's Settings

    def __init__(self, arch: str = GENERIC["arch"], channels: int = COMMON["channels"],
                 height: int = COMMON["image_size"], width: int = COMMON["image_size"],
                 latent_dim: int = GENERIC["latent_dim"], likelihood: str = "bernoulli", settings: Settings | None = None,
                 **flat):
        architecture = get_architecture(arch)
        get_likelihood(likelihood)
        if settings is None:
            settings = _settings_from(architecture, flat)
        elif flat or type(settings) is not architecture.Settings:
            raise TypeError(f"ModelConfig takes the {arch} arch's settings as {architecture.Settings.__name__}, "
                            "or by name, not both")
        for name, value in (("arch", arch), ("channels", channels), ("height", height), ("width", width),
                            ("latent_dim", latent_dim), ("likelihood", likelihood), ("settings", settings)):
            object.__setattr__(self, name, value)
        settings.check(self)

    def __getattr__(self, name: str):
        """A setting read flat (called only for names that are not fields)."""
        settings = self.__dict__.get("settings")  # absent while a copy is being made
        if settings is not None and name in settings.defaults():
            return getattr(settings, name)
        for architecture in ARCHITECTURES.values():
            if name in architecture.Settings.defaults():
                return architecture.Settings.defaults()[name]
        raise AttributeError(f"'ModelConfig' object has no attribute {name!r}")

    @property
    def architecture(self) -> type[Architecture]:
        return get_architecture(self.arch)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    @property
    def pixels(self) -> int:
        return self.channels * self.height * self.width

    @property
    def outputs_per_value(self) -> int:
        """Decoder outputs per image value: a logit, or a location and a log-scale."""
        return get_likelihood(self.likelihood).outputs_per_value

    def to_dict(self) -> dict:
        """The saved form: flat, the architecture's settings beside the shared fields."""
        shared = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "settings"}
        return {**shared, **self.settings.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """A saved config (a checkpoint's, or a bundle's architecture). The
        keys of other architectures' settings, which older saves hold, are left out."""
        shared = {f.name: data[f.name] for f in fields(cls) if f.name != "settings" and f.name in data}
        return cls(**shared, settings=get_architecture(shared.get("arch", "mlp")).Settings.from_dict(data))


def _settings_from(architecture: type[Architecture], flat: dict) -> Settings:
    """`architecture`'s settings from their names; another architecture's setting must be None or its default."""
    own = architecture.Settings.defaults()
    known = set(own)
    for other in ARCHITECTURES.values():
        for name, default in other.Settings.defaults().items():
            known.add(name)
            if name not in own and flat.get(name) not in (None, default):
                raise ValueError(f"--{name.replace('_', '-')} applies to the {other.name} arch only")
    if set(flat) - known:
        raise TypeError(f"ModelConfig got unknown settings: {', '.join(sorted(set(flat) - known))}")
    return architecture.Settings.from_dict(flat)


class VAE(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.likelihood = get_likelihood(cfg.likelihood)
        self.encoder = cfg.architecture.encoder(cfg)
        self.decoder = cfg.architecture.decoder(cfg)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) in [0, 1] -> mu, logvar (B, D)."""
        mu, logvar = self.encoder(x).split(self.cfg.latent_dim, dim=1)  # static sizes keep [N, D] in ONNX
        # A bounded log-variance keeps exp() finite early in training.
        return mu, logvar.clamp(-20.0, 10.0)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, D) -> the likelihood's raw output (B, outputs_per_value * C, H, W):
        Bernoulli logits, or the logistic's locations, then its raw log-scales."""
        return self.decoder(z)

    def outputs(self, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """decoder.onnx's outputs from a decoder output, as the likelihood's
        `outputs` names them: its parameters, then the picture in [0, 1]:
        (logits, probs), or (loc, log_scale, probs)."""
        parameters = self.likelihood.split(params, self.cfg.channels)
        return (*parameters, self.likelihood.picture(parameters))

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
        """Start the decoder at the data's mean image (C, H, W), as the likelihood
        says (logits = logit(mean); the logistic's locations at the mean, a scale
        of 0.1), through the bias of the architecture's output layer."""
        start = self.likelihood.output_bias(mean_image)
        self.decoder.output.bias.copy_(self.cfg.architecture.output_bias(start))


class EncoderGraph(nn.Module):
    """What encoder.onnx computes: image -> (mu, logvar)."""

    def __init__(self, vae: VAE):
        super().__init__()
        self.vae = vae

    def forward(self, image: torch.Tensor):
        return self.vae.encode(image)


class DecoderGraph(nn.Module):
    """What decoder.onnx computes: z -> VAE.outputs, the likelihood's
    parameters and the picture ((logits, probs) for a Bernoulli decoder),
    float32 at both ends.

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
