"""`vaegen judge`: train the sample-quality judge of a labelled image folder (imports torch inside)."""

from __future__ import annotations

from pathlib import Path

import click

from vaegen.choices import CHANNELS
from vaegen.cli import options
from vaegen.recipes import COLOUR, COMMON, JUDGE, recipe


@click.command()
@click.option("--dataset", required=True, help="A folder of images in class subfolders (its first-level folders).")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
              help="Take the image size, channels and background from this model bundle, so that the judge sees "
                   "the folder as the model does.")
@click.option("--image-size", type=click.IntRange(min=8), default=None,
              help=f"Side of the square images. [default: the model's, else {COLOUR['image_size']} in colour, "
                   f"{COMMON['image_size']} in grey, as `vaegen train`]")
@click.option("--channels", type=click.Choice([str(c) for c in CHANNELS]), default=None,
              help=f"1 for grayscale, 3 for RGB. [default: the model's, else {COMMON['channels']}]")
@click.option("--background", type=click.IntRange(0, 255), default=None,
              help=f"Grey level under transparent pixels. [default: the model's, else {COMMON['background']}]")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Judge folder to write. [default: runs/judge-<folder name>]")
@click.option("--epochs", type=click.IntRange(min=1), default=JUDGE["epochs"], show_default=True, help="Training epochs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for torch. [default: torch's choice]")
@options.skip_bad_option
@options.quiet_option
@options.json_option
def judge(dataset, model_dir, image_size, channels, background, out, epochs, seed, threads, skip_bad, quiet, as_json):
    """Train a judge for a labelled image folder, so that `vaegen evaluate
    --samples N --judge DIR` can score a model's samples on your own data.

    A judge is a small classifier of the folder's classes (its first-level
    subfolders). Its penultimate features give the Frechet distance between
    generated and real images; its class calls give the confident share and
    the label agreement of per-class samples. It learns from the folder's
    training split (the held-out rule: every 10th image is the test split)
    but every 4th training image, which it keeps back as the reference the
    figures are measured against; the test split is the floor's real set.
    So it never saw the images it compares. A folder without class
    subfolders has no judge, and the command says so.

    \b
    Example:
        vaegen judge --dataset photos/ --model runs/photos --out runs/photos-judge
        vaegen evaluate --model runs/photos --dataset photos/ --samples 500 --judge runs/photos-judge
    """
    options.require_torch("judge")
    from vaegen.errors import BundleError
    from vaegen.evaluation.judges import unlabelled_reason

    reason = unlabelled_reason(dataset)  # before the bar: a folder without classes is one line
    if reason:
        raise BundleError(reason)
    from vaegen.training.judge import train_judge

    shape = None
    if model_dir is not None:
        from vaegen.bundle.read import load_bundle

        bundle = load_bundle(model_dir)
        shape, model_background = bundle.image_shape, bundle.background
        background = model_background if background is None else background
    c = int(channels) if channels else (shape[0] if shape else COMMON["channels"])
    size = image_size or (shape[1] if shape else {**COMMON, **recipe(dataset, channels=c)}["image_size"])
    out = out or Path("runs") / f"judge-{Path(dataset).expanduser().resolve().name}"
    bar = options.progress(epochs, "training the judge", quiet)
    seen = {"epoch": 0}

    def report(epoch, step, steps, loss):
        if step == steps and epoch > seen["epoch"]:
            bar.update(epoch - seen["epoch"])
            seen["epoch"] = epoch

    with bar:
        folder = train_judge(dataset, out, image_size=size, channels=c, progress=report, background=background,
                             skip_bad=skip_bad, epochs=epochs, seed=seed, threads=threads)
    import json

    facts = json.loads((folder / "judge.json").read_text())
    floor, metrics = facts["floor"], facts["metrics"]
    options.emit({"out": str(folder), "classes": facts["classes"], **metrics, "floor": floor}, as_json, [
        f"Wrote the judge of {facts['dataset']} ({len(facts['classes'])} classes) to {folder}",
        f"held-out accuracy {metrics['test_accuracy']:.1%}; floor: Frechet distance {floor['frechet_distance']:.2f} "
        f"between {floor['images']} and {floor['reference']}",
    ])
