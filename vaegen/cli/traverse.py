"""`vaegen traverse`: vary latent dimensions one at a time (or draw a 2-D manifold)."""

from __future__ import annotations

from pathlib import Path

import click

from vaegen.cli import options


class IntList(click.ParamType):
    """A comma-separated list of integers: `--dims 0,3,5`."""

    name = "list"

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            return [int(v) for v in str(value).split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a comma-separated list of integers.", param_hint="--dims") from None


@click.command()
@click.option("-o", "--output", type=options.OutputFile(), default=Path("traversal.png"),
              help="Grid to write, in the format its extension names: .png, .jpg, .jpeg, .webp or .gif.")
@click.option("--image", type=click.Path(path_type=Path), default=None,
              help="Start from this image's latent mean. [default: the prior's mean, z = 0]")
@click.option("--dims", type=IntList(), default=None,
              help="Comma-separated latent dimensions to vary. [default: all, most active first, at most 16]")
@click.option("--steps", type=click.IntRange(min=2), default=11, help="Values per dimension (grid side for a 2-D latent).")
@click.option("--span", type=click.FloatRange(min=0, min_open=True), default=3.0, help="Vary each value over [-span, span].")
@options.scale_option(2)
@options.light_options
def traverse(output, image, dims, steps, span, scale, as_json, model_dir, provider, threads, verbose, quiet):
    """Vary each latent dimension in turn, one row per dimension; for a 2-D
    latent, draw the learned manifold (Kingma & Welling, figure 4).

    \b
    Example:
        vaegen traverse -o traversal.png
        vaegen traverse --image digit.png --dims 0,3,5 --steps 9
    """
    from vaegen.errors import ArgumentError
    from vaegen.images import make_grid, save_image

    options.check_targets(output, None)
    model = options.open_model(model_dir, provider, threads, verbose)
    manifold = model.latent_dim == 2 and image is None and dims is None
    rows = steps if manifold else len(dims) if dims else min(16, model.latent_dim)
    options.check_grid(model.image_shape, rows * steps, steps, scale, f"--steps {steps}")
    base = model.encode(model.read_images([image]))[0][0] if image is not None else None
    try:
        z, chosen = model.traversal_latents(base, dims, steps=steps, span=span)
    except ArgumentError as exc:
        raise click.BadParameter(str(exc), param_hint="--dims") from None
    save_image(make_grid(model.decode(z), nrow=steps), output, scale=scale)
    dims_named = f" of dimension{'s' if len(chosen) > 1 else ''} {', '.join(map(str, chosen))}"
    line = options.wrote(1, "latent manifold", output, dims_named) if manifold else \
        options.wrote(len(chosen), "traversal", output, dims_named)
    options.emit({"output": str(output), "dims": chosen, "steps": steps, "span": span}, as_json,
                 [] if quiet else [line])
