"""The latent map: a dataset's latent means laid out in two dimensions, and
the way back from a point of that picture to a latent the decoder can draw.

A Projection is linear: project(z) gives a latent's two map coordinates,
unproject(xy) = mean + xy @ basis the latent at a point of the map, and
unproject(project(z)) lies on that plane. A 2-D latent is its own map; a
wider one is seen along Fisher's discriminants when the images have labels
(PCA, for a 64-d MNIST model, shows about 7% of the variance on each axis
and the ten digits piled on one another), else along its principal
components. numpy only: an SVD, a Cholesky factor, an eigendecomposition.

A bundle carries the map of its held-out images (map.npy, written when its
prior is fitted), so `vaegen map` and `vaegen serve` need no dataset; the
file's format, read and written, is in vaegen.bundle.records.

Used by `vaegen map` and `vaegen serve`. Imports numpy and vaegen's
torch-free modules (vaegen.data for the images, vaegen.bundle.records for
the bundle's map, both inside the functions that need them) only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from vaegen.choices import PROJECTIONS
from vaegen.errors import ArgumentError, DataError

MAP_IMAGES = 5000  # held-out images on a bundle's map



@dataclass(frozen=True)
class Projection:
    """A plane in latent space. project(z) = (z - mean) @ directions.T gives
    map coordinates; unproject(xy) = mean + xy @ basis gives the latent back,
    where basis is the regression of z on xy under a Gaussian fit of the data
    (the most typical latent at that point of the map; for PCA it is the
    directions themselves). directions @ basis.T = I, so
    project(unproject(xy)) = xy. `method` is "latent", "pca" or "lda"; `axes`
    names the two coordinates for a caption."""

    mean: np.ndarray  # [D]
    directions: np.ndarray  # [2, D]
    basis: np.ndarray  # [2, D]
    method: str
    axes: tuple[str, str]

    @property
    def latent_dim(self) -> int:
        return len(self.mean)

    def project(self, z: np.ndarray) -> np.ndarray:
        """Latents [N, D] -> map coordinates float32 [N, 2]."""
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ArgumentError(f"latents have shape {z.shape}; the map takes [N, {self.latent_dim}].")
        return ((z - self.mean) @ self.directions.T).astype(np.float32)

    def unproject(self, xy: np.ndarray) -> np.ndarray:
        """Map coordinates [N, 2] -> the latents float32 [N, D] at those points of the plane."""
        xy = np.asarray(xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ArgumentError(f"map points have shape {xy.shape}; they are [N, 2].")
        return (self.mean + xy @ self.basis).astype(np.float32)


def _check_means(mu: np.ndarray) -> np.ndarray:
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 2 or len(mu) < 3:
        raise ArgumentError(f"the map needs at least three latents [N, D], not shape {mu.shape}.")
    if not np.isfinite(mu).all():
        raise ArgumentError("the latents hold values that are not finite numbers.")
    if mu.shape[1] < 2:
        raise ArgumentError("a 1-D latent has no 2-D map.")
    return mu


def _signed(directions: np.ndarray) -> np.ndarray:
    """Each direction signed so its largest loading is positive: the same
    data always gives the same picture, never its mirror image."""
    rows = np.arange(len(directions))
    return directions * np.sign(directions[rows, np.abs(directions).argmax(axis=1)])[:, None]


def _pca(mu: np.ndarray) -> Projection:
    mean = mu.mean(axis=0)
    _, singular, vt = np.linalg.svd(mu - mean, full_matrices=False)
    share = singular[:2] ** 2 / (singular**2).sum()
    directions = _signed(vt[:2])
    return Projection(mean, directions, directions, "pca",
                      (f"PC 1 ({share[0]:.0%} of variance)", f"PC 2 ({share[1]:.0%} of variance)"))


def _lda(mu: np.ndarray, labels: np.ndarray) -> Projection:
    """Fisher's linear discriminants: the directions w that maximise the
    spread of the class means over the spread within classes, w'Sb w / w'Sw w
    (the generalised eigenproblem, solved through Sw's Cholesky factor)."""
    mean = mu.mean(axis=0)
    d = mu.shape[1]
    within, between = np.zeros((d, d)), np.zeros((d, d))
    for k in np.unique(labels):
        group = mu[labels == k]
        centred = group - group.mean(axis=0)
        within += centred.T @ centred
        offset = group.mean(axis=0) - mean
        between += len(group) * np.outer(offset, offset)
    within += np.eye(d) * (1e-6 * np.trace(within) / d + 1e-12)  # inactive dimensions make Sw singular
    inv_factor = np.linalg.inv(np.linalg.cholesky(within))
    _, vectors = np.linalg.eigh(inv_factor @ between @ inv_factor.T)
    directions = _signed((inv_factor.T @ vectors[:, ::-1][:, :2]).T)
    directions *= np.sqrt(len(mu))  # unit within-class spread along each axis
    covariance = np.cov(mu.T, bias=True)
    basis = np.linalg.solve(directions @ covariance @ directions.T, directions @ covariance)
    return Projection(mean, directions, basis, "lda", ("discriminant 1", "discriminant 2"))


def fit_projection(mu: np.ndarray, labels: np.ndarray | None = None, method: str = "auto") -> Projection:
    """The plane that shows the latent means mu [N, D] best. A 2-D latent is
    its own map (every point decodes exactly as it is). Otherwise "lda"
    (Fisher's discriminants: the linear view that best separates the classes;
    it needs labels of at least three classes) or "pca" (the two directions of
    most variance; it ignores labels). "auto": lda when labels allow, else pca."""
    mu = _check_means(mu)
    if method not in PROJECTIONS:
        raise ArgumentError(f"Unknown projection {method!r}; choose one of {', '.join(PROJECTIONS)}.")
    if mu.shape[1] == 2:
        return Projection(np.zeros(2), np.eye(2), np.eye(2), "latent", ("z 0", "z 1"))
    known = labels is not None and len(labels) == len(mu) and len(np.unique(labels[labels >= 0])) >= 3
    if method == "lda" and not known:
        raise ArgumentError("the lda projection needs labelled images of at least three classes.")
    if method == "pca" or not known:
        return _pca(mu)
    keep = labels >= 0
    return _lda(mu[keep], labels[keep])


def map_bounds(xy: np.ndarray, margin: float = 0.08) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) of a picture of the points xy [N, 2]: the
    0.5th to 99.5th percentiles (a few stray means would shrink the rest to a
    corner), widened by `margin` each side, with equal spans so the map's
    units are square."""
    lo, hi = np.percentile(xy, [0.5, 99.5], axis=0)
    centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 * (1 + 2 * margin) or 1.0
    return (float(centre[0] - half), float(centre[0] + half), float(centre[1] - half), float(centre[1] + half))


@dataclass
class LatentMap:
    """Images' places on the map: their 2-D points and labels, and the plane
    they were projected on. A map without points says why in `note`, and is
    framed by `frame`, the points of prior draws."""

    xy: np.ndarray  # float32 [N, 2]
    labels: np.ndarray  # int64 [N], -1 when unknown
    classes: list[str]  # names of the labels 0..K-1
    projection: Projection
    dataset: str
    note: str = ""
    frame: np.ndarray | None = None  # float32 [M, 2]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """map_bounds() of its points, or of its frame when it has none."""
        return map_bounds(self.xy if len(self.xy) or self.frame is None else self.frame)


def encode_map(model, dataset: str | None = None, *, data_dir: str | os.PathLike | None = None,
               split: str = "test", limit: int | None = MAP_IMAGES, method: str = "auto",
               progress=None, skip_bad: bool = False) -> LatentMap:
    """Encode the first `limit` images of `dataset`'s `split` (default: the
    dataset the bundle was trained on, from its vaegen.json; a folder the
    model never saw is mapped whole: vaegen.data.load.model_split) with
    `model` and fit the map."""
    from vaegen.data.load import load_for_model, model_dataset, model_split
    from vaegen.data.sets import FolderOptions

    dataset = model_dataset(dataset, model.bundle.dataset)
    split = model_split(dataset, split, model.bundle.meta)
    data = load_for_model(dataset, split, data_dir, model.image_shape, progress=progress,
                          options=FolderOptions(skip_bad, model.bundle.background))
    if len(data.images[:limit]) < 2:
        raise DataError(f"{dataset} has {len(data.images[:limit])} image(s) in its {split} split; "
                        "the map needs at least two.")
    return map_images(model, data, limit=limit, method=method, dataset=str(dataset))


def map_images(model, data, *, limit: int | None = MAP_IMAGES, method: str = "auto", dataset: str = "") -> LatentMap:
    """The map of the first `limit` images of an ImageSet (vaegen.data.sets), encoded by `model`."""
    images, labels = data.images[:limit], data.labels[:limit]
    mu, _ = model.encode_uint8(images, levels=True)
    projection = fit_projection(mu, labels, method)
    count = int(data.labels.max()) + 1 if len(data.labels) and data.labels.max() >= 0 else 0
    classes = list(data.classes[:count]) if len(data.classes) >= count else [str(i) for i in range(count)]
    return LatentMap(xy=projection.project(mu), labels=labels.astype(np.int64), classes=classes,
                     projection=projection, dataset=dataset or data.name)


def empty_map(model, note: str, seed: int = 0) -> LatentMap:
    """A map without points, for a bundle that has none and no data at hand:
    the plane of the two main directions of 2,000 prior draws, so that a
    point picked on it still decodes; `note` says why it is empty."""
    z = model.sample_latents(2000, seed=seed)
    projection = fit_projection(z)  # no labels: the principal plane (a 2-D latent is its own)
    return LatentMap(xy=np.zeros((0, 2), np.float32), labels=np.zeros(0, np.int64), classes=[], projection=projection,
                     dataset="", note=note, frame=projection.project(z))


def bundle_or_data_map(model, dataset: str | None, *, from_data: bool, **encode_args) -> LatentMap:
    """The map `vaegen map` and `vaegen serve` show: the bundle's own, unless
    `from_data` (the user asked for other images) or the bundle has none;
    then the images of `dataset`, encoded now (encode_map, with `encode_args`)."""
    if not from_data:
        from vaegen.bundle.records import read_map

        own = read_map(model.bundle)
        if own is not None:
            return own
    return encode_map(model, dataset, **encode_args)
