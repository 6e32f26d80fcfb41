"""`vaegen reconstruct`: images through the encoder and decoder."""

from __future__ import annotations

from pathlib import Path

import click

from vaegen.cli import options


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=options.OutputFile(), default=Path("reconstructions.png"),
              help="Grid of the inputs as the model saw them, above their reconstructions, in the format its "
                   "extension names: .png, .jpg, .jpeg, .webp or .gif.")
@click.option("--out-dir", type=click.Path(path_type=Path), default=None,
              help="Write each reconstruction alone, as a PNG under its input's name, in this folder.")
@click.option("--nrow", type=click.IntRange(min=1), default=8, help="Images per grid row.")
@options.skip_bad_option
@options.scale_option(2)
@options.light_options
def reconstruct(images, output, out_dir, nrow, skip_bad, scale, as_json, model_dir, provider, threads, verbose, quiet):
    """Pass images through the encoder and decoder: x -> mu -> decoder mean.

    Any PNG or JPEG works; MNIST models see it the MNIST way (grayscale, ink
    made bright, cropped, fitted to 20x20 and centred by mass in 28x28).
    Every image is checked first: one that cannot be used fails the command,
    naming each such image, and nothing is written (or, with --skip-bad, it
    is left out).

    \b
    Example:
        vaegen reconstruct my_digit.png photo.jpg -o recon.png
        vaegen reconstruct scans/*.png --skip-bad --out-dir recon/
    """
    from vaegen.images import pairs_grid, save_each, save_image

    if out_dir is not None and len({Path(p).stem for p in images}) != len(images):
        raise click.UsageError("Two inputs share a file name; --out-dir needs distinct names.")
    options.check_targets(output, out_dir)
    model = options.open_model(model_dir, provider, threads, verbose)
    batch = options.read_inputs(model, images, skip_bad)
    recon = model.reconstruct(batch.images)
    if out_dir is not None:
        save_each(recon, out_dir, [f"{p.stem}.png" for p in batch.paths], scale)
    else:
        save_image(pairs_grid(batch.images, recon, nrow), output, scale=scale)
    target = out_dir if out_dir is not None else output
    options.emit({"output": str(target), "images": [str(p) for p in batch.paths],
                  "skipped": [{"image": str(p), "reason": why} for p, why in batch.skipped],
                  "provider": model.active_provider},
                 as_json, [] if quiet else [options.wrote(len(batch.paths), "reconstruction", target)])
