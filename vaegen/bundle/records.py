"""A bundle's .npy records, written and read back checked: the fitted prior
(prior.npy), the latent map of the held-out images (map.npy) and the
calibration of the per-image scores (calibration.npy). Imports numpy,
vaegen.bundle.read, vaegen.fileio and vaegen.latent (the map's classes inside
read_map, and vaegen.evaluation.scores inside read_calibration, so that
reading a prior imports neither).

Each file is one numpy record (a structured array of one element) whose
fields are plain arrays, read with allow_pickle=False (a file holding
pickled objects is refused, never unpickled). prior.npy:

    weights [K], means [K, D], scale_tril [K, D, D]      the mixture over all training codes
    classes [C] (unicode)                                 class names, when the data had labels
    class_weights [C, M], class_means [C, M, D],          one mixture of M components per class
    class_scale_tril [C, M, D, D]

Each covariance is stored as its lower Cholesky factor L (covariance = L L^T),
which is what sampling needs; means and factors as float32, weights as
float64. One .npy, not an .npz: reading an .npz imports zipfile (and with it
shutil, bz2 and lzma), about 8 ms of every `vaegen sample`'s start; a record
is one read, and its class fields are views used only when a class is drawn.

map.npy: mean [D], directions [2, D], basis [2, D] (the projection, see
vaegen.latent.map.Projection), xy [N, 2] and labels [N] (the held-out images' points).

calibration.npy: one field per score of vaegen.evaluation.scores, named as
the score, holding its QUANTILES quantiles over the held-out images [Q]
(float64). A record, not vaegen.json: every command reads vaegen.json at
start, and a thousand numbers per score would be parsed by each of them.

vaegen.json lists each under "files" (sha256, bytes) like the graphs, and
its facts under "prior" (components, covariance type, what it was fitted on,
fit time), "map" (method, axes, classes, dataset, images) and "calibration"
(images, dataset, split, k, seed, the scores).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vaegen.bundle.read import META_FILE, read_checked
from vaegen.errors import BundleError
from vaegen.fileio import atomic_path
from vaegen.latent.sampling import FittedPrior, GaussianMixture

if TYPE_CHECKING:  # the map's and the calibration's classes are imported where they are read
    from vaegen.evaluation.scores import Calibration
    from vaegen.latent.map import LatentMap

PRIOR_FILE = "prior.npy"
MAP_FILE = "map.npy"
CALIBRATION_FILE = "calibration.npy"
MAP_FIELDS = ("mean", "directions", "basis", "xy", "labels")
REMEDY = "run `vaegen fit-prior` on the bundle again"
REQUIRED = ("weights", "means", "scale_tril")
CLASS_FIELDS = ("class_weights", "class_means", "class_scale_tril")


def prior_arrays(prior: FittedPrior) -> dict[str, np.ndarray]:
    def f32(a):
        return np.asarray(a, np.float32)

    arrays = {"weights": prior.mixture.weights, "means": f32(prior.mixture.means),
              "scale_tril": f32(prior.mixture.scale_tril)}
    if prior.classes:
        arrays["classes"] = np.array(prior.classes, dtype=str)
        arrays["class_weights"] = np.stack([m.weights for m in prior.per_class])
        arrays["class_means"] = f32(np.stack([m.means for m in prior.per_class]))
        arrays["class_scale_tril"] = f32(np.stack([m.scale_tril for m in prior.per_class]))
    return arrays


def as_stored(prior: FittedPrior) -> FittedPrior:
    """The overall mixture of `prior` as prior.npy keeps it (float32 means and
    factors): what every reader of the bundle computes with, so a score
    calibrated with it is the score read back."""
    arrays = prior_arrays(prior)
    return FittedPrior(GaussianMixture(arrays["weights"], arrays["means"], arrays["scale_tril"]), facts=prior.facts)


def write_prior(path: str | Path, prior: FittedPrior) -> None:
    """Write prior.npy atomically: the arrays as the fields of one record."""
    write_record(path, prior_arrays(prior))


def write_record(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write named arrays atomically as the fields of one .npy record (a
    bundle's prior.npy and map.npy), read back by load_record."""
    record = np.zeros((), dtype=[(name, a.dtype, a.shape) for name, a in arrays.items()])
    for name, a in arrays.items():
        record[name] = a
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as f:
        np.save(f, record, allow_pickle=False)


