"""`vaegen reconstruct`: images through the encoder and decoder."""

from __future__ import annotations

from pathlib import Path

import click

from vaegen.cli import options


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=options.OutputFile(".png"), default=Path("reconstructions.png"),
              help="Grid PNG: the inputs as the model saw them, above their reconstructions.")
@click.option("--out-dir", type=click.Path(path_type=Path), default=None,
              help="Write each reconstruction alone, under its input's name, in this folder.")
@click.option("--nrow", type=click.IntRange(min=1), default=8, help="Images per grid row.")
@options.scale_option(2)
@options.light_options
def reconstruct(images, output, out_dir, nrow, scale, as_json, model_dir, provider, threads, verbose, quiet):
    """Pass images through the encoder and decoder: x -> mu -> decoder mean.

    Any PNG or JPEG works; MNIST models see it the MNIST way (grayscale, ink
    made bright, cropped, fitted to 20x20 and centred by mass in 28x28).

    \b
    Example:
        vaegen reconstruct my_digit.png photo.jpg -o recon.png
        vaegen reconstruct scans/*.png --out-dir recon/
    """
    from vaegen.images import pairs_grid, save_each, save_png

    names = [f"{Path(p).stem}.png" for p in images]
    if out_dir is not None and len(set(names)) != len(names):
        raise click.UsageError("Two inputs share a file name; --out-dir needs distinct names.")
    options.check_targets(output, out_dir)
    model = options.open_model(model_dir, provider, threads, verbose)
    x = model.read_images(images)
    recon = model.reconstruct(x)
    if out_dir is not None:
        save_each(recon, out_dir, names, scale)
    else:
        save_png(pairs_grid(x, recon, nrow), output, scale=scale)
    target = out_dir if out_dir is not None else output
    options.emit({"output": str(target), "images": [str(p) for p in images], "provider": model.active_provider},
         as_json, [] if quiet else [f"Wrote {len(images)} reconstructions to {target}"])
