"""Fit the latent prior after training (ex-post density estimation) and add
it to a bundle.

The aggregate posterior q(z) = E_x q(z|x) does not fill N(0, I): prior draws
land in holes the decoder never learned, and decode to smudges. Fitting a
density to the encoded training set and sampling from it instead is the
remedy of Ghosh et al. 2020 ("From Variational to Deterministic
Autoencoders", ex-post density estimation) and of pythae's
GaussianMixtureSampler; with labels, one mixture per class gives
class-conditional generation from an unconditional model.

The prior is fitted on the training split and the map drawn from the
held-out split, by the one held-out rule (vaegen.data.load). The choices
below were measured on the shipped models: docs/samples.md.

Runs the encoder through ONNX Runtime (vaegen.api) and fits with
scikit-learn's GaussianMixture (imported inside fit_mixture); imports no
torch, so `vaegen fit-prior` works on any bundle where scikit-learn is installed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaegen.bundle.card import PER_CLASS_PICTURE, model_card
from vaegen.bundle.records import MAP_FILE, PRIOR_FILE, map_record, write_prior, write_record
from vaegen.data.load import check_image_shape, model_input, split_for_training
from vaegen.data.sets import ImageSet
from vaegen.errors import TrainingError
from vaegen.evaluation.metrics import ACTIVE_THRESHOLD
from vaegen.fileio import atomic_path
from vaegen.latent.map import LatentMap, map_images
from vaegen.latent.sampling import FittedPrior, GaussianMixture

CODES = ("means", "draws")
# The defaults end every `vaegen train`, so they are sized to take a small share of it; the shipped
# models' priors are fitted larger by tools/ship.py (100 and 10 components; docs/samples.md).
COMPONENTS, CLASS_COMPONENTS = 20, 5
MAX_CODES, CLASS_MAX_CODES = 10_000, 2_000
# Class mixtures are refitted without the codes their own class explains with p < PURITY: the value
# that gave the best label agreement at the same cost (docs/samples.md, "The default purity").
PURITY = 0.99
COVARIANCES = ("full", "diag")


def encode_codes(model, images: np.ndarray, *, codes: str, seed: int) -> np.ndarray:
    """The training set's latent codes: the posterior means mu(x), or one
    draw z ~ q(z|x) per image; the images as the model learned on them
    (binarized once, seeded, for a Bernoulli model: model_input)."""
    x = model_input(images, model.bundle.likelihood, seed=seed)
    mu, logvar = model.encode(x)
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


def _subsample(z: np.ndarray, most: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most `most` rows of z, drawn without replacement (all of them when fewer)."""
    if most is None or len(z) <= most:
        return z
    return z[np.sort(rng.choice(len(z), size=most, replace=False))]