def parse_prior(data: bytes, latent_dim: int, where: str, facts: dict | None = None) -> FittedPrior:
    """A FittedPrior from prior.npy's bytes (already checked against their
    sha256). The overall mixture is checked now; the class mixtures when a
    class is first drawn from."""
    try:
        record = load_record(data)
    except (ValueError, OSError, EOFError) as exc:
        raise BundleError(f"{where} is not a readable prior (a numpy record of plain arrays): {exc}") from exc
    fields = record.dtype.names or ()
    if record.shape != () or any(name not in fields for name in REQUIRED):
        raise BundleError(f"{where} is malformed: expected one record with the fields {', '.join(REQUIRED)}; {REMEDY}.")
    try:
        mixture = GaussianMixture(record["weights"], record["means"], record["scale_tril"])
        classes, per_class = [], None
        if "classes" in fields:
            if record["classes"].dtype.kind != "U" or record["classes"].ndim != 1:
                raise ValueError("class names are not a list of text")
            classes = [str(c) for c in record["classes"]]
            per_class = _class_mixtures(record, len(classes), latent_dim, where)
        prior = FittedPrior(mixture, classes, per_class, facts)
    except (KeyError, ValueError) as exc:
        raise BundleError(f"{where} is malformed: {exc}; {REMEDY}.") from exc
    if mixture.dim != latent_dim:
        raise BundleError(f"{where} is for {mixture.dim}-d latents; this model's are {latent_dim}-d.")
    return prior


def load_record(data: bytes) -> np.ndarray:
    """np.load(..., allow_pickle=False) of a .npy record, without copying its
    bytes: the header is parsed, then the fields are views of `data`."""
    from numpy.lib import format as npy

    buffer = io.BytesIO(data)
    version = npy.read_magic(buffer)
    read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, fortran_order, dtype = read_header(buffer)
    if dtype.hasobject:
        raise ValueError("it holds Python objects, which are never unpickled (allow_pickle=False)")
    if fortran_order or shape != ():
        raise ValueError(f"expected one record, not an array of shape {shape}")
    return np.frombuffer(data, dtype=dtype, count=1, offset=buffer.tell()).reshape(())


def _class_mixtures(record: np.ndarray, count: int, latent_dim: int, where: str):
    """A function that checks and makes the class mixtures (one per class name)."""

    def build() -> list[GaussianMixture]:
        try:
            weights, means, scale_tril = (record[name] for name in CLASS_FIELDS)
            if means.ndim != 3 or len(means) != count:
                raise ValueError(f"{count} class names but class means of shape {means.shape}")
            if means.shape[2] != latent_dim:
                raise ValueError(f"the class mixtures are for {means.shape[2]}-d latents; this model's are {latent_dim}-d")
            return [GaussianMixture(w, m, s) for w, m, s in zip(weights, means, scale_tril, strict=True)]
        except (KeyError, ValueError) as exc:
            raise BundleError(f"{where} is malformed: {exc}; {REMEDY}.") from exc

    return build


def read_listed(bundle, name: str) -> bytes | None:
    """The bytes of the bundle's file `name`, checked against its entry in
    vaegen.json (unless the bundle was loaded with verify=False); None when
    vaegen.json lists no such file."""
    entry = bundle.meta.get("files", {}).get(name)
    if entry is None:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise BundleError(f"{bundle.path / META_FILE} is malformed: no sha256 for {name}.")
    return read_checked(bundle.path / name, entry if bundle.verify else None, remedy=REMEDY)


def read_prior(bundle) -> FittedPrior | None:
    """The bundle's fitted prior, checked against vaegen.json's sha256; None
    when the bundle has none (it then samples from N(0, I))."""
    data = read_listed(bundle, PRIOR_FILE)
    if data is None:
        return None
    facts = bundle.meta.get("prior") if isinstance(bundle.meta.get("prior"), dict) else {}
    return parse_prior(data, bundle.latent_dim, str(bundle.path / PRIOR_FILE), facts)


