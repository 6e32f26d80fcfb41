"""Ship a trained run as a model bundle with a full model card (`make weights`).

    python tools/ship.py bundle RUN_DIR DEST [--k 1000] [--limit N] [--data-dir DIR] [--docs docs]
    python tools/ship.py bundle RUN_DIR weights/emoji --folder ../shared/data/emoji   # a folder's model
    python tools/ship.py prior DEST [--components 100] [--class-components 10] [--purity 0.99]
    python tools/ship.py calibrate DEST [--data-dir DIR] [--images 1000]

`bundle` exports the run's checkpoint, evaluates it through ONNX Runtime on
the test split as its likelihood models it (importance-weighted NLL with k
samples, in nats and bits/dim), re-exports with those figures in vaegen.json,
the graphs' metadata and the model card, then does what `prior` does and
draws the README's pictures from the shipped model.

`prior` fits the bundle's latent prior on every training code (and its
latent map), then judges 10,000 samples of each prior with the dataset's
judge (`vaegen evaluate --samples 10000`) and records the figures.

`calibrate` adds the calibration of the per-image scores alone (what a prior
fit now writes, vaegen.evaluation.scores) to a bundle shipped before it: its
prior, graphs and pictures stay as they are. It then measures OOD detection
for the card (`vaegen evaluate --ood`: the other shipped dataset, the
held-out images upside down, noise) and the flag's share on every held-out
image the calibration did not see.

A folder's model (--folder: where its images are here) is shipped under the
folder's name alone, with its fingerprint (no path of this machine in the
bundle), its data's source and licences on the card (DATA_NOTES), judged by
its shipped judge (found by the folder's content) on the held-out tenth, and
pictured by reconstructions and an interpolation of held-out images as well.

A release step, not library code: it lives outside the vaegen package, and
may print. It imports the exporter (torch) and the Python API (vaegen.api).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from vaegen.api import Model, save_grid
from vaegen.bundle.read import load_bundle
from vaegen.bundle.records import read_map
from vaegen.bundle.write import install_calibration, install_prior, record_prior_quality
from vaegen.data.load import evaluation_images, split_for_training
from vaegen.data.named import load_idx_dataset
from vaegen.data.sets import FolderOptions
from vaegen.evaluation.detection import made_set, ood_report
from vaegen.evaluation.judges import compare_priors, judging_data, load_judge
from vaegen.evaluation.metrics import evaluate
from vaegen.evaluation.scores import (
    DEFAULT_K,
    DEFAULT_SCORE,
    FLAG_ABOVE,
    calibrate,
    calibration_rows,
    measure,
    score_terms,
)
from vaegen.images import make_grid, prepare_image, save_gif, save_image, there_and_back
from vaegen.latent.fit import fit_bundle_prior, fit_latents
from vaegen.latent.sampling import slerp, traversal
from vaegen.plot import scatter_map
from vaegen.runtime import describe_machine
from vaegen.training.checkpoint import CHECKPOINT
from vaegen.training.export import export_checkpoint

JUDGED = 10_000
# What a shipped folder model's card says of its images, by the folder's name.
DATA_NOTES = {
    "emoji": {
        "data_source": "The Google (Noto Emoji) and Twitter (Twemoji) emoji designs at 64x64, from the npm packages "
                       "emoji-datasource-google and emoji-datasource-twitter 16.0.0 (MIT-licensed packages): 7,562 "
                       "RGBA images in 9 category folders, transparency composited onto mid grey.",
        "data_licences": ["Noto Emoji designs (3,781 images): Apache-2.0.",
                          "Twemoji designs (3,781 images): CC-BY 4.0. Twemoji by Twitter, Inc and other contributors "
                          "(https://github.com/twitter/twemoji), licensed under CC-BY 4.0; this model was trained on "
                          "them and its samples are derived from them."],
    },
}
OTHER = {"mnist": "fashion-mnist", "fashion-mnist": "mnist"}  # each shipped model's foreign shipped dataset


def paper_photo(digit: np.ndarray, seed: int) -> Image.Image:
    """An MNIST digit as a phone photo would show it: dark ink on grey-white
    paper, 6x larger, slightly off-centre, with sensor noise."""
    rng = np.random.default_rng(seed)
    ink = np.asarray(Image.fromarray(digit).resize((168, 168), Image.Resampling.BICUBIC), np.float32) / 255
    page = np.full((260, 220), 0.88, np.float32)
    top, left = rng.integers(20, 80), rng.integers(10, 45)
    page[top : top + 168, left : left + 168] -= 0.8 * ink
    page += rng.normal(0, 0.02, page.shape).astype(np.float32)
    return Image.fromarray(np.round(np.clip(page, 0, 1) * 255).astype(np.uint8), mode="L").convert("RGB")


def draw_mnist_pictures(model: Model, docs: Path, data_dir: str | None) -> None:
    """The README's MNIST pictures: photographed digits read back, a walk, a traversal."""
    d = model.bundle.latent_dim
    test = load_idx_dataset("mnist", "test", data_dir)
    picks = [int(np.flatnonzero(test.labels == label)[0]) for label in range(10)]
    inputs = docs / "inputs"
    inputs.mkdir(exist_ok=True)
    paths = []
    for label, index in enumerate(picks):
        path = inputs / f"digit{label}.jpg"
        paper_photo(test.images[index, 0], seed=label).save(path, quality=90)
        paths.append(path)
    seen = np.stack([prepare_image(p, image_shape=model.bundle.image_shape, preprocessing="mnist") for p in paths])
    recon = model.decode(model.encode(seen)[0])
    save_image(make_grid(np.concatenate([seen, recon]), nrow=10), docs / "reconstruct.png", scale=2)
    mu = model.encode(seen[[3, 8]])[0]
    frames = model.decode(slerp(mu[0], mu[1], 10))
    save_image(make_grid(np.concatenate([seen[3:4], frames, seen[8:9]]), nrow=12), docs / "interpolate.png", scale=2)
    save_gif(there_and_back(frames), docs / "interpolate.gif", scale=4)
    dims = model.active_dims(limit=8)
    save_image(make_grid(model.decode(traversal(np.zeros(d, np.float32), 11, dims=dims)), nrow=11),
             docs / "traverse.png", scale=2)


