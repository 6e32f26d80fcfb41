"""What every likelihood p(x|z) declares, and the two halves it implements.

A likelihood is named in vaegen.json, the checkpoint and `--likelihood`. It
declares the decoder outputs it needs, the data it models and the tolerances
its exported decoder is held to; its torch half is the reconstruction term of
the training objective, its numpy half the same term scored on the ONNX
decoder's outputs (vaegen.evaluation.metrics). A test holds the two halves to
each other.

Standard library only at import: bundle/read.py checks a bundle's likelihood
here when any command starts, so each half imports numpy or torch inside its
methods.
"""

from __future__ import annotations

from typing import Any

EVAL_SEED = 0  # the one binarization of held-out images that every evaluation of every model sees
PICTURE = "probs"  # the decoder output every likelihood ends with: the picture it shows, in [0, 1]


class Likelihood:
    """A likelihood over the values of an image. Subclasses set the class
    attributes and implement the methods; one instance of each is registered
    in vaegen.likelihoods."""

    name: str = ""
    # The decoder's outputs before the picture: each (B, C, H, W), in the order split() gives them.
    parameters: tuple[str, ...] = ()
    binarized: bool = False  # models binarized pixels (True) or the 256 levels of 8-bit values
    description: str = ""  # the model card's phrase for the decoder
    scored_as: str = ""  # how `vaegen evaluate` says the images were scored
    # The largest difference from float32 torch that an exported float16 decoder may show, per output.
    fp16_atol: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"<likelihood {self.name}>"

    @property
    def outputs(self) -> tuple[str, ...]:
        """decoder.onnx's outputs, in order: the parameters, then the picture."""
        return (*self.parameters, PICTURE)

    @property
    def outputs_per_value(self) -> int:
        """How many numbers the decoder gives for each value of the image."""
        return len(self.parameters)

    # ---------------------------------------------------------------- the numpy half

    def prepare(self, images: Any, seed: Any = EVAL_SEED) -> Any:
        """uint8 images (N, C, H, W) as the model sees them, float32 (seeded where
        random: a number, or a numpy Generator that chunks taken in order share)."""
        raise NotImplementedError

    def log_likelihood(self, *parameters_then_x: Any) -> Any:
        """log p(x|z) per row: the parameters as the ONNX decoder gives them,
        each flattened to [K, P], then one image x [P] as prepare() gives it -> [K] float64."""
        raise NotImplementedError

    # ---------------------------------------------------------------- the torch half

    def prepare_batch(self, images: Any, gen: Any) -> Any:
        """A training batch of uint8 images as the model sees them, float32 on
        their device; `gen` is the run's noise generator."""
        raise NotImplementedError

    def split(self, params: Any, channels: int) -> tuple:
        """The decoder's raw output (B, outputs_per_value * C, H, W) -> the parameters, each (B, C, H, W)."""
        raise NotImplementedError

    def picture(self, parameters: tuple) -> Any:
        """The picture the parameters show, in [0, 1]: decoder.onnx's `probs`."""
        raise NotImplementedError

    def nll(self, params: Any, x: Any) -> Any:
        """-log p(x|z) per image, summed over values, from the decoder's raw output: (B,)."""
        raise NotImplementedError

    def training_nll(self, params: Any, x: Any) -> Any:
        """The reconstruction term training minimises, per image (B,): nll()
        unless the likelihood trains its parameters with another objective."""
        return self.nll(params, x)

    def output_bias(self, mean_image: Any) -> Any:
        """The raw decoder output (outputs_per_value * C, H, W) that starts the
        model at the data's mean image (C, H, W) in [0, 1]."""
        raise NotImplementedError
