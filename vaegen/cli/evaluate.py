"""`vaegen evaluate`: a model's likelihood on held-out data."""

from __future__ import annotations

import click

from vaegen.cli import options


@click.command()
@options.data_options("mnist")
@click.option("--split", type=click.Choice(["test", "train"]), default="test", help="Which split to score.")
@click.option("--k", "k", type=click.IntRange(min=1), default=1000, help="Importance samples per image.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score only the first N images. [default: all]")
@click.option("--seed", type=int, default=0, help="Seed of the importance samples.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout.")
@options.model_options
@options.quiet_option
def evaluate(dataset, data_dir, split, k, limit, seed, as_json, model_dir, provider, threads, verbose, quiet):
    """Score a model on held-out data: negative ELBO, importance-weighted NLL
    (Burda et al. 2015) and active units, in nats per image.

    The images are binarized once with a fixed seed (stochastic binarization).

    \b
    Example:
        vaegen evaluate --limit 500 --k 100
        vaegen evaluate --json > metrics.json
    """
    from vaegen.data import evaluation_images
    from vaegen.metrics import evaluate as run_evaluation

    model = options.open_model(model_dir, provider, threads, verbose)
    loading = options.DataProgress(f"loading {dataset}", quiet)
    try:
        x = evaluation_images(dataset, split, data_dir, model.image_shape, limit=limit, progress=loading)
    finally:
        loading.close()
    with options.progress(len(x), f"evaluating k={k}", quiet) as bar:
        result = run_evaluation(model, x, k=k, seed=seed, progress=bar.update)
    result.update({"dataset": dataset, "split": split, "model": str(model.bundle.path), "provider": model.active_provider})
    options.emit(result, as_json, [
        f"images        {result['images']} ({dataset} {split}, binarized with seed 0)",
        f"NLL (k={k})    {result['nll']:.2f} nats",
        f"-ELBO         {result['neg_elbo']:.2f} nats (reconstruction {result['recon']:.2f} + KL {result['kl']:.2f})",
        f"active units  {result['active_units']} of {result['latent_dim']}",
        f"speed         {result['images_per_s']:.1f} images/s ({result['seconds']:.1f} s)",
    ])