def draw_pictures(bundle_dir: Path, docs: Path, data_dir: str | None, folder: str | None = None) -> None:
    """Samples, a row per class and the map, in docs/ (MNIST's at its top, another dataset's in docs/<dataset>/);
    for a folder's model, reconstructions and an interpolation of its held-out images too."""
    model = Model(load_bundle(bundle_dir), provider="cpu")
    dataset = model.bundle.dataset
    out = docs if dataset == "mnist" else docs / dataset
    out.mkdir(parents=True, exist_ok=True)
    save_grid(model.sample(64, seed=0), out / "samples.png", nrow=8, scale=2)  # the fitted prior
    if model.classes:
        save_grid(model.sample_per_class(10, seed=0), out / "samples_per_class.png", nrow=10, scale=2)
    latent_map = read_map(model.bundle)
    if latent_map is not None:
        title = f"{len(latent_map.xy)} {dataset} test images, {latent_map.projection.method}"
        save_image(scatter_map(latent_map.xy, latent_map.labels, latent_map.classes, bounds=latent_map.bounds,
                             title=title, axes=latent_map.projection.axes), out / "map.png")
    if dataset == "mnist":
        draw_mnist_pictures(model, docs, data_dir)
    if folder:
        draw_folder_pictures(model, folder, out)


