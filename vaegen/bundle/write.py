"""Writing a model bundle: vaegen.json, the model card (README.md), the
sample grids, and the records a prior fit adds (prior.npy, map.npy,
calibration.npy) with their entries in vaegen.json.

Each file is written once per change of the bundle, when what it holds
exists, to a temporary name and renamed into place (vaegen.fileio). The
records and pictures go first; then vaegen.json, which lists each record with
its sha256, so a bundle never lists a record it lacks; then the card, written
anew from vaegen.json (vaegen.bundle.card). The export
(vaegen.training.export.building_bundle) makes the graphs and calls these in
the folder it builds, then moves the whole folder into place; `vaegen
fit-prior` calls install_prior on a finished bundle, and tools/ship.py
install_calibration on a shipped one (its prior and pictures untouched).

numpy, Pillow and vaegen's torch-free modules only. A `model` here is a
vaegen.api.Model on the bundle (it draws the pictures); its Bundle's `meta`
is vaegen.json as it will be written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from vaegen.bundle.card import PER_CLASS_PICTURE, model_card
from vaegen.bundle.read import META_FILE, Bundle, sha256_file
from vaegen.bundle.records import (
    CALIBRATION_FILE,
    MAP_FILE,
    PRIOR_FILE,
    calibration_record,
    map_record,
    write_prior,
    write_record,
)
from vaegen.fileio import atomic_path
from vaegen.images import make_grid, save_image
from vaegen.latent.map import LatentMap
from vaegen.latent.sampling import FittedPrior

if TYPE_CHECKING:
    from vaegen.evaluation.scores import Calibration

CARD_FILE = "README.md"
SAMPLES_PICTURE = "samples.png"
SAMPLES, NROW, SCALE = 64, 8, 2  # the card's grid: 8x8 draws of seed 0, each pixel doubled
PER_CLASS = 10  # draws of each class, a row per class


def save_meta_and_card(bundle: Bundle) -> None:
    """Write the bundle's vaegen.json from `bundle.meta`, then its card anew from it."""
    folder = Path(bundle.path)
    with atomic_path(folder / META_FILE) as tmp:
        tmp.write_text(json.dumps(bundle.meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    with atomic_path(folder / CARD_FILE) as tmp:
        tmp.write_text(model_card(bundle.meta), encoding="utf-8")


def list_file(bundle: Bundle, name: str) -> None:
    """List the bundle's file `name` (bytes, sha256) in `bundle.meta`."""
    path = Path(bundle.path) / name
    bundle.meta.setdefault("files", {})[name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}


def add_records(model, prior: FittedPrior, latent_map: LatentMap | None = None,
                calibration: Calibration | None = None) -> None:
    """Write prior.npy (and map.npy, the held-out images' latent map, so that
    `vaegen map` and `vaegen serve` need no dataset; and calibration.npy, the
    held-out images' scores, so that `vaegen score` gives percentiles) into
    the model's bundle, list them with their facts in its meta, and draw the
    sample grids from the prior as written. vaegen.json and the card are left
    to the caller, who writes them once (save_meta_and_card)."""
    folder = Path(model.bundle.path)
    write_prior(folder / PRIOR_FILE, prior)
    list_file(model.bundle, PRIOR_FILE)
    model.bundle.meta["prior"] = prior.facts
    if latent_map is not None:
        arrays, facts = map_record(latent_map)
        write_record(folder / MAP_FILE, arrays)
        list_file(model.bundle, MAP_FILE)
        model.bundle.meta["map"] = facts
    if calibration is not None:
        add_calibration(model, calibration)
    elif "calibration" in model.bundle.meta:  # measured under the old prior: no longer true
        del model.bundle.meta["calibration"]
        model.bundle.meta["files"].pop(CALIBRATION_FILE, None)
        model.forget_calibration()
    model.forget_prior()  # the pictures are drawn from the file as written, as `vaegen sample` will read it
    draw_samples(model)


def add_calibration(model, calibration: Calibration) -> None:
    """Write calibration.npy and list it, with its facts, in the model's meta."""
    arrays, facts = calibration_record(calibration)
    write_record(Path(model.bundle.path) / CALIBRATION_FILE, arrays)
    list_file(model.bundle, CALIBRATION_FILE)
    model.bundle.meta["calibration"] = facts
    model.forget_calibration()


def install_calibration(model, calibration: Calibration, ood: dict | None = None) -> None:
    """A finished bundle's calibration alone (and `ood`, its detection figures
    for the card, vaegen.evaluation.detection): calibration.npy, then
    vaegen.json and the card. The prior, the graphs and the pictures stay as they are."""
    add_calibration(model, calibration)
    if ood is not None:
        model.bundle.meta["ood"] = ood
    save_meta_and_card(model.bundle)


def draw_samples(model) -> None:
    """The bundle's sample grids: 64 draws of seed 0 from its prior (the
    fitted one where it has one, else N(0, I)), as `vaegen sample -n 64
    --seed 0` draws them; and ten of each class where the prior has classes."""
    folder = Path(model.bundle.path)
    save_image(make_grid(model.sample(SAMPLES, seed=0), nrow=NROW), folder / SAMPLES_PICTURE, scale=SCALE)
    if model.classes:
        save_image(make_grid(model.sample_per_class(PER_CLASS, seed=0), nrow=PER_CLASS), folder / PER_CLASS_PICTURE,
                   scale=SCALE)


def install_prior(model, prior: FittedPrior, latent_map: LatentMap | None = None,
                  calibration: Calibration | None = None) -> None:
    """A finished bundle's new prior (and map, and calibration): its records
    and pictures (add_records), then vaegen.json and the card, each written once."""
    add_records(model, prior, latent_map, calibration)
    save_meta_and_card(model.bundle)


def record_prior_quality(model, rows: dict[str, dict], command: str) -> None:
    """Add sample-quality figures (vaegen.evaluation.judges.compare_priors)
    to the prior's facts in vaegen.json and to the model card."""
    keep = ("count", "frechet_distance", "confident_share", "inception_score", "label_agreement")
    prior = model.bundle.meta["prior"]
    prior["quality"] = {name: {k: round(row[k], 4) for k in keep if k in row} for name, row in rows.items()}
    prior["quality_command"] = command
    save_meta_and_card(model.bundle)