@dataclass(frozen=True)
class PriorSettings:
    """How a prior is fitted (`vaegen fit-prior`'s options; None: all codes)."""

    components: int = COMPONENTS
    class_components: int = CLASS_COMPONENTS
    max_codes: int | None = MAX_CODES
    class_max_codes: int | None = CLASS_MAX_CODES
    covariance_type: str = "full"
    codes: str = "means"
    seed: int = 0
    purity: float = PURITY
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
    images, labels = (data.images[: s.limit], data.labels[: s.limit]) if s.limit else (data.images, data.labels)
    z = encode_codes(model, images, codes=s.codes, seed=s.seed)
    encode_seconds = time.perf_counter() - start
    rng = np.random.default_rng(s.seed)
    overall = _subsample(z, s.max_codes, rng)
    mixture = fit_mixture(overall, s.components, s.covariance_type, s.seed)
    classes, per_class, used = [], [], 0
    if data.classes and (labels >= 0).all():
        # A class the data lacks (or nearly) gets no mixture and is not
        # offered; the others share one component count (prior.npy stacks them).
        members = {name: _subsample(z[labels == i], s.class_max_codes, rng) for i, name in enumerate(data.classes)}
        members = {name: codes_ for name, codes_ in members.items() if len(codes_) >= 2}
        count = min(s.class_components, min((len(c) for c in members.values()), default=0) // 2)
        classes = list(members)
        per_class = fit_class_mixtures(list(members.values()), count, s.covariance_type, s.seed, s.purity)
        used = sum(len(c) for c in members.values())
    facts = {
        "file": PRIOR_FILE, "kind": "gaussian_mixture", "components": mixture.components,
        "class_components": max((m.components for m in per_class), default=0), "covariance_type": s.covariance_type,
        "fitted_on": f"posterior {s.codes} of {len(overall)} of {len(z)} {data.name} training images"
                     + (f" ({used} for the class mixtures)" if classes else ""),
        "codes": s.codes, "classes": classes, "purity": s.purity if classes else None, "seed": s.seed,
        "encode_seconds": round(encode_seconds, 1),
        "fit_seconds": round(time.perf_counter() - start, 1),
    }
    return FittedPrior(mixture, classes, per_class, facts)


def fit_bundle_prior(model, dataset: str | None = None, data_dir=None, settings: dict | None = None,
                     progress=None) -> FittedPrior:
    """Fit a bundle's prior on the training split of its dataset (the
    bundle's own unless `dataset` says otherwise) and install it in the
    bundle, with the latent map of the held-out split (the test split, or an
    image folder's held-out tenth): vaegen.data.load.split_for_training, as in training.
    `settings` are PriorSettings' fields by name; the others keep their defaults."""
    dataset = dataset or model.bundle.dataset
    c, h, w = model.image_shape
    data, held_out = split_for_training(dataset, data_dir, channels=c, size=(h, w), progress=progress)
    data = check_image_shape(data, model.image_shape, dataset)
    prior = fit_prior(model, data, PriorSettings(**(settings or {})))
    install_prior(model, prior)
    if len(held_out) >= 3:
        install_map(model, map_images(model, held_out, dataset=dataset))
    return prior


def install_map(model, latent_map: LatentMap) -> None:
    """Write map.npy (the held-out images' latent map) into the model's
    bundle and list it, with its facts, in vaegen.json: `vaegen map` and
    `vaegen serve` then need no dataset."""
    arrays, facts = map_record(latent_map)
    write_record(Path(model.bundle.path) / MAP_FILE, arrays)
    _list_file(model, MAP_FILE, "map", facts)


def install_prior(model, prior: FittedPrior) -> None:
    """Write prior.npy into the model's bundle, list it (sha256, bytes) and its
    facts in vaegen.json, redraw the bundle's sample grids from it, and
    describe it in the model card. Each file is written atomically; prior.npy
    goes first, so a bundle never lists a prior it lacks."""
    from vaegen.api import save_grid

    bundle_dir = Path(model.bundle.path)
    write_prior(bundle_dir / PRIOR_FILE, prior)
    _list_file(model, PRIOR_FILE, "prior", prior.facts)
    model.forget_prior()  # the pictures are drawn from the file as written, as `vaegen sample` will read it
    save_grid(model.sample(64, seed=0), bundle_dir / "samples.png", nrow=8, scale=2)
    if prior.classes:
        save_grid(model.sample_per_class(10, seed=0), bundle_dir / PER_CLASS_PICTURE, nrow=10, scale=2)


def _list_file(model, name: str, key: str, facts: dict) -> None:
    """List the bundle's file `name` (bytes, sha256) in vaegen.json with its
    facts under `key`, and write the card anew."""
    from vaegen.bundle.read import META_FILE, sha256_file

    bundle_dir = Path(model.bundle.path)
    path = bundle_dir / name
    meta = json.loads((bundle_dir / META_FILE).read_text(encoding="utf-8"))
    meta["files"][name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    meta[key] = facts
    _write_meta_and_card(model, meta)


def record_prior_quality(model, rows: dict[str, dict], command: str) -> None:
    """Add sample-quality figures (vaegen.quality.compare_priors) to the
    prior's facts in vaegen.json and to the model card."""
    from vaegen.bundle.read import META_FILE

    keep = ("count", "frechet_distance", "confident_share", "inception_score", "label_agreement")
    meta = json.loads((Path(model.bundle.path) / META_FILE).read_text(encoding="utf-8"))
    meta["prior"]["quality"] = {name: {k: round(row[k], 4) for k in keep if k in row} for name, row in rows.items()}
    meta["prior"]["quality_command"] = command
    _write_meta_and_card(model, meta)


def _write_meta_and_card(model, meta: dict) -> None:
    """Write vaegen.json, then the model card anew from it (vaegen.card)."""
    from vaegen.bundle.read import META_FILE

    bundle_dir = Path(model.bundle.path)
    with atomic_path(bundle_dir / META_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    model.bundle.meta = meta
    with atomic_path(bundle_dir / "README.md") as tmp:
        tmp.write_text(model_card(meta), encoding="utf-8")