def draw_folder_pictures(model: Model, folder: str, out: Path) -> None:
    """Two held-out images of each class over their reconstructions, and an interpolation between two of them."""
    c, h, w = model.image_shape
    held = split_for_training(folder, channels=c, size=(h, w), options=FolderOptions(background=model.bundle.background))[1]
    picks = [i for label in range(len(held.classes)) for i in np.flatnonzero(held.labels == label)[[0, -1]]]
    seen = np.asarray(held.images[np.array(picks)], np.float32) / 255
    recon = model.reconstruct(seen)
    n = len(picks)
    save_image(make_grid(np.concatenate([seen[: n // 2 * 2 : 2], recon[: n // 2 * 2 : 2],
                                         seen[1::2], recon[1::2]]), nrow=n // 2), out / "reconstruct.png", scale=2)
    a, b = model.encode(seen[[0, -1]])[0]
    frames = model.decode(slerp(a, b, 10))
    save_image(make_grid(np.concatenate([seen[:1], frames, seen[-1:]]), nrow=12), out / "interpolate.png", scale=2)


def fit_and_judge_prior(dest: Path, data_dir: str | None, settings: dict, folder: str | None = None) -> None:
    """The shipped prior: fitted on every training code, then judged as
    `vaegen evaluate --model DEST --samples N` judges it (N: 10,000; a
    folder's, as many as its held-out images)."""
    model = Model(load_bundle(dest), provider="cpu")
    dataset = model.bundle.dataset
    settings = {"class_max_codes": None, **settings}
    if folder:  # fitted from the folder here, recorded under the bundle's name for it
        c, h, w = model.image_shape
        data = split_for_training(folder, channels=c, size=(h, w),
                                  options=FolderOptions(background=model.bundle.background))
        install_prior(model, *fit_latents(model, data, dataset, settings))
    else:
        fit_bundle_prior(model, None, data_dir, settings)
    source = folder or dataset
    judge = load_judge(dataset=source, provider="cpu")
    real = judging_data(model, judge, source, data_dir)
    n = min(JUDGED, len(real["real_images"]))
    rows = compare_priors(model, judge, n=n, seed=0, **real)
    where = f" --dataset {shown_folder(folder)}" if folder else ""
    record_prior_quality(model, rows, f"vaegen evaluate --model {dest}{where} --samples {n}")
    print(json.dumps({name: {k: v for k, v in row.items() if k != "class_shares"} for name, row in rows.items()},
                     indent=1))


def shown_folder(folder: str) -> str:
    """A folder as a recorded command names it: as given when relative (the checkout's ../shared/data/emoji),
    else by its name alone (no path of this machine)."""
    return folder if not Path(folder).is_absolute() else Path(folder).name


def ship_bundle(args: argparse.Namespace) -> None:
    checkpoint = args.run / CHECKPOINT
    with tempfile.TemporaryDirectory() as tmp:
        model = Model(load_bundle(export_checkpoint(checkpoint, Path(tmp) / "bundle")), provider="cpu")
        source = args.folder or model.bundle.dataset
        images = evaluation_images(source, "test", args.data_dir, model.image_shape,
                                   likelihood=model.bundle.likelihood, limit=args.limit,
                                   options=FolderOptions(background=model.bundle.background))
        result = evaluate(model, images, k=args.k, seed=0)
    name = Path(args.folder).resolve().name if args.folder else None
    where = f" --dataset {shown_folder(args.folder)}" if name else ""
    command = f"vaegen evaluate --model {args.dest}{where} --k {args.k}" + (f" --limit {args.limit}" if args.limit else "")
    metrics = {
        f"test_nll_k{args.k}": result["nll"],
        "test_nll_bits_per_dim": result["nll_bits_per_dim"],
        "test_neg_elbo": result["neg_elbo"],
        "test_recon": result["recon"],
        "test_kl": result["kl"],
        "active_units": result["active_units"],
        "eval_images": result["images"],
        "eval_seconds": round(result["seconds"], 1),
        "eval_command": command,
    }
    training = {"evaluated_on": describe_machine(), **({"dataset": name, **DATA_NOTES.get(name, {})} if name else {})}
    export_checkpoint(checkpoint, args.dest, extra_metrics=metrics, extra_training=training)
    fit_and_judge_prior(args.dest, args.data_dir, prior_settings(args), args.folder)
    draw_pictures(args.dest, args.docs, args.data_dir, args.folder)
    print(json.dumps(metrics, indent=2))


def calibrate_shipped(dest: Path, data_dir: str | None, images: int) -> None:
    """Install the calibration in a shipped bundle (prior and pixels unchanged),
    with the OOD figures of its card: `images` held-out images (in) against
    as many of each set, every score at the default k and seed 0."""
    model = Model(load_bundle(dest), provider="cpu")
    dataset, k = model.bundle.dataset, DEFAULT_K
    test = load_idx_dataset(dataset, "test", data_dir).images
    rows = calibration_rows(len(test))
    facts = {"dataset": dataset, "split": "test", "held_out": len(test)}
    calibration = calibrate(model, test[rows], prior=model.prior, k=k, seed=0, facts=facts)
    held_out = test[:images]
    sets = {OTHER[dataset]: load_idx_dataset(OTHER[dataset], "test", None).images[:images],
            "upside-down": made_set("upside-down", held_out), "noise": made_set("noise", held_out)}
    report = ood_report(model, held_out, sets, k=k, seed=0, calibration=calibration)
    unseen = np.setdiff1d(np.arange(len(test)), rows)  # every held-out image the calibration did not score
    records = score_terms(measure(model, test[unseen], k=k, prior=model.prior, calibration=calibration))
    share = float(np.mean([r["flagged"] for r in records]))
    command = f"vaegen evaluate --model {dest} " + " ".join(f"--ood {name}" for name in sets) + f" --limit {images}"
    ood = {"command": command, "images": images, "k": k, "default": DEFAULT_SCORE,
           "flagged_unseen_held_out": {"images": len(unseen), "share": round(share, 4), "flag_above": FLAG_ABOVE},
           "sets": {name: {score: {key: round(v, 4) for key, v in figures.items()}
                           for score, figures in row["scores"].items()} for name, row in report["sets"].items()}}
    install_calibration(model, calibration, ood)
    print(json.dumps({"calibration": calibration.facts, "ood": ood}, indent=1))


def prior_settings(args: argparse.Namespace) -> dict:
    return {"components": args.components, "class_components": args.class_components, "purity": args.purity,
            "max_codes": args.max_codes}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    bundle = steps.add_parser("bundle", help="export, evaluate, fit the prior, judge, draw")
    bundle.add_argument("run", type=Path)
    bundle.add_argument("dest", type=Path)
    bundle.add_argument("--k", type=int, default=1000)
    bundle.add_argument("--limit", type=int, default=None)
    bundle.add_argument("--docs", type=Path, default=Path("docs"))
    bundle.add_argument("--folder", default=None, help="the image folder the run trained on, where it is here")
    prior = steps.add_parser("prior", help="refit a shipped bundle's prior and judge it")
    prior.add_argument("dest", type=Path)
    for step in (bundle, prior):
        step.add_argument("--data-dir", default=None)
        step.add_argument("--components", type=int, default=100)
        step.add_argument("--class-components", type=int, default=10)
        step.add_argument("--purity", type=float, default=0.99)
        step.add_argument("--max-codes", type=int, default=None, help="codes of the overall mixture (default: all)")
    calibration = steps.add_parser("calibrate", help="add the scores' calibration and OOD figures, nothing else")
    calibration.add_argument("dest", type=Path)
    calibration.add_argument("--data-dir", default=None)
    calibration.add_argument("--images", type=int, default=1000, help="held-out images, and images of each OOD set")
    args = parser.parse_args(argv)
    if args.step == "bundle":
        ship_bundle(args)
    elif args.step == "calibrate":
        calibrate_shipped(args.dest, args.data_dir, args.images)
    else:
        fit_and_judge_prior(args.dest, args.data_dir, prior_settings(args))
        draw_pictures(args.dest, Path("docs"), args.data_dir)


if __name__ == "__main__":
    main()
