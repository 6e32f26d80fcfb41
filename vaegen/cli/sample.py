"""`vaegen sample`: new images from the prior, as a grid or one PNG each."""

from __future__ import annotations

from pathlib import Path

import click

from vaegen.choices import PRIORS
from vaegen.cli import options


def _latents(model, n, per_label, seed, temperature, prior, label):
    """The latents to decode: n from the prior, or per_label of each class."""
    if per_label is not None:
        if prior == "standard":
            raise click.UsageError("--per-label draws from the fitted prior's classes; drop --prior standard.")
        return model.class_latents(per_label, seed=seed, temperature=temperature)
    return model.sample_latents(n, seed=seed, temperature=temperature, prior=prior, label=label)


@click.command()
@click.option("-n", "--num", "n", type=click.IntRange(min=1), default=64, help="Number of images to draw.")
@click.option("-o", "--output", type=options.OutputFile(), default=Path("samples.png"),
              help="Grid to write, in the format its extension names: .png, .jpg, .jpeg, .webp or .gif.")
@click.option("--out-dir", type=click.Path(path_type=Path), default=None,
              help="Write one PNG per image in this folder instead of a grid.")
@click.option("--prior", type=click.Choice(PRIORS), default="auto",
              help="fitted: the mixture fitted to the training codes; standard: N(0, I); auto: fitted when the "
                   "bundle has one.")
@click.option("--label", default=None, help="Draw only this class of the fitted prior (an index or a class name).")
@click.option("--per-label", type=click.IntRange(min=1), default=None,
              help="Draw N of every class, one grid row per class (instead of -n and --label).")
@click.option("--seed", type=int, default=0, help="Seed of the prior draws; the same seed gives the same PNG.")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0,
              help="Scale of each draw's spread around its component's mean (around 0 for the standard prior).")
@click.option("--nrow", type=click.IntRange(min=1), default=None, help="Images per grid row. [default: a square grid]")
@options.scale_option(1)
@options.light_options
def sample(n, output, out_dir, prior, label, per_label, seed, temperature, nrow, scale, as_json, model_dir, provider,
           threads, verbose, quiet):
    """Draw new images from the prior, decoded to pixel means.

    A bundle with a fitted prior (`vaegen train` fits one, as does
    `vaegen fit-prior`) draws from it; others from z ~ N(0, I). The grid's
    format follows -o's extension.

    \b
    Example:
        vaegen sample -n 64 -o grid.png
        vaegen sample -n 16 --temperature 0.7 --seed 3 -o cool.jpg
        vaegen sample --label 7 -n 16 -o sevens.png
        vaegen sample --per-label 10 -o digits.png
        vaegen sample -n 1000 --out-dir digits/
    """
    import math

    from vaegen.images import GridWriter, save_each, save_image

    ctx = click.get_current_context()
    if per_label is not None and (label is not None or ctx.get_parameter_source("n").name == "COMMANDLINE"):
        raise click.UsageError("--per-label draws every class; it cannot go with -n or --label.")
    options.check_targets(output, out_dir)
    model = options.open_model(model_dir, provider, threads, verbose)
    if per_label is not None:
        n = per_label * max(1, len(model.classes))
    nrow = nrow or per_label or math.ceil(math.sqrt(n))
    if out_dir is None:  # before any latent is drawn: -n 10**12 is refused, not attempted
        options.check_grid(model.image_shape, n, nrow, scale, f"-n {n}", out_dir_hint=True)
    z = _latents(model, n, per_label, seed, temperature, prior, label)
    grid = GridWriter(n, model.image_shape, nrow=nrow) if out_dir is None else None
    done = 0
    with options.progress(n, "sampling", quiet or n < 5000) as bar:
        for batch in model.decode_batches(z):
            if grid is not None:
                grid.add(batch)
            else:
                save_each(batch, out_dir, [f"sample_{i:06d}.png" for i in range(done, done + len(batch))], scale)
            done += len(batch)
            bar.update(len(batch))
    target = out_dir if out_dir is not None else output
    if grid is not None:
        save_image(grid.image(), output, scale=scale)
    options.emit({"output": str(target), "n": n, "seed": seed, "temperature": temperature, "prior": model.prior_in_use(prior),
          "label": label, "per_label": per_label, "classes": model.classes if per_label else None,
          "provider": model.active_provider, "model": str(model.bundle.path)},
         as_json, [] if quiet else [options.wrote(n, "sample", target)])
