"""The Python API: a model bundle as numpy in, numpy out.

    import vaegen
    m = vaegen.load_model()                       # the shipped model
    x = m.sample(64, seed=0)                      # float32 [64, C, H, W] in [0, 1]
    mu, logvar = m.encode(x)                      # float32 [64, D] each
    r = m.reconstruct(x)                          # decode(encode(x).mu)
    batch = m.load_images(paths, skip_bad=True)   # user files as the model sees them, and those left out
    w = m.interpolate(x[0], x[1], steps=10)       # [10, C, H, W], slerp between the two codes
    rows = m.score(batch.images, paths=batch.paths)  # per image: bits_per_dim, ood_score, percentile, flagged
    vaegen.save_grid(x, "grid.png", nrow=8)

This is the one home of the light commands' logic: the CLI and the explorer
call it and only parse and report. It raises vaegen's own errors (see
vaegen.errors) and never prints or exits. Imports numpy, onnxruntime (through
vaegen.runtime) and vaegen's torch-free modules; never torch, never click.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from vaegen.bundle.read import Bundle, load_bundle
from vaegen.choices import INTERPOLATIONS, PRIORS
from vaegen.errors import ArgumentError, ImageError
from vaegen.latent.sampling import FittedPrior, lerp, manifold_2d, sample_prior, slerp, traversal
from vaegen.runtime import CUDA, DEFAULT_BATCH, OnnxVAE, set_verbose

if TYPE_CHECKING:  # imported where a calibration is read: `vaegen sample` never needs it
    from vaegen.evaluation.scores import Calibration

_UNREAD = object()  # Model._prior before prior.npy is read


class ImageBatch(NamedTuple):
    """User images as a model sees them (Model.load_images)."""

    images: np.ndarray  # float32 [N, C, H, W]: the usable files, in the order given
    paths: list[Path]  # the file each image was read from
    skipped: list[tuple[Path, str]]  # (file, why) for each file left out with skip_bad=True


class Model(OnnxVAE):
    """A VAE bundle running on ONNX Runtime.

    Images are float32 arrays [N, C, H, W] with values in [0, 1]; latents are
    float32 [N, D]. Sessions are made on first use, so a model that only
    samples never loads its encoder.
    """

    def __init__(self, bundle: Bundle, provider: str = "auto", threads: int | None = None,
                 batch_size: int = DEFAULT_BATCH, io_binding: bool | None = None):
        super().__init__(bundle, provider=provider, threads=threads, batch_size=batch_size, io_binding=io_binding)
        self._prior: FittedPrior | None | object = _UNREAD
        self._calibration: Calibration | None | object = _UNREAD

    def __repr__(self) -> str:
        return f"Model({str(self.bundle.path)!r}, latent_dim={self.latent_dim}, provider={self.provider!r})"

    @property
    def latent_dim(self) -> int:
        """D, the number of latent dimensions."""
        return self.bundle.latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the model reads and draws."""
        return self.bundle.image_shape

    def describe(self) -> dict:
        """The bundle's vaegen.json and the execution providers that really
        run here. Loads and checks both graphs: it vouches for the whole bundle."""
        from vaegen.runtime import provider_report

        self.open_sessions()
        report = provider_report()
        report["active"] = self.active_provider
        if report["cuda_problem"] is None and self.provider == "auto" and report["active"] != CUDA:
            report["cuda_problem"] = "ONNX Runtime did not start its CUDA provider; its own log says why"
        return {"model": str(self.bundle.path), "bundle": self.bundle.meta, "providers": report}

    # -------------------------------------------------------------- sampling

    @property
    def prior(self) -> FittedPrior | None:
        """The bundle's fitted latent prior (read and checked on first use),
        or None when it has none and samples from N(0, I)."""
        if self._prior is _UNREAD:
            from vaegen.bundle.records import read_prior

            self._prior = read_prior(self.bundle)
        return self._prior

    def forget_prior(self) -> None:
        """Read prior.npy again on next use (after a fit replaced it)."""
        self._prior = _UNREAD

    @property
    def calibration(self) -> Calibration | None:
        """The held-out images' score quantiles (calibration.npy, read and
        checked on first use), or None when the bundle has none: `vaegen
        fit-prior` adds one."""
        if self._calibration is _UNREAD:
            from vaegen.bundle.records import read_calibration

            self._calibration = read_calibration(self.bundle)
        return self._calibration

    def forget_calibration(self) -> None:
        """Read calibration.npy again on next use (after a fit replaced it)."""
        self._calibration = _UNREAD

    @property
    def classes(self) -> list[str]:
        """Names of the classes the fitted prior can draw from ([] without one)."""
        return list(self.prior.classes) if self.prior is not None else []

    def sample_latents(self, n: int, *, seed: int = 0, temperature: float = 1.0, prior: str = "auto",
                       label: int | str | None = None) -> np.ndarray:
        """n latents from the prior: float32 [n, D]. Same seed, same latents.

        prior: "fitted" (the mixture fitted to the training codes), "standard"
        (N(0, I)), or "auto": fitted when the bundle has one.
        label: a class (index or name) of the fitted prior to draw from.
        temperature: scales each draw's spread around its component's mean
        (around 0 for the standard prior); 0 gives the means themselves.
        """
        _check_count(n, "n")
        fitted = self._fitted(prior, label)
        _check_temperature(temperature)
        if fitted is None:
            return sample_prior(n, self.latent_dim, seed=seed, temperature=temperature)
        try:
            return fitted.sample(n, seed=seed, temperature=temperature, label=label)
        except ValueError as exc:
            raise ArgumentError(f"{exc}.") from None

    def sample(self, n: int, *, seed: int = 0, temperature: float = 1.0, prior: str = "auto",
               label: int | str | None = None) -> np.ndarray:
        """n new images decoded from the prior (see sample_latents): float32 [n, C, H, W] pixel means."""
        return self.decode(self.sample_latents(n, seed=seed, temperature=temperature, prior=prior, label=label))

    def class_latents(self, n: int, *, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        """n latents of each class of the fitted prior in turn: [len(classes) * n, D]."""
        _check_count(n, "n")
        _check_temperature(temperature)
        return self._fitted("fitted", 0).sample_per_class(n, seed=seed, temperature=temperature)

    def sample_per_class(self, n: int, *, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        """n images of each class of the fitted prior in turn, class by class:
        [len(classes) * n, C, H, W], a grid row per class with nrow=n."""
        return self.decode(self.class_latents(n, seed=seed, temperature=temperature))

    def prior_in_use(self, prior: str = "auto") -> str:
        """"fitted" or "standard": what `prior` resolves to for this bundle."""
        return "standard" if self._fitted(prior, None) is None else "fitted"

    def _fitted(self, prior: str, label) -> FittedPrior | None:
        """The prior to draw from, refusing combinations that cannot be."""
        if prior not in PRIORS:
            raise ArgumentError(f"Unknown prior {prior!r}; choose one of {', '.join(PRIORS)}.")
        if prior == "standard":
            if label is not None:
                raise ArgumentError("a label draws from the fitted prior's classes; it cannot go with the standard prior.")
            return None
        fitted = self.prior
        if fitted is None and (prior == "fitted" or label is not None):
            what = "fitted prior" if prior == "fitted" else "classes to draw from"
            raise ArgumentError(f"{self.bundle.path} has no {what}; fit one with `vaegen fit-prior`.")
        if fitted is not None and label is not None and not fitted.classes:
            raise ArgumentError(f"the fitted prior of {self.bundle.path} has no classes (its data had no labels).")
        return fitted

    # -------------------------------------------------------------- encoding

    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """decode(encode(images).mu): what the model keeps of each image, [N, C, H, W]."""
        mu, _ = self.encode(self._check_images(images))
        return self.decode(mu)

    def load_images(self, paths: Sequence[str | os.PathLike], *, skip_bad: bool = False) -> ImageBatch:
        """User image files (PNG, JPEG, ...) prepared as the model sees them.
        MNIST models get the MNIST recipe (grayscale, ink made bright,
        cropped, fitted to 20x20, centred by mass in 28x28).

        Every file is tried before any is refused. A file that cannot be used
        (missing, unreadable, too large, no stroke for an MNIST model) raises
        an ImageError that names every such file (its `refused` lists them);
        with skip_bad=True those files are left out and listed in the
        batch's `skipped`, and only a batch with no usable file raises."""
        from vaegen.images import prepare_image

        if not paths:
            raise ArgumentError("no images given.")
        shape, preprocessing = self.image_shape, self.bundle.preprocessing
        arrays, kept, refused = [], [], []
        for path in paths:
            try:
                arrays.append(prepare_image(path, image_shape=shape, preprocessing=preprocessing,
                                            background=self.bundle.background))
                kept.append(Path(path))
            except ImageError as exc:
                refused.append((Path(path), str(exc)))
        if refused and (not skip_bad or not kept):
            raise ImageError(_refusal(refused, len(paths)), refused=refused)
        return ImageBatch(np.stack(arrays), kept, refused)

    def read_images(self, paths: Sequence[str | os.PathLike]) -> np.ndarray:
        """The images of load_images(paths): float32 [N, C, H, W], one per
        file; any unusable file raises an ImageError naming them all."""
        return self.load_images(paths).images

    # -------------------------------------------------------------- density

    def score(self, images: np.ndarray, *, k: int | None = None, seed: int = 0, flag_above: float = 99.0,
              using: str | None = None, paths: Sequence[str | os.PathLike] | None = None,
              progress=None) -> list[dict]:
        """How likely each image is, and how unlike the training data: a
        record per image of images [N, C, H, W] in [0, 1] (as load_images gives them):

            bits_per_dim  the NLL by the importance-weighted bound with k samples
            score         the OOD score's name (`using`; default vaegen.evaluation.scores.DEFAULT_SCORE)
            ood_score     its value, higher = less like the training data
            percentile    the OOD score's percentile among the bundle's held-out images (0 to 100)
            flagged       percentile > flag_above
            path          the file, when `paths` are given

        k: importance samples [default: the calibration's, so percentiles
        compare like with like]. Noise is drawn from `seed`, image after image,
        and a binarized model's images are binarized once with the evaluation
        seed (vaegen.likelihoods.EVAL_SEED), as `vaegen evaluate` does: the
        same images in the same order give the same records. A bundle without
        a calibration (fitted before scores were calibrated) gives None for
        the percentile and the flag; `vaegen fit-prior` adds one.
        progress: called with the number of images done, as they are."""
        from vaegen.evaluation.scores import DEFAULT_K, get_score, measure, score_terms, to_levels

        images = self._check_images(images)
        if paths is not None and len(paths) != len(images):
            raise ArgumentError(f"{len(paths)} paths for {len(images)} images.", argument="paths")
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
            raise ArgumentError(f"k must be a positive integer, not {k!r}.", argument="k")
        calibration = self.calibration
        needs_prior = get_score(using).needs_prior
        terms = measure(self, to_levels(images), k=k or (calibration.k if calibration else DEFAULT_K), seed=seed,
                        prior=self.prior if needs_prior else None, calibration=calibration, progress=progress)
        records = score_terms(terms, using, flag_above)
        if paths is not None:
            records = [{"path": str(p), **r} for p, r in zip(paths, records, strict=True)]
        return records

    # -------------------------------------------------------------- latent walks

    def interpolate_latents(self, z_a: np.ndarray, z_b: np.ndarray, steps: int = 10,
                            method: str = "slerp") -> np.ndarray:
        """`steps` latents from z_a to z_b, both ends included: [steps, D].
        slerp follows the prior's typical shell (White 2016); lerp is a straight line."""
        if method not in INTERPOLATIONS:
            raise ArgumentError(f"Unknown interpolation {method!r}; choose one of {', '.join(INTERPOLATIONS)}.")
        if steps < 2:
            raise ArgumentError(f"steps must be at least 2, not {steps}.")
        z_a, z_b = self._check_latent(z_a), self._check_latent(z_b)
        return (slerp if method == "slerp" else lerp)(z_a, z_b, steps)

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int = 10, method: str = "slerp") -> np.ndarray:
        """Frames of a walk from image a to image b ([C, H, W] each) through
        their latent means: decode(mu_a) ... decode(mu_b), [steps, C, H, W]."""
        mu, _ = self.encode(self._check_images(np.stack([a, b])))
        return self.decode(self.interpolate_latents(mu[0], mu[1], steps, method))

    def active_dims(self, limit: int = 16) -> list[int]:
        """Latent dimensions ordered by how much decoding changes along them,
        most first: moving z_i from -2 to 2 around z = 0, summed pixel change."""
        d = self.latent_dim
        probes = np.zeros((2 * d, d), np.float32)
        for i in range(d):
            probes[2 * i, i], probes[2 * i + 1, i] = -2.0, 2.0
        out = self.decode(probes).reshape(d, 2, -1)
        change = np.abs(out[:, 0] - out[:, 1]).sum(axis=1)
        order = np.argsort(-change, kind="stable")
        return order[: min(limit, d)].tolist()

    def traversal_latents(self, base: np.ndarray | None = None, dims: Sequence[int] | None = None,
                          steps: int = 11, span: float = 3.0) -> tuple[np.ndarray, list[int]]:
        """The latents of `traverse` and the dimensions they vary (see there)."""
        d = self.latent_dim
        if steps < 2:
            raise ArgumentError(f"steps must be at least 2, not {steps}.")
        if base is None and dims is None and d == 2:
            return manifold_2d(steps), [0, 1]
        base = np.zeros(d, np.float32) if base is None else self._check_latent(base)
        if dims is None:
            chosen = self.active_dims()
        else:
            chosen = [int(v) for v in dims]
            bad = [v for v in chosen if not 0 <= v < d]
            if bad or not chosen:
                raise ArgumentError(f"dimensions must lie in 0..{d - 1}, got {','.join(map(str, dims))}.")
        return traversal(base, steps, span=span, dims=chosen), chosen

    def traverse(self, base: np.ndarray | None = None, dims: Sequence[int] | None = None, steps: int = 11,
                 span: float = 3.0) -> tuple[np.ndarray, list[int]]:
        """Vary each chosen dimension of `base` (default z = 0) over [-span, span]:
        images [len(dims) * steps, C, H, W], one row of `steps` per dimension,
        and the dimensions (default: the 16 most active, most active first).
        A 2-D model with no base and no dims draws its manifold instead
        (Kingma & Welling, figure 4): a steps x steps grid at Gaussian quantiles."""
        z, chosen = self.traversal_latents(base, dims, steps, span)
        return self.decode(z), chosen

    # -------------------------------------------------------------- checks

    def _check_images(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or tuple(images.shape[1:]) != tuple(self.image_shape):
            c, h, w = self.image_shape
            raise ArgumentError(f"images have shape {images.shape}; this model takes [N, {c}, {h}, {w}].")
        return images

    def _check_latent(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float32)
        if z.shape != (self.latent_dim,):
            raise ArgumentError(f"a latent has shape {z.shape}; this model's latents are [{self.latent_dim}].")
        if not np.isfinite(z).all():
            raise ArgumentError("a latent holds values that are not finite numbers.")
        return z


def _refusal(refused: list[tuple[Path, str]], total: int) -> str:
    """One line naming every unusable file of a batch of `total`, with its reason."""
    if total == 1:
        return refused[0][1]
    reasons = "; ".join(message.rstrip(".") for _, message in refused)
    if len(refused) == total:
        return f"None of the {total} images can be used: {reasons}."
    return f"{len(refused)} of {total} images cannot be used: {reasons}."


def _check_count(n: int, name: str) -> None:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ArgumentError(f"{name} must be a positive integer, not {n!r}.")


def _check_temperature(temperature: float) -> None:
    if not temperature >= 0:  # NaN fails this too
        raise ArgumentError(f"temperature must be >= 0, not {temperature}.")


def load_model(model: str | os.PathLike | None = None, *, provider: str = "auto", threads: int | None = None,
               verbose: bool = False, checksums: bool = False) -> Model:
    """Open a model bundle: a folder from `vaegen train` (or its run folder),
    else $VAEGEN_MODEL, else the shipped weights/mnist.

    provider: "auto" (CUDA when it really runs, else CPU), "cuda" or "cpu".
    threads: ONNX Runtime's CPU threads (default: all cores).
    verbose: show ONNX Runtime's own log lines.
    checksums: check both graphs' sha256 now (by default each graph is
    checked when it is first run).
    """
    set_verbose(verbose)
    return Model(load_bundle(model, checksums=checksums), provider=provider, threads=threads)


def save_grid(images: np.ndarray, path: str | os.PathLike, nrow: int | None = None, scale: int = 1) -> None:
    """Tile images [N, C, H, W] in [0, 1] into one picture, `nrow` per row
    (default: a square grid), each pixel enlarged `scale` times, written
    atomically in the format `path`'s extension names (.png, .jpg, .jpeg,
    .webp, or .gif as a single frame)."""
    import math

    from vaegen.images import image_format, make_grid, save_image

    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or len(images) == 0:
        raise ArgumentError(f"images must be a non-empty [N, C, H, W] array, not {images.shape}.")
    image_format(path)  # an unknown extension is refused before the grid is made
    save_image(make_grid(images, nrow=nrow or math.ceil(math.sqrt(len(images)))), path, scale=scale)
