"""Fit the latent prior after training (ex-post density estimation), and
the latent map of the held-out images, for a bundle.

The aggregate posterior q(z) = E_x q(z|x) does not fill N(0, I): prior draws
land in holes the decoder never learned, and decode to smudges. Fitting a
density to the encoded training set and sampling from it instead is the
remedy of Ghosh et al. 2020 ("From Variational to Deterministic
Autoencoders", ex-post density estimation) and of pythae's
GaussianMixtureSampler; with labels, one mixture per class gives
class-conditional generation from an unconditional model.

The prior is fitted on the training split, and the map drawn and the
scores calibrated (vaegen.evaluation.scores) on the held-out split, by the
one held-out rule (vaegen.data.load). The choices
below were measured on the shipped models: docs/samples.md.

Runs the encoder through ONNX Runtime (vaegen.api) and fits with
scikit-learn's GaussianMixture (imported inside fit_mixture); the fitted
records are written by vaegen.bundle.write, and the defaults are the
recipes' (vaegen.recipes.PRIOR). Imports no torch, so `vaegen fit-prior`
works on any bundle where scikit-learn is installed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from vaegen.bundle.records import PRIOR_FILE, as_stored
from vaegen.bundle.write import install_prior
from vaegen.choices import COVARIANCES
from vaegen.choices import PRIOR_CODES as CODES
from vaegen.data.load import check_image_shape, model_dataset, split_for_training
from vaegen.data.sets import FolderOptions, ImageSet, Progress, Rows
from vaegen.errors import TrainingError
from vaegen.evaluation.metrics import ACTIVE_THRESHOLD
from vaegen.evaluation.scores import DEFAULT_K, Calibration, calibrate, calibration_rows
from vaegen.latent.map import LatentMap, map_images
from vaegen.latent.sampling import FittedPrior, GaussianMixture
from vaegen.recipes import PRIOR, prior_defaults


def encode_codes(model, images: np.ndarray, *, codes: str, seed: int) -> np.ndarray:
    """The latent codes of uint8 images: the posterior means mu(x), or one
    draw z ~ q(z|x) per image; the images as the model learned on them
    (binarized once, seeded, for a Bernoulli model), converted a batch at a time."""
    mu, logvar = model.encode_uint8(images, seed=seed)
    if codes == "means":
        return mu.astype(np.float64)
    rng = np.random.default_rng(seed)
    return mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape)


def fit_mixture(z: np.ndarray, components: int, covariance_type: str, seed: int,
                max_iter: int = 100) -> GaussianMixture:
    """scikit-learn's EM (k-means++ start, seeded) over the active dimensions.

    A latent dimension the encoder does not use (its codes vary by less than
    ACTIVE_THRESHOLD over the data, Burda et al.'s inactive unit) carries no
    structure: it joins each component as an independent Gaussian with its
    own mean and variance, and EM runs on the rest. EM's cost grows with the
    square of the dimension, so this fits faster, to the same density on the
    active block (docs/samples.md).
    A diagonal fit is kept as diagonal Cholesky factors, so every mixture has one form.
    """
    from sklearn.mixture import GaussianMixture as SkMixture
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    z = np.asarray(z, np.float64)
    variance = z.var(axis=0)
    active = variance > ACTIVE_THRESHOLD
    if not active.any():
        active[np.argmax(variance)] = True
    components = max(1, min(components, len(z) // 2))
    gm = SkMixture(n_components=components, covariance_type=covariance_type, reg_covar=1e-4, max_iter=max_iter,
                   init_params="k-means++", random_state=seed)
    # One BLAS thread: EM's products are small (codes x D x D per component), and
    # OpenBLAS's threads spin against any other busy thread (docs/samples.md).
    with threadpool_limits(limits=1, user_api="blas"):
        gm.fit(z[:, active])
    covariances = gm.covariances_ if covariance_type == "full" else np.stack([np.diag(c) for c in gm.covariances_])
    k = len(gm.weights_)
    means = np.tile(z.mean(axis=0), (k, 1))
    means[:, active] = gm.means_
    scale_tril = np.tile(np.diag(np.sqrt(variance + 1e-4)), (k, 1, 1))  # the inactive block: diagonal
    scale_tril[np.ix_(np.arange(k), active, active)] = np.linalg.cholesky(covariances)
    return GaussianMixture(gm.weights_ / gm.weights_.sum(), means, scale_tril)


def fit_class_mixtures(members: list[np.ndarray], components: int, covariance_type: str, seed: int,
                       purity: float) -> list[GaussianMixture]:
    """One mixture per class's codes, in two passes. The first pass's
    mixtures give each code its class posterior p(c | z) (class sizes as the
    prior); codes that their own class explains with p < `purity` (a 4 whose
    code lies among the 9s) are dropped, and the second pass fits the rest.
    Class-conditional draws then stay out of the regions the classes share."""
    first = [fit_mixture(codes, components, covariance_type, seed) for codes in members]
    if not purity:
        return first
    sizes = np.array([len(codes) for codes in members], np.float64)
    kept = []
    for own, codes in enumerate(members):
        log_joint = np.stack([m.log_density(codes) for m in first], axis=1) + np.log(sizes / sizes.sum())
        log_joint -= log_joint.max(axis=1, keepdims=True)
        posterior = np.exp(log_joint[:, own]) / np.exp(log_joint).sum(axis=1)
        pure = codes[posterior >= purity]
        kept.append(pure if len(pure) >= 2 * components else codes)
    return [fit_mixture(codes, components, covariance_type, seed) for codes in kept]


def _subsample(rows: np.ndarray, most: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most `most` of `rows` (image indices), drawn without replacement (all of them when fewer)."""
    if most is None or len(rows) <= most:
        return rows
    return rows[np.sort(rng.choice(len(rows), size=most, replace=False))]


@dataclass(frozen=True)
class PriorSettings:
    """How a prior is fitted (`vaegen fit-prior`'s options; None: all codes)."""

    components: int = PRIOR["components"]
    class_components: int = PRIOR["class_components"]
    max_codes: int | None = PRIOR["max_codes"]
    class_max_codes: int | None = PRIOR["class_max_codes"]
    covariance_type: str = PRIOR["covariance_type"]
    codes: str = PRIOR["codes"]
    seed: int = PRIOR["seed"]
    purity: float = PRIOR["purity"]
    limit: int | None = None  # fit on the first `limit` training images


def fit_prior(model, data: ImageSet, settings: PriorSettings = PriorSettings()) -> FittedPrior:
    """One mixture over the training codes and, when the data has labels, one
    per class, each fitted on at most max_codes (class_max_codes) codes drawn
    at random: EM's time grows with the codes, and past a few thousand per
    component's worth they add little. Same seed, same prior."""
    s = settings
    if s.codes not in CODES or s.covariance_type not in COVARIANCES:
        raise TrainingError(f"codes must be one of {CODES} and covariance_type one of {COVARIANCES}.")
    start = time.perf_counter()
    n = min(len(data), s.limit) if s.limit else len(data)
    labels = data.labels[:n]
    labelled = bool(data.classes) and bool((labels >= 0).all())
    # The codes are drawn first and only their images encoded: a folder larger than memory costs the
    # codes it lends the fit, not an encoding of every image.
    rng = np.random.default_rng(s.seed)
    overall_rows = _subsample(np.arange(n), s.max_codes, rng)
    class_rows = ({name: _subsample(np.flatnonzero(labels == i), s.class_max_codes, rng)
                   for i, name in enumerate(data.classes)} if labelled else {})
    needed = np.unique(np.concatenate([overall_rows, *class_rows.values()]))
    z = encode_codes(model, Rows(data.images, needed), codes=s.codes, seed=s.seed)
    encode_seconds = time.perf_counter() - start
    overall = z[np.searchsorted(needed, overall_rows)]
    # At least as many codes as dimensions per component: fewer leave a full covariance unestimated.
    components = max(1, min(s.components, len(overall) // z.shape[1]))
    mixture = fit_mixture(overall, components, s.covariance_type, s.seed)
    classes, per_class, used = [], [], 0
    if labelled:
        # A class the data lacks (or nearly) gets no mixture and is not
        # offered; the others share one component count (prior.npy stacks them).
        members = {name: z[np.searchsorted(needed, rows)] for name, rows in class_rows.items()}
        members = {name: codes_ for name, codes_ in members.items() if len(codes_) >= 2}
        count = min(s.class_components, min((len(c) for c in members.values()), default=0) // 2)
        classes = list(members)
        per_class = fit_class_mixtures(list(members.values()), count, s.covariance_type, s.seed, s.purity)
        used = sum(len(c) for c in members.values())
    facts = {
        "file": PRIOR_FILE, "kind": "gaussian_mixture", "components": mixture.components,
        "class_components": max((m.components for m in per_class), default=0), "covariance_type": s.covariance_type,
        "fitted_on": f"posterior {s.codes} of {len(overall)} of {n} {data.name} training images"
                     + (f" ({used} for the class mixtures)" if classes else ""),
        "codes": s.codes, "classes": classes, "purity": s.purity if classes else None, "seed": s.seed,
        "encode_seconds": round(encode_seconds, 1),
        "fit_seconds": round(time.perf_counter() - start, 1),
    }
    return FittedPrior(mixture, classes, per_class, facts)


class LatentFit(NamedTuple):
    """What a prior fit adds to a bundle (vaegen.bundle.write.add_records)."""

    prior: FittedPrior
    latent_map: LatentMap | None  # None for fewer than three held-out images
    calibration: Calibration | None  # likewise


def fit_latents(model, data: tuple[ImageSet, ImageSet], dataset: str, settings: dict | None = None,
                scoring: Progress | None = None) -> LatentFit:
    """The prior fitted on a model's training set, the latent map of its
    held-out images and the calibration of its scores on them (up to
    CALIBRATION_IMAGES, at DEFAULT_K importance samples), from `data` as loaded
    (vaegen.data.load.split_for_training; a train run hands on its own).
    `settings` are PriorSettings' fields by name; the others keep their
    defaults. `scoring(done, total)` follows the held-out images' scoring
    (k decodes an image: for a conv decoder on a CPU, about as long as the fit)."""
    train_set, held_out = data
    check_image_shape(train_set, model.image_shape, dataset)
    prior = fit_prior(model, train_set, PriorSettings(**{**prior_defaults(model.image_shape[0]), **(settings or {})}))
    if len(held_out) < 3:
        return LatentFit(prior, None, None)
    latent_map = map_images(model, held_out, dataset=dataset)
    rows = calibration_rows(len(held_out))
    facts = {"dataset": dataset, "split": "test", "held_out": len(held_out)}
    done = [0]

    def told(n: int) -> None:
        done[0] += n
        scoring(done[0], len(rows))

    calibration = calibrate(model, held_out.images[rows], prior=as_stored(prior), k=DEFAULT_K, seed=0, facts=facts,
                            progress=told if scoring else None)
    return LatentFit(prior, latent_map, calibration)


def fit_bundle_prior(model, dataset: str | None = None, data_dir=None, settings: dict | None = None,
                     progress=None, scoring=None, skip_bad: bool = False) -> FittedPrior:
    """Fit a bundle's prior on its training set (the bundle's own dataset
    unless `dataset` says otherwise; an image folder's held-out tenth stays
    out, as in training) and install it in the bundle, with the latent map
    and the calibration of the held-out images (the test split, or the
    folder's held-out tenth): vaegen.bundle.write.install_prior writes each
    file once. `progress` follows the data's loading and `scoring` the
    held-out images' scoring, each called as (done, total)."""
    dataset = model_dataset(dataset, model.bundle.dataset)
    c, h, w = model.image_shape
    data = split_for_training(dataset, data_dir, channels=c, size=(h, w), progress=progress,
                              options=FolderOptions(skip_bad, model.bundle.background))
    fitted = fit_latents(model, data, dataset, settings, scoring=scoring)
    install_prior(model, *fitted)
    return fitted.prior
