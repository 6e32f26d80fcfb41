"""`vaegen interpolate`: a walk through latent space from one image to another."""

from __future__ import annotations

from pathlib import Path

import click

from vaegen.choices import INTERPOLATIONS
from vaegen.cli import options


@click.command()
@click.argument("image_a", type=click.Path(path_type=Path))
@click.argument("image_b", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=options.OutputFile(), default=None,
              help="File to write, in the format its extension names: a strip as .png, .jpg, .jpeg or .webp, or "
                   "an animated .gif. [default: interpolation.png, or interpolation.gif with --gif]")
@click.option("--steps", type=click.IntRange(min=2), default=10, help="Decoded frames, both ends included.")
@click.option("--method", type=click.Choice(INTERPOLATIONS), default="slerp",
              help="slerp follows the prior's typical shell; lerp is a straight line.")
@click.option("--gif", is_flag=True, help="Write an animated GIF that goes there and back (as -o NAME.gif does).")
@options.scale_option(2)
@options.light_options
def interpolate(image_a, image_b, output, steps, method, gif, scale, as_json, model_dir, provider, threads, verbose,
                quiet):
    """Walk through latent space from one image to another.

    The strip shows A as the model saw it, then decode(mu_A) ... decode(mu_B),
    then B. A .gif output is an animation of the walk, there and back.

    \b
    Example:
        vaegen interpolate three.png eight.png
        vaegen interpolate a.png b.png --steps 16 -o walk.gif
    """
    import numpy as np

    from vaegen.images import make_grid, save_gif, save_image, there_and_back

    output = output or Path("interpolation.gif" if gif else "interpolation.png")
    if gif:
        options.check_suffix(output, (".gif",))
    animate = output.suffix.lower() == ".gif"
    options.check_targets(output, None)
    model = options.open_model(model_dir, provider, threads, verbose)
    if animate:
        options.check_grid(model.image_shape, 2 * steps - 2, 1, scale * 2, f"--steps {steps}")
    else:
        options.check_grid(model.image_shape, steps + 2, steps + 2, scale, f"--steps {steps}")
    x = model.read_images([image_a, image_b])
    frames = model.interpolate(x[0], x[1], steps=steps, method=method)
    if animate:
        save_gif(there_and_back(frames), output, duration_ms=90, scale=scale * 2)
    else:
        save_image(make_grid(np.concatenate([x[:1], frames, x[1:]]), nrow=steps + 2), output, scale=scale)
    options.emit({"output": str(output), "steps": steps, "method": method, "animated": animate,
                  "provider": model.active_provider},
                 as_json, [] if quiet else [options.wrote(steps, "interpolation step", output)])
