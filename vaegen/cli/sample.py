"""`vaegen sample`: new images from the prior, as a grid or one PNG each."""

from __future__ import annotations

from pathlib import Path

import click

from vaegen.cli.options import (
    OutputFile,
    check_grid,
    check_targets,
    emit,
    json_option,
    model_options,
    open_model,
    progress,
    quiet_option,
    scale_option,
)


@click.command()
@click.option("-n", "--num", "n", type=click.IntRange(min=1), default=64, help="Number of images to draw.")
@click.option("-o", "--output", type=OutputFile(".png"), default=Path("samples.png"), help="Grid PNG to write.")
@click.option("--out-dir", type=click.Path(path_type=Path), default=None,
              help="Write one PNG per image in this folder instead of a grid.")
@click.option("--seed", type=int, default=0, help="Seed of the prior draws; the same seed gives the same PNG.")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, help="Scale of the prior's standard deviation.")
@click.option("--nrow", type=click.IntRange(min=1), default=None, help="Images per grid row. [default: a square grid]")
@scale_option(1)
@json_option
@model_options
@quiet_option
def sample(n, output, out_dir, seed, temperature, nrow, scale, as_json, model_dir, provider, threads, verbose, quiet):
    """Draw new images from the prior: z ~ N(0, I), decoded to pixel means.

    \b
    Example:
        vaegen sample -n 64 -o grid.png
        vaegen sample -n 16 --temperature 0.7 --seed 3 -o cool.png
        vaegen sample -n 1000 --out-dir digits/
    """
    import math

    from vaegen.images import GridWriter, save_each, save_png

    check_targets(output, out_dir)
    model = open_model(model_dir, provider, threads, verbose)
    nrow = nrow or math.ceil(math.sqrt(n))
    if out_dir is None:
        check_grid(model.image_shape, n, nrow, scale, f"-n {n}", out_dir_hint=True)
    grid = GridWriter(n, model.image_shape, nrow=nrow) if out_dir is None else None
    done = 0
    with progress(n, "sampling", quiet or n < 5000) as bar:
        for batch in model.sample_batches(n, seed=seed, temperature=temperature):
            if grid is not None:
                grid.add(batch)
            else:
                save_each(batch, out_dir, [f"sample_{i:06d}.png" for i in range(done, done + len(batch))], scale)
            done += len(batch)
            bar.update(len(batch))
    target = out_dir if out_dir is not None else output
    if grid is not None:
        save_png(grid.image(), output, scale=scale)
    emit({"output": str(target), "n": n, "seed": seed, "temperature": temperature,
          "provider": model.active_provider, "model": str(model.bundle.path)},
         as_json, [] if quiet else [f"Wrote {n} samples to {target}"])
