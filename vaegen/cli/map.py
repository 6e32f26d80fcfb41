"""`vaegen map`: a test set's latent means as a 2-D scatter, coloured by class."""

from __future__ import annotations

from pathlib import Path

import click

from vaegen.choices import PROJECTIONS, SPLITS
from vaegen.cli import options


@click.command(name="map")
@click.option("-o", "--output", type=options.OutputFile(), default=Path("map.png"), show_default=True,
              help="The picture to write; its format follows the extension (.png, .jpg, .webp).")
@options.data_options()
@click.option("--split", type=click.Choice(SPLITS), default="test", help="Which split to map.")
@click.option("--limit", type=click.IntRange(min=3), default=5000, show_default=True,
              help="Map the first N images of the split.")
@click.option("--projection", type=click.Choice(PROJECTIONS), default="auto",
              help="How a latent wider than 2-D is laid flat: lda (the classes best apart) or pca (most variance); "
                   "auto is lda when the images have labels, else pca.")
@click.option("--size", type=click.IntRange(200, 4000), default=640, help="Width of the square plot in pixels.")
@options.light_options
def map_(output, dataset, data_dir, skip_bad, split, limit, projection, size, as_json, model_dir, provider, threads, verbose,
         quiet):
    """Draw the latent space: each test image's latent mean as one dot,
    coloured by its class, each class named on the map and in a legend.

    A bundle made by `vaegen train` or `vaegen fit-prior` carries the map of
    its held-out images, so this needs no dataset; --dataset, --data-dir,
    --split, --limit or --projection make a new map from the images instead.

    A 2-D latent is drawn as it is. A wider one is projected linearly onto
    two axes: with labels, Fisher's linear discriminants (LDA: the plane
    that keeps the classes furthest apart, so the digits show as clusters);
    without, the first two principal components (PCA). numpy only.

    \b
    Example:
        vaegen map -o map.png
        vaegen map --dataset fashion-mnist --model runs/fashion -o fashion.png
        vaegen map --projection pca --limit 2000 --json
    """
    from vaegen.images import save_image
    from vaegen.latent.map import bundle_or_data_map
    from vaegen.plot import scatter_map

    options.check_targets(output, None)
    model = options.open_model(model_dir, provider, threads, verbose)
    with options.DataProgress("loading images", quiet) as loading:
        latent_map = bundle_or_data_map(model, dataset, from_data=options.given_any(
            "dataset", "data_dir", "split", "limit", "projection"), data_dir=data_dir, split=split, limit=limit,
            method=projection, progress=loading, skip_bad=skip_bad)
    name = Path(model.bundle.path).name
    title = f"{name}: {len(latent_map.xy)} {latent_map.dataset} {split} images, {latent_map.projection.method}"
    picture = scatter_map(latent_map.xy, latent_map.labels, latent_map.classes, bounds=latent_map.bounds,
                          size=size, title=title, axes=latent_map.projection.axes)
    save_image(picture, output)
    options.emit({"output": str(output), "images": len(latent_map.xy), "dataset": latent_map.dataset, "split": split,
          "projection": latent_map.projection.method, "classes": latent_map.classes,
          "latent_dim": model.latent_dim, "model": str(model.bundle.path), "provider": model.active_provider},
         as_json, [] if quiet else [options.wrote(len(latent_map.xy), "image", output,
                                                  f" ({latent_map.projection.method} map)")])


map = map_  # the registry finds a command by its name; the function is map_ so as not to hide the builtin above
