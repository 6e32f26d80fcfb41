"""`vaegen encode` and `vaegen decode`: images to latent vectors and back."""

from __future__ import annotations

from pathlib import Path

import click

from vaegen.cli import options
from vaegen.latent.codes import LATENT_SUFFIXES


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=options.OutputFile(*LATENT_SUFFIXES), default=None,
              help="Also save the latent means as .npy ([N, D] float32) or .json.")
@click.option("--json", "as_json", is_flag=True, help="Print the latents as JSON on stdout.")
@options.skip_bad_option
@options.model_options
@options.quiet_option
def encode(images, output, as_json, skip_bad, model_dir, provider, threads, verbose, quiet):
    """Print the latent mean (and log-variance) of each image.

    Every image is checked first: one that cannot be used fails the command,
    naming each such image, and nothing is written (or, with --skip-bad, it
    is left out). The latents go to stdout; what -o wrote is said on stderr.

    \b
    Example:
        vaegen encode digit.png --json
        vaegen encode a.png b.png -o latents.npy && vaegen decode latents.npy
    """
    import json

    from vaegen.latent.codes import save_latents

    options.check_targets(output, None)
    model = options.open_model(model_dir, provider, threads, verbose)
    batch = options.read_inputs(model, images, skip_bad)
    mu, logvar = model.encode(batch.images)
    if output is not None:
        save_latents(output, mu)
        options.echo_err(options.wrote(len(mu), "latent vector", output), quiet)
    if as_json:
        records = [{"image": str(p), "mu": m.tolist(), "logvar": lv.tolist()}
                   for p, m, lv in zip(batch.paths, mu, logvar, strict=True)]
        click.echo(json.dumps(records))
    else:
        for p, m in zip(batch.paths, mu, strict=True):
            click.echo(f"{p}\t" + " ".join(f"{v:.4f}" for v in m))


@click.command()
@click.argument("latents", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=options.OutputFile(), default=Path("decoded.png"),
              help="Grid to write, in the format its extension names: .png, .jpg, .jpeg, .webp or .gif.")
@click.option("--out-dir", type=click.Path(path_type=Path), default=None, help="Write one PNG per latent in this folder.")
@click.option("--nrow", type=click.IntRange(min=1), default=None, help="Images per grid row. [default: a square grid]")
@options.scale_option(2)
@options.light_options
def decode(latents, output, out_dir, nrow, scale, as_json, model_dir, provider, threads, verbose, quiet):
    """Decode latent vectors from a .npy file ([N, D] or [D]) or a JSON file
    (a list of vectors, or `vaegen encode --json` output).

    \b
    Example:
        vaegen decode latents.npy -o decoded.png
    """
    import math

    from vaegen.images import make_grid, save_each, save_image
    from vaegen.latent.codes import load_latents

    options.check_targets(output, out_dir)
    model = options.open_model(model_dir, provider, threads, verbose)
    z = load_latents(latents, model.latent_dim)
    nrow = nrow or math.ceil(math.sqrt(len(z)))
    if out_dir is None:
        options.check_grid(model.image_shape, len(z), nrow, scale, f"{latents} ({len(z)} latents)", out_dir_hint=True)
    images = model.decode(z)
    if out_dir is not None:
        save_each(images, out_dir, [f"decoded_{i:06d}.png" for i in range(len(images))], scale)
    else:
        save_image(make_grid(images, nrow=nrow), output, scale=scale)
    target = out_dir if out_dir is not None else output
    options.emit({"output": str(target), "n": len(z), "provider": model.active_provider}, as_json,
                 [] if quiet else [options.wrote(len(z), "decoded image", target)])