def map_record(latent_map: LatentMap) -> tuple[dict[str, np.ndarray], dict]:
    """map.npy's fields (for write_record) and the facts vaegen.json keeps
    beside them, from a vaegen.latent.map.LatentMap."""
    p = latent_map.projection
    arrays = {"mean": np.asarray(p.mean, np.float64), "directions": np.asarray(p.directions, np.float64),
              "basis": np.asarray(p.basis, np.float64), "xy": np.asarray(latent_map.xy, np.float32),
              "labels": np.asarray(latent_map.labels, np.int64)}
    facts = {"file": MAP_FILE, "method": p.method, "axes": list(p.axes), "classes": list(latent_map.classes),
             "dataset": latent_map.dataset, "images": len(latent_map.xy)}
    return arrays, facts


def read_map(bundle) -> LatentMap | None:
    """The bundle's own latent map (a vaegen.latent.map.LatentMap, map.npy
    checked against its sha256), or None when it has none."""
    from vaegen.latent.map import LatentMap, Projection

    listed = _listed_record(bundle, "map", MAP_FILE, "latent map")
    if listed is None:
        return None
    record, facts, refuse = listed
    try:
        fields = {name: np.asarray(record[name]) for name in MAP_FIELDS}
        d = bundle.latent_dim
        if (fields["mean"].shape != (d,) or fields["directions"].shape != (2, d) or fields["basis"].shape != (2, d)
                or fields["xy"].ndim != 2 or fields["xy"].shape[1] != 2 or fields["labels"].shape != (len(fields["xy"]),)):
            raise ValueError("its arrays do not have the shapes of a map of this model")
        projection = Projection(fields["mean"], fields["directions"], fields["basis"], str(facts["method"]),
                                tuple(str(a) for a in facts["axes"]))
        return LatentMap(xy=fields["xy"].astype(np.float32), labels=fields["labels"].astype(np.int64),
                         classes=[str(c) for c in facts.get("classes", [])], projection=projection,
                         dataset=str(facts.get("dataset", "")))
    except (ValueError, KeyError, TypeError) as exc:
        raise refuse(exc) from exc


def _listed_record(bundle, key: str, name: str, kind: str):
    """(the record, its facts in vaegen.json under `key`, a function that
    makes the BundleError for a malformed one) of the bundle's file `name`,
    checked against its sha256; None when vaegen.json lists no such record."""
    facts = bundle.meta.get(key)
    data = read_listed(bundle, name) if isinstance(facts, dict) else None
    if data is None:
        return None

    def refuse(exc: Exception) -> BundleError:
        return BundleError(f"{bundle.path / name} is not a readable {kind}: {exc}; {REMEDY}.")

    try:
        return load_record(data), facts, refuse
    except (ValueError, OSError, EOFError) as exc:
        raise refuse(exc) from exc


def calibration_record(calibration: Calibration) -> tuple[dict[str, np.ndarray], dict]:
    """calibration.npy's fields (for write_record) and the facts vaegen.json keeps beside them."""
    arrays = {name: np.asarray(q, np.float64) for name, q in calibration.quantiles.items()}
    return arrays, {**calibration.facts, "file": CALIBRATION_FILE, "scores": list(arrays)}


def read_calibration(bundle) -> Calibration | None:
    """The bundle's calibration of its scores (calibration.npy checked against
    its sha256), or None when it has none (a bundle fitted before scores were
    calibrated: `vaegen fit-prior` adds one)."""
    from vaegen.evaluation.scores import Calibration

    listed = _listed_record(bundle, "calibration", CALIBRATION_FILE, "calibration")
    if listed is None:
        return None
    record, facts, refuse = listed
    try:
        quantiles = {name: np.asarray(record[name], np.float64) for name in record.dtype.names or ()}
        if not quantiles or any(q.ndim != 1 or len(q) < 2 or np.any(np.diff(q) < 0) for q in quantiles.values()):
            raise ValueError("each score's quantiles must be a rising list of numbers")
        if not isinstance(facts.get("k"), int) or facts["k"] < 1:
            raise ValueError(f"vaegen.json's calibration has no k: {facts.get('k')!r}")
    except (ValueError, KeyError, TypeError) as exc:
        raise refuse(exc) from exc
    return Calibration(quantiles, dict(facts))
